// What every service handler reads from a call and writes back: the caller's account (set by the
// edge, trusted as platform/edge_trust.h describes), the request id for logs, protobuf
// timestamps, and keyset page tokens.
#pragma once

#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/timestamp.pb.h"
#include "grpcpp/server_context.h"

namespace kurt::platform {

// The authenticated account (x-kurt-account-id), or UNAUTHENTICATED.
absl::StatusOr<std::string> CallerAccount(const grpc::ServerContext& context);

// The caller's x-request-id, or a new one.
std::string RequestIdOf(const grpc::ServerContext& context);

// `t` in whole microseconds (what the database keeps), correct before 1970 too.
void SetTimestamp(absl::Time t, google::protobuf::Timestamp* out);
absl::Time FromTimestamp(const google::protobuf::Timestamp& t);
// INVALID_ARGUMENT naming `field` unless `t` is within google.protobuf.Timestamp's range
// (0001-01-01 to 9999-12-31) with valid nanos.
absl::Status ValidateTimestamp(const google::protobuf::Timestamp& t, absl::string_view field);

// The page size of a List request: 0 means 20, more than 100 means 100, negative is
// INVALID_ARGUMENT (page_size).
absl::StatusOr<int> PageSize(int requested);

// An opaque page token for keyset pagination on (time, key): the last row of a page.
std::string EncodePageToken(absl::Time time, absl::string_view key);
// The (time, key) of a token from EncodePageToken; nullopt when it is not one.
std::optional<std::pair<absl::Time, std::string>> DecodePageToken(absl::string_view token);

}  // namespace kurt::platform
