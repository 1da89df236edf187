#include "platform/grpc/handler.h"

#include "platform/grpc/edge_trust.h"

namespace kurt::platform {
namespace {

// A metadata value of the call, viewed where gRPC keeps it for the length of the call.
absl::string_view MetadataView(const grpc::ServerContext& context, absl::string_view key) {
  const auto& md = context.client_metadata();
  auto it = md.find(grpc::string_ref(key.data(), key.size()));
  if (it == md.end()) {
    return {};
  }
  return {it->second.data(), it->second.size()};
}

}  // namespace

Caller::Caller(const grpc::ServerContext& context)
    : context_(&context),
      account_id_(MetadataView(context, kAccountIdMetadata)),
      request_id_(MetadataView(context, kRequestIdMetadata)),
      deadline_(context.deadline() == std::chrono::system_clock::time_point::max()
                    ? absl::InfiniteFuture()
                    : absl::FromChrono(context.deadline())) {
  if (request_id_.empty()) {
    new_request_id_ = log::NewRequestId();
    request_id_ = new_request_id_;
  }
}

Caller::Caller(std::string account_id, std::map<std::string, std::string> metadata,
               absl::Time deadline)
    : metadata_(std::move(metadata)), account_id_(std::move(account_id)), deadline_(deadline) {
  auto it = metadata_.find(std::string(kRequestIdMetadata));
  if (it != metadata_.end() && !it->second.empty()) {
    request_id_ = it->second;
  } else {
    new_request_id_ = log::NewRequestId();
    request_id_ = new_request_id_;
  }
}

std::string Caller::Metadata(absl::string_view key) const {
  if (context_ != nullptr) {
    return std::string(MetadataView(*context_, key));
  }
  auto it = metadata_.find(std::string(key));
  return it == metadata_.end() ? std::string() : it->second;
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) {
    return grpc::Status::OK;
  }
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

absl::Status CheckAccess(const Caller& caller, Access access) {
  if (access == Access::kAccount && caller.account_id().empty()) {
    return absl::UnauthenticatedError("no authenticated account (x-kurt-account-id)");
  }
  return absl::OkStatus();
}

}  // namespace kurt::platform
