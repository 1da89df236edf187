#include "platform/grpc/handler.h"

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "platform/core/backend_error.h"
#include "platform/grpc/edge_trust.h"
#include "platform/grpc/h2_server.h"
#include "platform/grpc/tls.h"

namespace kurt::platform {
namespace {

constexpr absl::string_view kRetryInfoUrl = "type.googleapis.com/google.rpc.RetryInfo";

// A metadata value of the call, viewed where gRPC keeps it for the length of the call.
absl::string_view ContextMetadata(const grpc::ServerContextBase& context, absl::string_view key) {
  const auto& md = context.client_metadata();
  auto it = md.find(grpc::string_ref(key.data(), key.size()));
  if (it == md.end()) {
    return {};
  }
  return {it->second.data(), it->second.size()};
}

}  // namespace

Caller::Caller(const grpc::ServerContextBase& context)
    : context_(&context),
      account_id_(ContextMetadata(context, kAccountIdMetadata)),
      request_id_(ContextMetadata(context, kRequestIdMetadata)),
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
    : metadata_(std::make_move_iterator(metadata.begin()), std::make_move_iterator(metadata.end())),
      account_id_(std::move(account_id)),
      deadline_(deadline) {
  SetRequestIdFromMetadata();
  from_edge_ = Find(kEdgeSecretMetadata) != nullptr;
}

Caller::Caller(H2Request&& request)
    : metadata_(std::move(request.metadata)),
      deadline_(request.deadline),
      from_edge_(request.from_edge) {
  if (const std::string* account = Find(kAccountIdMetadata)) {
    account_id_ = *account;
  }
  SetRequestIdFromMetadata();
}

const std::string* Caller::Find(absl::string_view key) const {
  // The first of a repeated name, as gRPC's find() gives; a call carries a handful.
  for (const auto& [name, value] : metadata_) {
    if (name == key) {
      return &value;
    }
  }
  return nullptr;
}

void Caller::SetRequestIdFromMetadata() {
  if (const std::string* id = Find(kRequestIdMetadata); id != nullptr && !id->empty()) {
    request_id_ = *id;
  } else {
    new_request_id_ = log::NewRequestId();
    request_id_ = new_request_id_;
  }
}

bool Caller::from_edge() const {
  if (context_ == nullptr) {
    return from_edge_;
  }
  const auto& md = context_->client_metadata();
  if (md.find(grpc::string_ref(kEdgeSecretMetadata.data(), kEdgeSecretMetadata.size())) !=
      md.end()) {
    return true;
  }
  std::shared_ptr<const grpc::AuthContext> auth = context_->auth_context();
  return auth != nullptr && PeerHasIdentity(*auth, kEdgeIdentity);
}

std::string Caller::Metadata(absl::string_view key) const { return std::string(MetadataView(key)); }

absl::string_view Caller::MetadataView(absl::string_view key) const {
  if (context_ != nullptr) {
    return ContextMetadata(*context_, key);
  }
  const std::string* value = Find(key);
  return value == nullptr ? absl::string_view() : absl::string_view(*value);
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) {
    return grpc::Status::OK;
  }
  const auto code = static_cast<grpc::StatusCode>(status.code());
  const bool server_side = code == grpc::StatusCode::UNAVAILABLE ||
                           code == grpc::StatusCode::INTERNAL ||
                           code == grpc::StatusCode::UNKNOWN || code == grpc::StatusCode::DATA_LOSS;
  if (!server_side && !IsBackendError(status)) {
    google::rpc::Status details;
    // Each payload of WithRetryAfter's and WithDetail's is keyed by its type URL; others (a
    // service's own marks, type.kurt.dev/...) stay inside.
    status.ForEachPayload([&details](absl::string_view type_url, const absl::Cord& value) {
      if (!absl::StartsWith(type_url, "type.googleapis.com/")) {
        return;
      }
      google::protobuf::Any* any = details.add_details();
      any->set_type_url(std::string(type_url));
      any->set_value(std::string(value));
    });
    if (details.details().empty()) {
      return grpc::Status(code, std::string(status.message()));
    }
    details.set_code(static_cast<int>(code));
    details.set_message(std::string(status.message()));
    return grpc::Status(code, std::string(status.message()), details.SerializeAsString());
  }
  // The text may name databases, hosts, tables or values: it goes to the log, under the request
  // id that the caller gets instead.
  absl::string_view request_id = log::RequestScope::Current();
  KURT_LOG(kWarn, "rpc failed", {"code", absl::StatusCodeToString(status.code())},
           {"error", status.message()});
  std::string message;
  switch (code) {
    case grpc::StatusCode::UNAVAILABLE:
      message = "temporarily unavailable; retry later";
      break;
    case grpc::StatusCode::INTERNAL:
    case grpc::StatusCode::UNKNOWN:
    case grpc::StatusCode::DATA_LOSS:
      message = "internal error; it has been logged";
      break;
    default:
      message = absl::StrCat("the request failed (", absl::StatusCodeToString(status.code()), ")");
  }
  if (!request_id.empty()) {
    absl::StrAppend(&message, " (request id ", request_id, ")");
  }
  return grpc::Status(code, message);
}

absl::Status WithRetryAfter(absl::Status status, absl::Duration delay) {
  google::rpc::RetryInfo info;
  const int64_t seconds = absl::ToInt64Seconds(absl::Trunc(delay, absl::Seconds(1)));
  info.mutable_retry_delay()->set_seconds(seconds);
  info.mutable_retry_delay()->set_nanos(
      static_cast<int32_t>(absl::ToInt64Nanoseconds(delay - absl::Seconds(seconds))));
  status.SetPayload(kRetryInfoUrl, absl::Cord(info.SerializeAsString()));
  return status;
}

absl::Status WithDetail(absl::Status status, const google::protobuf::Message& detail) {
  status.SetPayload(absl::StrCat("type.googleapis.com/", detail.GetDescriptor()->full_name()),
                    absl::Cord(detail.SerializeAsString()));
  return status;
}

absl::Status CheckAccess(const Caller& caller, Access access) {
  if (access == Access::kAccount && caller.account_id().empty()) {
    return absl::UnauthenticatedError("no authenticated account (x-kurt-account-id)");
  }
  if (access == Access::kEdge && !caller.from_edge()) {
    return absl::PermissionDeniedError(
        absl::StrCat("only the edge may make this call: it needs the edge's ", kEdgeSecretMetadata,
                     " or its client certificate (", kEdgeIdentity, ")"));
  }
  return absl::OkStatus();
}

}  // namespace kurt::platform
