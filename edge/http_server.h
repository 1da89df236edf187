// An HTTP/1.1 server (Boost.Beast): keep-alive, one io_context and one acceptor per thread
// (SO_REUSEPORT, so the kernel spreads connections and a connection never changes thread), limits
// on header and body size, and read, idle and write timeouts. It parses and writes; what to
// answer is the HttpHandler's business.
//
// HttpServer lives in main (or a test) from Start to Stop. Each connection and each Exchange is
// touched only by its own I/O thread.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "boost/asio/any_io_executor.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/beast/http/message.hpp"
#include "boost/beast/http/string_body.hpp"
#include "platform/core/metrics.h"

namespace kurt::edge {

using HttpRequest = boost::beast::http::request<boost::beast::http::string_body>;
using HttpResponse = boost::beast::http::response<boost::beast::http::string_body>;

// How long an idle kept-alive connection stays open. Longer than the keep-alive of the proxy in
// front (ingress-nginx's upstream-keepalive-timeout, 60 s, deploy/ingress-nginx), so that the
// proxy is always the side that closes an idle connection: were the edge to close it at the same
// moment, a request the proxy sends on it just then meets a reset, and the client gets a 502 (a
// POST cannot be retried).
inline constexpr absl::Duration kDefaultIdleTimeout = absl::Seconds(75);

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0 picks a free one
  int threads = 1;
  size_t max_body_bytes = 1 << 20;                    // larger: 413
  size_t max_header_bytes = 16 << 10;                 // larger: 431
  int max_header_count = 64;                          // more: 431
  absl::Duration read_timeout = absl::Seconds(10);    // one request's header and body: else 408
  absl::Duration idle_timeout = kDefaultIdleTimeout;  // a kept-alive connection between requests
  absl::Duration write_timeout = absl::Seconds(30);   // each write (a slow reader is cut off)
  // Open client connections at most; one more is answered 503 and closed. Keeps the process
  // under its file descriptor limit with room for its upstream connections.
  int max_connections = 10000;
  // When accepting fails (EMFILE: no file descriptor left, ENFILE, ENOBUFS...), the acceptor
  // waits this long before it tries again, doubling up to the maximum, instead of spinning.
  absl::Duration accept_backoff = absl::Milliseconds(10);
  absl::Duration max_accept_backoff = absl::Seconds(1);
};

class Connection;

// One request and its answer. The handler answers with Respond, or streams with StartStream,
// WriteChunk... and EndStream. Every method must be called on executor(), except Respond, which
// may also be called on another thread while nothing else touches the exchange (an upstream
// call's completion thread): the connection waits, idle, for its answer.
class Exchange {
 public:
  Exchange(std::shared_ptr<Connection> connection, HttpRequest request);
  ~Exchange();

  HttpRequest& request() { return request_; }
  // The peer's IP address.
  const std::string& peer_address() const;
  boost::asio::any_io_executor executor() const;

  // Sends the response; then the connection reads its next request or closes.
  void Respond(HttpResponse response);

  // Sends a response given as bytes, as Respond does: `head` (the status line and header fields,
  // each line ending in CRLF), then `fields`, Content-Length and, when the connection is not kept
  // alive, Connection: close, then `body` (none to a HEAD). Written straight into the
  // connection's buffer: no header map, no serializer. For an HTTP/1.1 request only.
  void RespondPrebuilt(absl::string_view head,
                       absl::Span<const std::pair<absl::string_view, absl::string_view>> fields,
                       absl::string_view body);

  // Sends the head of a chunked response (its body is ignored), then calls `done(ok)`.
  void StartStream(HttpResponse head, std::function<void(bool ok)> done);
  // Sends one chunk, then calls `done(ok)`; ok is false once the client is gone.
  void WriteChunk(std::string data, std::function<void(bool ok)> done);
  // Ends the chunked body; the connection then goes on as after Respond.
  void EndStream();
  // Called once if the client disconnects while the response is streaming.
  void OnClientGone(std::function<void()> callback);

  bool responded() const { return responded_; }

 private:
  std::shared_ptr<Connection> connection_;
  HttpRequest request_;
  bool responded_ = false;
};

class HttpHandler {
 public:
  virtual ~HttpHandler() = default;
  virtual void Handle(std::shared_ptr<Exchange> exchange) = 0;
  // The answer to a request the server refuses itself (413, 431, 408, 400): the handler's error
  // format. `grpc_code` is the matching gRPC status code.
  virtual HttpResponse ServerError(unsigned http_status, int grpc_code, absl::string_view message,
                                   const HttpRequest* request) = 0;
};

class HttpServer {
 public:
  // `registry` (may be null) gets the server's connection metrics.
  HttpServer(HttpServerOptions options, HttpHandler* handler,
             metrics::Registry* registry = nullptr);
  ~HttpServer();

  // Binds, starts the I/O threads and returns the bound port.
  absl::StatusOr<int> Start();
  // Stops accepting, lets requests in flight finish for up to `grace`, then closes everything.
  void Stop(absl::Duration grace = absl::ZeroDuration());

  int port() const { return port_; }
  // Requests read and not yet answered (for graceful shutdown and tests).
  int in_flight() const { return in_flight_.load(); }

 private:
  struct Worker;
  friend class Connection;
  void Accept(Worker* w);
  // Answers a connection over max_connections with a 503 and closes it.
  void Refuse(boost::asio::ip::tcp::socket socket);

  friend class Exchange;

  HttpServerOptions options_;
  HttpHandler* handler_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::thread> threads_;
  std::atomic<int> in_flight_{0};
  std::atomic<int> connections_{0};
  std::string refusal_;  // the whole 503 response to a connection over the limit
  metrics::Gauge* open_gauge_ = nullptr;
  metrics::Counter* refused_ = nullptr;
  metrics::Counter* accept_errors_ = nullptr;
  std::atomic<bool> stopping_{false};
  int port_ = 0;
};

}  // namespace kurt::edge
