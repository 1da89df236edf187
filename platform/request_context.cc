#include "platform/request_context.h"

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "platform/edge_trust.h"
#include "platform/grpc_server.h"
#include "platform/log.h"

namespace kurt::platform {

absl::StatusOr<std::string> CallerAccount(const grpc::ServerContext& context) {
  std::string account = Metadata(context, kAccountIdMetadata);
  if (account.empty()) {
    return absl::UnauthenticatedError("no authenticated account (x-kurt-account-id)");
  }
  return account;
}

std::string RequestIdOf(const grpc::ServerContext& context) {
  std::string id = Metadata(context, "x-request-id");
  return id.empty() ? log::NewRequestId() : id;
}

void SetTimestamp(absl::Time t, google::protobuf::Timestamp* out) {
  int64_t micros = absl::ToUnixMicros(t);
  int64_t seconds = micros / 1000000, rem = micros % 1000000;
  if (rem < 0) {
    rem += 1000000;
    --seconds;
  }
  out->set_seconds(seconds);
  out->set_nanos(static_cast<int32_t>(rem * 1000));
}

absl::Time FromTimestamp(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

absl::Status ValidateTimestamp(const google::protobuf::Timestamp& t, absl::string_view field) {
  if (t.seconds() < -62135596800 || t.seconds() > 253402300799 || t.nanos() < 0 ||
      t.nanos() > 999999999) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": not a valid timestamp"));
  }
  return absl::OkStatus();
}

absl::StatusOr<int> PageSize(int requested) {
  constexpr int kDefault = 20, kMax = 100;
  if (requested < 0) return absl::InvalidArgumentError("page_size: must not be negative");
  return requested == 0 ? kDefault : std::min(requested, kMax);
}

std::string EncodePageToken(absl::Time time, absl::string_view key) {
  return absl::WebSafeBase64Escape(absl::StrCat(absl::ToUnixMicros(time), ":", key));
}

std::optional<std::pair<absl::Time, std::string>> DecodePageToken(absl::string_view token) {
  std::string raw;
  int64_t micros = 0;
  if (!absl::WebSafeBase64Unescape(token, &raw)) return std::nullopt;
  size_t colon = raw.find(':');
  if (colon == std::string::npos || !absl::SimpleAtoi(raw.substr(0, colon), &micros)) {
    return std::nullopt;
  }
  return std::make_pair(absl::FromUnixMicros(micros), raw.substr(colon + 1));
}

}  // namespace kurt::platform
