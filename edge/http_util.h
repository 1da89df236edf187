// Small pure helpers of the edge's HTTP side: deadlines from headers, the client address,
// ETags and conditional requests, metadata-safe header values.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace kurt::edge {

// x-request-timeout: a duration ("1.5s", "250ms") or a number of seconds ("2", "0.5").
std::optional<absl::Duration> ParseRequestTimeout(absl::string_view text);

// The proxies in front of the edge whose X-Forwarded-For entries it believes: IPv4 and IPv6
// ranges in CIDR notation ("10.0.0.0/8", "fd00::/8"; a bare address is one host). Immutable once
// parsed; safe from any thread.
class TrustedProxies {
 public:
  TrustedProxies() = default;  // none: the peer is the client
  // InvalidArgument naming the entry that is not an address or a CIDR range.
  static absl::StatusOr<TrustedProxies> Parse(const std::vector<std::string>& cidrs);

  bool empty() const { return ranges_.empty(); }
  // Whether `ip` (an address literal; an IPv4-mapped IPv6 address counts as its IPv4 address)
  // lies in one of the ranges. Not an address: false.
  bool Contains(absl::string_view ip) const;

 private:
  struct Range {
    bool v6 = false;
    std::array<unsigned char, 16> bytes{};
    int prefix = 0;
  };
  std::vector<Range> ranges_;
};

// The client's address. The chain is X-Forwarded-For's entries followed by the peer; every
// proxy appends the address it received the request from, and only the trusted ones can be
// believed, so the client is the right-most address of the chain that is not a trusted proxy
// (whatever a client writes into the header itself stays to the left of that). With no trusted
// proxies that is the peer. When every entry is a trusted proxy, the left-most one; an entry that
// is not an address ends the walk at the last trusted one.
std::string ClientIp(absl::string_view peer, absl::string_view forwarded_for,
                     const TrustedProxies& trusted);

// A strong ETag of the body: a quoted 64-bit FNV-1a hash and the length in hex.
std::string StrongEtag(absl::string_view body);
// Whether an If-None-Match header ("*", or a list of tags, weak or not) matches `etag`.
bool IfNoneMatch(absl::string_view header, absl::string_view etag);

// Keeps printable ASCII only (gRPC metadata values), at most `max_size` bytes.
std::string MetadataSafe(absl::string_view value, size_t max_size);

}  // namespace kurt::edge
