// gRPC's HTTP/2 header values, as both ends of Kurt's own HTTP/2 gRPC (platform/grpc/h2_server.h,
// edge/h2_upstream.h) and the edge's clients' grpc-timeout read and write them. Pure functions.
#pragma once

#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace kurt::platform {

// A grpc-timeout value (up to 8 digits and a unit: "100m", "5S"...) as a duration; nullopt when
// malformed.
std::optional<absl::Duration> ParseGrpcTimeout(absl::string_view value);
// The grpc-timeout value for `timeout` (positive): milliseconds while 8 digits hold them, then
// seconds; rounded up, at least "1m".
std::string GrpcTimeoutHeader(absl::Duration timeout);

// grpc-message's percent-encoding of `message` (bytes outside printable ASCII, and '%').
std::string PercentEncodeGrpcMessage(absl::string_view message);
// The same undone; a '%' not followed by two hex digits stays as it is.
std::string PercentDecodeGrpcMessage(absl::string_view message);

}  // namespace kurt::platform
