#include "platform/grpc/handler.h"

#include "platform/grpc/edge_trust.h"

namespace kurt::platform {
namespace {

std::string MetadataOf(const grpc::ServerContext& context, absl::string_view key) {
  const auto& md = context.client_metadata();
  auto it = md.find(grpc::string_ref(key.data(), key.size()));
  if (it == md.end()) {
    return "";
  }
  return std::string(it->second.data(), it->second.size());
}

std::string RequestIdOr(std::string id) { return id.empty() ? log::NewRequestId() : id; }

}  // namespace

Caller::Caller(const grpc::ServerContext& context)
    : context_(&context),
      account_id_(MetadataOf(context, kAccountIdMetadata)),
      request_id_(RequestIdOr(MetadataOf(context, kRequestIdMetadata))),
      deadline_(context.deadline() == std::chrono::system_clock::time_point::max()
                    ? absl::InfiniteFuture()
                    : absl::FromChrono(context.deadline())) {}

Caller::Caller(std::string account_id, std::map<std::string, std::string> metadata,
               absl::Time deadline)
    : metadata_(std::move(metadata)),
      account_id_(std::move(account_id)),
      request_id_(RequestIdOr(Metadata(kRequestIdMetadata))),
      deadline_(deadline) {}

std::string Caller::Metadata(absl::string_view key) const {
  if (context_ != nullptr) {
    return MetadataOf(*context_, key);
  }
  auto it = metadata_.find(std::string(key));
  return it == metadata_.end() ? std::string() : it->second;
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) {
    return grpc::Status::OK;
  }
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

absl::Status CheckAccess(const Caller& caller, Access access) {
  if (access == Access::kAccount && caller.account_id().empty()) {
    return absl::UnauthenticatedError("no authenticated account (x-kurt-account-id)");
  }
  return absl::OkStatus();
}

}  // namespace kurt::platform
