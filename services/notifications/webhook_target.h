// Webhook URLs: parsing, and the rule that a webhook never reaches a private, loopback,
// link-local (or otherwise internal) address unless the operator allows it (tests do). The rule
// is applied to every address the host resolves to, when the URL is set and again before every
// delivery (DNS may change), and the delivery connects only to the addresses that passed.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "boost/asio/ip/address.hpp"
#include "boost/asio/ip/tcp.hpp"

namespace kurt::notifications {

inline constexpr size_t kMaxWebhookUrlLength = 2048;

struct WebhookUrl {
  bool https = false;
  std::string host;  // without brackets for IPv6
  int port = 0;
  std::string target;  // path and query, at least "/"
};

// http or https, a host, an optional numeric port, printable ASCII, no user:password@, at most
// kMaxWebhookUrlLength characters; a fragment is dropped. Errors name the field "url".
absl::StatusOr<WebhookUrl> ParseWebhookUrl(absl::string_view url);

// Loopback, private (RFC 1918, fc00::/7), link-local, unspecified, carrier-grade NAT, multicast,
// broadcast, documentation/benchmark ranges, and IPv4-mapped forms of them.
bool IsInternalAddress(const boost::asio::ip::address& address);

// How a host name becomes addresses: the system's resolver (getaddrinfo) unless a test says.
using HostLookup = std::function<absl::StatusOr<std::vector<boost::asio::ip::tcp::endpoint>>(
    const std::string& host, int port)>;
absl::StatusOr<std::vector<boost::asio::ip::tcp::endpoint>> SystemLookup(const std::string& host,
                                                                         int port);

// How long ResolveWebhook waits for the resolver unless told.
inline constexpr absl::Duration kDefaultResolveTimeout = absl::Seconds(3);

// Resolves the URL's host within `timeout`; INVALID_ARGUMENT when the host does not resolve, or
// when an address is internal and `allow_internal` is false; DEADLINE_EXCEEDED when the resolver
// did not answer in time (getaddrinfo cannot be cancelled: the lookup finishes on a thread of its
// own and its answer is dropped, so a hanging name server holds a thread, never the caller).
absl::StatusOr<std::vector<boost::asio::ip::tcp::endpoint>> ResolveWebhook(
    const WebhookUrl& url, bool allow_internal, absl::Duration timeout = kDefaultResolveTimeout,
    const HostLookup& lookup = SystemLookup);

}  // namespace kurt::notifications
