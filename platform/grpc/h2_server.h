// Kurt's own HTTP/2 server for the few unary gRPC methods whose cost per call matters most (the
// redirect's Resolve), beside gRPC's server on a port of its own (GrpcServer's h2 port).
//
// Why: gRPC 1.51's server reads a call on one thread, and each Finish is its own batch of
// operations, flushed with its own write before the next starts. Here each connection belongs to
// one I/O thread (nghttp2 over Asio, the server side of edge/h2_upstream.h): the thread that
// reads a batch of calls off the connection hands each to its method, and the answers given
// meanwhile, on that thread or handed to it from others (a Kafka acknowledgement), go out in one
// write per connection. Only the methods added are served; any other path answers UNIMPLEMENTED.
//
// What it keeps of gRPC's server: the gRPC wire format (length-prefixed messages, grpc-status,
// grpc-message percent-encoded, grpc-status-details-bin), deadlines from grpc-timeout, "-bin"
// metadata decoded, clients' cancellation (RST_STREAM: the answer is dropped), a request size
// limit (RESOURCE_EXHAUSTED), HTTP/2's flow control and stream limit, mutual TLS (1.2 or later,
// ALPN h2, a client certificate signed by the CA required), a handshake timeout, the connection
// age after which a GOAWAY sends clients to resolve the service again, and a graceful shutdown:
// GOAWAY, the calls in flight answered within the grace period, then the connections closed.
// Not kept: server reflection and health checking (the gRPC port serves both), server-side
// deadline expiry (a client cancels at its deadline, which drops the answer), compression.
//
// Lives as long as its owner (GrpcServer). AddMethod before Start; Start, Shutdown and the
// destructor from one thread. A method's handler runs on an I/O thread and must not block; its
// H2Responder may be called from any thread, once.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "grpcpp/support/status.h"
#include "platform/grpc/tls.h"

namespace boost::asio {
class io_context;
namespace ssl {
class context;
}  // namespace ssl
}  // namespace boost::asio

namespace kurt::platform {

struct H2ServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;  // 0 picks a free port (tests)
  // Threads that each own a share of the connections (round robin as they are accepted).
  int io_threads = 1;
  // Mutual TLS (platform/grpc/tls.h); none: plaintext HTTP/2 (h2c with prior knowledge).
  std::optional<TlsConfig> tls;
  // The largest request message taken (gRPC's default receive limit): RESOURCE_EXHAUSTED above.
  size_t max_request_bytes = size_t{4} << 20;
  // How long a new connection may take to complete its handshake (TLS, then HTTP/2's preface and
  // first SETTINGS) before it is closed.
  absl::Duration handshake_timeout = absl::Seconds(10);
  // SETTINGS_MAX_CONCURRENT_STREAMS: calls in flight per connection.
  uint32_t max_concurrent_streams = 1000;
  // Each connection gets a GOAWAY after about this long (±10 %), its calls finishing: clients
  // resolve the service again and reach replicas added since. Zero: never.
  absl::Duration max_connection_age = absl::ZeroDuration();
  // Called on an I/O thread for every call answered (or refused), with how long it took since its
  // headers arrived; e.g. the server's metrics. May be empty.
  std::function<void(absl::string_view path, grpc::StatusCode code, absl::Duration took)> observe;
};

// One call, as its method sees it.
struct H2Request {
  absl::string_view path;  // "/package.Service/Method": valid while the handler runs

  // The call's custom metadata: lowercase names, "-bin" values decoded. gRPC's own headers
  // (pseudo-headers, content-type, te, grpc-timeout, grpc-encoding...) are not in it.
  std::vector<std::pair<std::string, std::string>> metadata;
  absl::Time deadline = absl::InfiniteFuture();  // from grpc-timeout
  // With TLS: the names the client's certificate carries (its DNS subject alternative names, or
  // its common name when it has none), read once per connection and shared by its calls; null
  // without TLS.
  std::shared_ptr<const std::vector<std::string>> peer_names;
  std::string message;  // the request message's bytes
  // Whether the edge makes the call: left to whoever serves the method (GrpcServer's trust check,
  // platform/grpc/edge_trust.h) to decide and set.
  bool from_edge = false;
};

class H2Server;

// Answers one call: once, from any thread. `response` is the serialized response message (ignored
// unless `status` is OK). Dropped without a word when the client has gone (cancelled, or the
// connection closed). A responder destroyed without being called answers INTERNAL.
class H2Responder {
 public:
  H2Responder() = default;
  H2Responder(H2Responder&& other) noexcept;
  H2Responder& operator=(H2Responder&& other) noexcept;
  ~H2Responder();

  void operator()(const grpc::Status& status, std::string response = {});

  // Opaque to callers: what the server needs to find the call again.
  struct Target;

 private:
  friend class H2Server;
  explicit H2Responder(std::unique_ptr<Target> target);
  std::unique_ptr<Target> target_;
};

using H2Handler = std::function<void(H2Request&& request, H2Responder respond)>;

class H2Server {
 public:
  explicit H2Server(H2ServerOptions options);
  ~H2Server();
  H2Server(const H2Server&) = delete;
  H2Server& operator=(const H2Server&) = delete;

  // Serves `path` ("/package.Service/Method") with `handler`. Before Start.
  void AddMethod(std::string path, H2Handler handler);

  // Listens and starts the I/O threads; the port listened on. UNAVAILABLE when the port cannot be
  // bound, INVALID_ARGUMENT when the TLS files do not make a server context.
  absl::StatusOr<int> Start();

  // A GOAWAY on every connection (its calls in flight go on; new ones go elsewhere) and no more
  // connections accepted. Returns at once.
  void Drain();
  // Drain, then waits until the calls in flight are answered or `grace` has passed, then closes
  // every connection (a call answered later is dropped), stops the I/O threads, and waits for
  // every handler's answer (a call still being served holds the shutdown up, as gRPC's does).
  void Shutdown(absl::Duration grace);

  int port() const { return port_; }
  // Calls handed to a method and not yet answered.
  int in_flight() const;
  // Client connections open.
  int connections() const { return connections_.load(std::memory_order_relaxed); }

  class Loop;
  class Connection;
  struct Stream;

 private:
  friend class H2Responder;
  void CallAnswered();

  const H2ServerOptions options_;
  absl::flat_hash_map<std::string, H2Handler> methods_;
  std::shared_ptr<boost::asio::ssl::context> tls_context_;
  std::vector<std::unique_ptr<Loop>> loops_;
  std::vector<std::thread> threads_;
  class Acceptor;
  std::unique_ptr<Acceptor> acceptor_;
  int port_ = 0;
  bool started_ = false;
  bool shut_down_ = false;
  mutable std::mutex mu_;
  std::condition_variable answered_;
  int in_flight_ = 0;  // guarded by mu_
  std::atomic<int> connections_{0};
};

// The server side of `tls` as OpenSSL's context: TLS 1.2+, ALPN h2 chosen, the certificate chain
// and key presented, a client certificate signed by the CA required. INVALID_ARGUMENT when a PEM
// does not parse or the key is not the certificate's.
absl::StatusOr<std::shared_ptr<boost::asio::ssl::context>> H2ServerTlsContext(const TlsConfig& tls);

}  // namespace kurt::platform
