// The edge's unary upstream calls as an HTTP/2 gRPC client (nghttp2 over Asio) on the I/O
// thread that serves the client's request: each I/O thread owns its connections to every replica
// of every service, so a call is written, its response read and the HTTP answer written on that
// one thread, with no thread hop, no lock and no gRPC core on the way (docs/edge.md, Upstreams).
//
// What the gRPC channels gave and this keeps: round robin over a service's replicas (IP addresses,
// or a DNS name resolved by Asio and resolved again when its connections fail), a replica that
// refuses or drops connections skipped, reconnection with a bounded backoff and a connect timeout,
// deadlines (grpc-timeout, and a local expiry answered DEADLINE_EXCEEDED with RST_STREAM CANCEL),
// one retry on another replica of the methods that may be sent twice when they fail UNAVAILABLE
// (throttled as gRPC's retry policy is), and transparent retries of the calls a server never
// processed (above a GOAWAY's last stream, refused, or queued on a connection that failed).
// With `tls` set, each connection is mutual TLS (1.2 or later, on OpenSSL through Asio): the edge's
// certificate presented, the server's verified against the CA and its name checked, ALPN h2
// required; the handshake is part of connecting (its failure is a connection failure like a refused
// connect).
//
// H2Upstreams is created with the Upstreams and outlives every call. Unary must be called on an
// I/O thread whose io_context runs only on that thread; its `done` runs on that thread (possibly
// before Unary returns). Shutdown is called once the I/O threads have stopped, before their
// io_contexts are destroyed.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "boost/asio/io_context.hpp"
#include "grpcpp/support/status.h"
#include "platform/grpc/tls.h"

namespace boost::asio::ssl {
class context;
}  // namespace boost::asio::ssl

namespace kurt::edge {

// A call's metadata: lowercase names and their values ("-bin" names: raw bytes, sent base64).
using H2Metadata = std::vector<std::pair<std::string, std::string>>;

struct H2UpstreamOptions {
  absl::Duration connect_timeout = absl::Seconds(1);
  absl::Duration max_reconnect_backoff = absl::Seconds(1);
  // Per service, the methods (names, not paths) retried once on another replica on UNAVAILABLE.
  std::map<std::string, std::vector<std::string>> retried_methods;
  // The largest response message taken (gRPC's default receive limit): RESOURCE_EXHAUSTED above.
  size_t max_response_bytes = size_t{4} << 20;
  // HTTP/2 receive windows (SETTINGS_INITIAL_WINDOW_SIZE per stream; the connection's).
  int32_t stream_window = 1 << 20;
  int32_t connection_window = 16 << 20;
  // Mutual TLS to every replica (platform/grpc/tls.h); none: plaintext (h2c).
  std::optional<platform::TlsConfig> tls;
  // With TLS, per service whose target is IP addresses, the name its servers' certificates must
  // carry (upstream.cc: CheckServersAsService's identity); otherwise the host dialled is checked.
  std::map<std::string, std::string> tls_server_names;
};

// The client side of `tls` as OpenSSL's context: TLS 1.2+, ALPN h2, the certificate chain and key
// presented, peers verified against the CA. INVALID_ARGUMENT when a PEM does not parse or the key
// is not the certificate's.
absl::StatusOr<std::shared_ptr<boost::asio::ssl::context>> H2ClientTlsContext(
    const platform::TlsConfig& tls);

class H2Upstreams {
 public:
  // `targets`: service full name -> comma-separated host:port addresses (ParseUpstreams); a key
  // "pkg.Service/Method" gives that method's calls their own (a port of its own on the same
  // replicas: kurt-links' Resolve on its h2 port).
  H2Upstreams(const std::map<std::string, std::string>& targets, H2UpstreamOptions options);
  ~H2Upstreams();
  H2Upstreams(const H2Upstreams&) = delete;
  H2Upstreams& operator=(const H2Upstreams&) = delete;

  bool Has(absl::string_view service) const;

  // The outcome and, when OK, the response message's bytes.
  using Done = std::function<void(const grpc::Status& status, std::string response)>;

  // Calls `method` ("/pkg.Service/Method") of `service` with `request` (a serialized message).
  // `ioc` is the calling thread's own io_context. A deadline of InfiniteFuture: none.
  void Unary(boost::asio::io_context& ioc, absl::string_view service, const std::string& method,
             H2Metadata metadata, absl::Time deadline, absl::string_view request, Done done);

  // Cancels every call in flight (CANCELLED), refuses the ones that would start (UNAVAILABLE)
  // and closes every connection. Only once no I/O thread runs.
  void Shutdown();

  // Calls started and not yet done, on every thread.
  int in_flight() const { return in_flight_.load(std::memory_order_relaxed); }

  class Loop;
  struct Call;
  class Connection;
  struct Service;

 private:
  Loop* LoopFor(boost::asio::io_context& ioc);

  const uint64_t id_;
  const std::map<std::string, std::string> targets_;
  absl::flat_hash_set<std::string> method_targets_;  // the keys of targets_ that name a method
  const H2UpstreamOptions options_;
  // With options_.tls: its context, or why there is none (every connection then fails with it).
  std::shared_ptr<boost::asio::ssl::context> tls_context_;
  std::string tls_error_;
  std::mutex loops_mu_;
  std::vector<std::unique_ptr<Loop>> loops_;  // guarded by loops_mu_
  std::atomic<bool> shut_down_{false};
  std::atomic<int> in_flight_{0};
};

}  // namespace kurt::edge
