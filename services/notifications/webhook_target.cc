#include "services/notifications/webhook_target.h"

#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "boost/asio/io_context.hpp"

namespace kurt::notifications {

namespace net = boost::asio;

absl::StatusOr<WebhookUrl> ParseWebhookUrl(absl::string_view url) {
  auto bad = [](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("url: ", why));
  };
  if (url.size() > kMaxWebhookUrlLength) {
    return bad(absl::StrCat("at most ", kMaxWebhookUrlLength, " characters"));
  }
  for (char c : url) {
    if (c <= 0x20 || c >= 0x7f) {
      return bad("printable ASCII without spaces only");
    }
  }
  WebhookUrl out;
  absl::string_view rest = url;
  if (absl::StartsWithIgnoreCase(rest, "https://")) {
    out.https = true;
    rest.remove_prefix(8);
  } else if (absl::StartsWithIgnoreCase(rest, "http://")) {
    rest.remove_prefix(7);
  } else {
    return bad("must be an http or https URL");
  }
  if (size_t hash = rest.find('#'); hash != absl::string_view::npos) {
    rest = rest.substr(0, hash);
  }
  size_t end = rest.find_first_of("/?");
  absl::string_view authority = rest.substr(0, end);
  out.target = end == absl::string_view::npos ? "/" : std::string(rest.substr(end));
  if (!out.target.empty() && out.target[0] == '?') {
    out.target = "/" + out.target;
  }
  if (authority.find('@') != absl::string_view::npos) {
    return bad("must not contain credentials");
  }
  absl::string_view port;
  if (absl::StartsWith(authority, "[")) {
    size_t close = authority.find(']');
    if (close == absl::string_view::npos) {
      return bad("unterminated IPv6 address");
    }
    out.host = std::string(authority.substr(1, close - 1));
    absl::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') {
        return bad("bad host");
      }
      port = after.substr(1);
    }
  } else {
    size_t colon = authority.find(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != absl::string_view::npos) {
      port = authority.substr(colon + 1);
    }
  }
  if (out.host.empty()) {
    return bad("needs a host");
  }
  for (char c : out.host) {
    if (!(absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' ||
          c == '_')) {
      return bad("bad host");
    }
  }
  out.port = out.https ? 443 : 80;
  if (!port.empty()) {
    if (!absl::SimpleAtoi(port, &out.port) || out.port < 1 || out.port > 65535) {
      return bad("port must be a number from 1 to 65535");
    }
  }
  return out;
}

namespace {

bool InternalV4(const net::ip::address_v4& a) {
  uint32_t v = a.to_uint();
  auto in = [v](uint32_t net_addr, int bits) {
    uint32_t mask = bits == 0 ? 0 : ~uint32_t{0} << (32 - bits);
    return (v & mask) == (net_addr & mask);
  };
  return in(0x00000000, 8) ||   // 0.0.0.0/8 "this network"
         in(0x0A000000, 8) ||   // 10/8
         in(0x64400000, 10) ||  // 100.64/10 carrier-grade NAT
         in(0x7F000000, 8) ||   // loopback
         in(0xA9FE0000, 16) ||  // link-local (cloud metadata services live here)
         in(0xAC100000, 12) ||  // 172.16/12
         in(0xC0000000, 24) ||  // 192.0.0/24 IETF protocol assignments
         in(0xC0000200, 24) ||  // TEST-NET-1
         in(0xC0A80000, 16) ||  // 192.168/16
         in(0xC6120000, 15) ||  // 198.18/15 benchmarking
         in(0xC6336400, 24) ||  // TEST-NET-2
         in(0xCB007100, 24) ||  // TEST-NET-3
         in(0xE0000000, 4) ||   // multicast
         in(0xF0000000, 4);     // reserved and broadcast
}

}  // namespace

bool IsInternalAddress(const net::ip::address& address) {
  if (address.is_v4()) {
    return InternalV4(address.to_v4());
  }
  const net::ip::address_v6 a = address.to_v6();
  if (a.is_v4_mapped()) {
    return InternalV4(net::ip::make_address_v4(net::ip::v4_mapped, a));
  }
  auto bytes = a.to_bytes();
  return a.is_loopback() || a.is_unspecified() || a.is_link_local() || a.is_site_local() ||
         a.is_multicast() || (bytes[0] & 0xfe) == 0xfc ||  // fc00::/7 unique local
         (bytes[0] == 0x20 && bytes[1] == 0x01 && bytes[2] == 0x0d && bytes[3] == 0xb8) ||
         (bytes[0] == 0 && bytes[1] == 0x64 && bytes[2] == 0xff && bytes[3] == 0x9b);  // NAT64
}

absl::StatusOr<std::vector<net::ip::tcp::endpoint>> SystemLookup(const std::string& host,
                                                                 int port) {
  net::io_context ioc;
  net::ip::tcp::resolver resolver(ioc);
  boost::system::error_code ec;
  auto results = resolver.resolve(host, std::to_string(port), ec);
  if (ec || results.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("url: host '", host, "' does not resolve",
                                                   ec ? ": " : "", ec ? ec.message() : ""));
  }
  std::vector<net::ip::tcp::endpoint> out;
  for (const auto& r : results) {
    out.push_back(r.endpoint());
  }
  return out;
}

absl::StatusOr<std::vector<net::ip::tcp::endpoint>> ResolveWebhook(const WebhookUrl& url,
                                                                   bool allow_internal,
                                                                   absl::Duration timeout,
                                                                   const HostLookup& lookup) {
  // Shared with the lookup's thread, which may outlive this call.
  struct Pending {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<absl::StatusOr<std::vector<net::ip::tcp::endpoint>>> result;
  };
  auto pending = std::make_shared<Pending>();
  std::thread([pending, lookup, host = url.host, port = url.port] {
    auto result = lookup(host, port);
    std::lock_guard<std::mutex> lock(pending->mu);
    pending->result = std::move(result);
    pending->cv.notify_all();
  }).detach();
  std::unique_lock<std::mutex> lock(pending->mu);
  if (!pending->cv.wait_for(lock, absl::ToChronoMilliseconds(timeout),
                            [&] { return pending->result.has_value(); })) {
    return absl::DeadlineExceededError(absl::StrCat(
        "url: resolving host '", url.host, "' took longer than ", absl::FormatDuration(timeout)));
  }
  absl::StatusOr<std::vector<net::ip::tcp::endpoint>> resolved = std::move(*pending->result);
  lock.unlock();
  if (!resolved.ok()) {
    return resolved.status();
  }
  for (const auto& endpoint : *resolved) {
    if (!allow_internal && IsInternalAddress(endpoint.address())) {
      return absl::InvalidArgumentError(
          absl::StrCat("url: '", url.host, "' resolves to ", endpoint.address().to_string(),
                       ", a private, loopback or link-local address; webhooks must be public"));
    }
  }
  return resolved;
}

}  // namespace kurt::notifications
