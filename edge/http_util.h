// Small pure helpers of the edge's HTTP side: deadlines from headers, the client address,
// ETags and conditional requests, metadata-safe header values.
#pragma once

#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace kurt::edge {

// gRPC's timeout format: up to 8 digits and a unit (H, M, S, m, u, n), e.g. "250m".
std::optional<absl::Duration> ParseGrpcTimeout(absl::string_view text);
// x-request-timeout: a duration ("1.5s", "250ms") or a number of seconds ("2", "0.5").
std::optional<absl::Duration> ParseRequestTimeout(absl::string_view text);

// The peer, or with `trust_forwarded_for` the first (client) entry of X-Forwarded-For.
std::string ClientIp(absl::string_view peer, absl::string_view forwarded_for,
                     bool trust_forwarded_for);

// A strong ETag of the body: a quoted 64-bit FNV-1a hash and the length in hex.
std::string StrongEtag(absl::string_view body);
// Whether an If-None-Match header ("*", or a list of tags, weak or not) matches `etag`.
bool IfNoneMatch(absl::string_view header, absl::string_view etag);

// Keeps printable ASCII only (gRPC metadata values), at most `max_size` bytes.
std::string MetadataSafe(absl::string_view value, size_t max_size);

}  // namespace kurt::edge
