#include "edge/http_server.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "boost/asio/dispatch.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/beast/core/buffers_range.hpp"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/core/tcp_stream.hpp"
#include "boost/beast/http/chunk_encode.hpp"
#include "boost/beast/http/empty_body.hpp"
#include "boost/beast/http/error.hpp"
#include "boost/beast/http/parser.hpp"
#include "boost/beast/http/read.hpp"
#include "boost/beast/http/serializer.hpp"
#include "boost/beast/http/write.hpp"
#include "grpcpp/support/status.h"
#include "platform/core/log.h"

namespace kurt::edge {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using error_code = beast::error_code;

namespace {

std::chrono::steady_clock::duration ToChrono(absl::Duration d) {
  return absl::ToChronoNanoseconds(d);
}

// A connection's socket, stream and timers name their io_context's executor type rather than
// any_io_executor: each asynchronous operation copies its I/O object's executor and tracks work
// on it, which through the type-erased wrapper costs indirect calls and copies per operation.
using IoExecutor = net::io_context::executor_type;
using Acceptor = tcp::acceptor::rebind_executor<IoExecutor>::other;
using Socket = tcp::socket::rebind_executor<IoExecutor>::other;
using Stream = beast::basic_stream<tcp, IoExecutor>;
using Timer = net::basic_waitable_timer<std::chrono::steady_clock,
                                        net::wait_traits<std::chrono::steady_clock>, IoExecutor>;

}  // namespace

struct HttpServer::Worker {
  net::io_context ioc{1};
  std::optional<Acceptor> acceptor;
  std::optional<Timer> retry;  // the wait after a failed accept
  absl::Duration backoff = absl::ZeroDuration();
};

// One accepted TCP connection: reads requests one at a time and writes their responses.
// Shared by its pending operations and the Exchange of the request being answered.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Socket socket, HttpServer* server)
      : stream_(std::move(socket)),
        read_timer_(stream_.get_executor()),
        timer_period_(
            ToChrono(std::max(absl::Milliseconds(1), std::min(server->options_.read_timeout,
                                                              server->options_.idle_timeout)))),
        server_(server) {
    int open = server_->connections_.fetch_add(1, std::memory_order_relaxed) + 1;
    if (server_->open_gauge_ != nullptr) {
      server_->open_gauge_->Set(open);
    }
  }
  ~Connection() {
    int open = server_->connections_.fetch_sub(1, std::memory_order_relaxed) - 1;
    if (server_->open_gauge_ != nullptr) {
      server_->open_gauge_->Set(open);
    }
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void Start() {
    error_code ec;
    tcp::endpoint peer = stream_.socket().remote_endpoint(ec);
    if (!ec) {
      peer_ = peer.address().to_string();
    }
    stream_.socket().set_option(tcp::no_delay(true), ec);
    // Send writes what it can at once, without waiting (asynchronous operations work as before).
    stream_.socket().non_blocking(true, ec);
    WaitForRequest();
    if (!closed_.load()) {
      WatchReadDeadline();
    }
  }

  const std::string& peer() const { return peer_; }
  net::any_io_executor executor() { return stream_.get_executor(); }

  // May be called on any thread while the connection waits for its answer (nothing else touches
  // it then): an upstream call's completion thread answers without a hop to the I/O thread. The
  // response is serialized into one buffer and written at once with a non-blocking send; only
  // what the socket does not take goes through an asynchronous write, completed on the I/O
  // thread. The next read is started from here too; its completion runs on the I/O thread.
  void Send(HttpResponse response) {
    if (!response.has_content_length()) {
      response.prepare_payload();
    }
    keep_alive_ = response.keep_alive();
    Serialize(response, &out_);
    Write();
  }

  // The response already in out() (RespondPrebuilt); the same threads as Send.
  std::string& out() { return out_; }
  void SendOut(bool keep_alive) {
    keep_alive_ = keep_alive;
    Write();
  }

 private:
  // Writes out_: at once with a non-blocking send, and what the socket does not take
  // asynchronously.
  void Write() {
    error_code ec;
    size_t written = stream_.socket().write_some(net::buffer(out_), ec);
    if (ec == net::error::would_block || ec == net::error::try_again) {
      ec = {};
      written = 0;
    }
    if (ec || written == out_.size()) {
      return OnWritten(ec);
    }
    stream_.expires_after(ToChrono(server_->options_.write_timeout));
    net::async_write(stream_, net::buffer(out_.data() + written, out_.size() - written),
                     [self = shared_from_this()](error_code ec, size_t) { self->OnWritten(ec); });
  }

 public:
  void StartStream(HttpResponse head, std::function<void(bool)> done) {
    streaming_ = true;
    stream_head_.emplace(std::move(head.base()));
    stream_head_->chunked(true);
    stream_head_->keep_alive(false);
    head_serializer_.emplace(*stream_head_);
    stream_.expires_after(ToChrono(server_->options_.write_timeout));
    http::async_write_header(
        stream_, *head_serializer_,
        [self = shared_from_this(), done = std::move(done)](error_code ec, size_t) {
          if (ec) {
            self->ClientGone();
          }
          if (!ec) {
            self->WatchForClose();
          }
          done(!ec);
        });
  }

  void WriteChunk(std::string data, std::function<void(bool)> done) {
    if (client_gone_) {
      net::post(stream_.get_executor(), [done = std::move(done)] { done(false); });
      return;
    }
    chunk_ = std::move(data);
    stream_.expires_after(ToChrono(server_->options_.write_timeout));
    net::async_write(stream_, http::make_chunk(net::buffer(chunk_)),
                     [self = shared_from_this(), done = std::move(done)](error_code ec, size_t) {
                       if (ec) {
                         self->ClientGone();
                       }
                       done(!ec);
                     });
  }

  void EndStream() {
    if (client_gone_) {
      Close();
      return;
    }
    stream_.expires_after(ToChrono(server_->options_.write_timeout));
    net::async_write(stream_, http::make_chunk_last(),
                     [self = shared_from_this()](error_code, size_t) { self->Close(); });
  }

  void OnClientGone(std::function<void()> callback) {
    if (client_gone_) {
      net::post(stream_.get_executor(), std::move(callback));
      return;
    }
    on_client_gone_ = std::move(callback);
  }

  // An Exchange went away without an answer: nothing more can be said on this connection.
  void Abandon() { Close(); }

  HttpServer* server() const { return server_; }
  bool stopping() const { return server_->stopping_; }

 private:
  const HttpServerOptions& options() const { return server_->options_; }

  // Between requests: wait for the first byte with the idle timeout.
  void WaitForRequest() {
    if (server_->stopping_) {
      Close();
      return;
    }
    if (buffer_.size() > 0) {
      ReadHeader(/*on_io_thread=*/false);
      return;
    }
    SetReadDeadline(options().idle_timeout);
    // Straight on the socket: the read timer watches it, not the stream's expiry, whose
    // machinery (two timers reset per request, a shared state and a guard per operation) costs
    // every request.
    stream_.socket().async_read_some(buffer_.prepare(8192),
                                     [self = shared_from_this()](error_code ec, size_t n) {
                                       if (ec) {
                                         return self->Close();
                                       }
                                       self->buffer_.commit(n);
                                       self->ReadHeader(/*on_io_thread=*/true);
                                     });
  }

  // `on_io_thread`: called on the I/O thread, where the handler may be called at once.
  void ReadHeader(bool on_io_thread) {
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(options().max_header_bytes));
    parser_->body_limit(options().max_body_bytes);
    // Our own timer rather than the stream's expiry: on a timeout the stream would close the
    // socket, and a slow client should still hear 408.
    SetReadDeadline(options().read_timeout);
    if (on_io_thread) {
      // A header that came whole with the last read (the usual case) is parsed here, as
      // async_read_header would, without its round through the executor's queue.
      error_code ec;
      size_t used = parser_->put(buffer_.data(), ec);
      buffer_.consume(used);
      if (ec ? ec != http::error::need_more : parser_->is_header_done()) {
        return OnHeader(ec);
      }
    }
    stream_.expires_never();  // a write may have left its expiry
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](error_code ec, size_t) { self->OnHeader(ec); });
  }

  // The read's deadline is a time stored per request (from any thread) and watched by one timer
  // per connection, never cancelled or armed on the way: arming and cancelling a timer twice per
  // request took locks, a timerfd update and a cancelled handler's run each. The timer fires at
  // most timer_period_ (the shorter of the two timeouts) after it was armed, so a deadline set
  // later is never earlier than the timer's expiry; it then looks at the deadline, cuts the read
  // off if it has passed, and waits again.
  void SetReadDeadline(absl::Duration timeout) {
    read_timed_out_.store(false, std::memory_order_relaxed);
    Clock::time_point now = Clock::now();
    Clock::duration d = ToChrono(timeout);
    Clock::time_point deadline =
        d >= Clock::time_point::max() - now ? Clock::time_point::max() : now + d;
    read_deadline_.store(deadline.time_since_epoch().count(), std::memory_order_release);
  }
  void ClearReadDeadline() {
    read_deadline_.store(Clock::time_point::max().time_since_epoch().count(),
                         std::memory_order_release);
  }

  // On the I/O thread only, as is everything that touches read_timer_.
  void WatchReadDeadline() {
    Clock::time_point deadline{Clock::duration(read_deadline_.load(std::memory_order_acquire))};
    read_timer_.expires_at(std::min(deadline, Clock::now() + timer_period_));
    read_timer_.async_wait([self = shared_from_this()](error_code ec) {
      if (ec || self->closed_.load()) {
        return;
      }
      Clock::rep deadline = self->read_deadline_.load(std::memory_order_acquire);
      if (deadline <= Clock::now().time_since_epoch().count()) {
        self->ClearReadDeadline();
        self->read_timed_out_.store(true, std::memory_order_relaxed);
        self->stream_.socket().cancel(ec);
      }
      self->WatchReadDeadline();
    });
  }

  void OnHeader(error_code ec) {
    if (ec) {
      return OnReadError(ec);
    }
    const auto& req = parser_->get();
    int count = 0;
    for (auto it = req.begin(); it != req.end(); ++it) {
      ++count;
    }
    if (count > options().max_header_count) {
      return Refuse(
          431, grpc::StatusCode::INVALID_ARGUMENT,
          absl::StrCat("too many header fields (at most ", options().max_header_count, ")"));
    }
    if (parser_->content_length() && *parser_->content_length() > options().max_body_bytes) {
      return RefuseBodyTooLarge();
    }
    if (parser_->is_done()) {
      ClearReadDeadline();
      return Dispatch();
    }
    if (beast::iequals(req[http::field::expect], "100-continue")) {
      continue_.emplace(http::status::continue_, 11);
      stream_.expires_never();
      http::async_write(stream_, *continue_, [self = shared_from_this()](error_code ec, size_t) {
        if (ec) {
          return self->Close();
        }
        self->ReadBody();
      });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    stream_.expires_never();
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](error_code ec, size_t) {
                       if (ec) {
                         return self->OnReadError(ec);
                       }
                       self->ClearReadDeadline();
                       self->Dispatch();
                     });
  }

  void OnReadError(error_code ec) {
    ClearReadDeadline();
    if (read_timed_out_.load(std::memory_order_relaxed)) {
      ec = beast::error::timeout;
    }
    if (ec == http::error::header_limit) {
      return Refuse(431, grpc::StatusCode::INVALID_ARGUMENT,
                    absl::StrCat("request header too large (at most ", options().max_header_bytes,
                                 " bytes)"));
    }
    if (ec == http::error::body_limit) {
      return RefuseBodyTooLarge();
    }
    if (ec == beast::error::timeout) {
      return Refuse(408, grpc::StatusCode::DEADLINE_EXCEEDED,
                    "the request was not received in time");
    }
    if (ec.category() == beast::error_code(http::error::end_of_stream).category() &&
        ec != http::error::end_of_stream && ec != http::error::partial_message) {
      return Refuse(400, grpc::StatusCode::INVALID_ARGUMENT,
                    absl::StrCat("malformed HTTP request: ", ec.message()));
    }
    Close();
  }

  void RefuseBodyTooLarge() {
    Refuse(413, grpc::StatusCode::INVALID_ARGUMENT,
           absl::StrCat("request body too large (at most ", options().max_body_bytes, " bytes)"));
  }

  // Answers a request the server will not pass on, then closes the connection.
  void Refuse(unsigned status, grpc::StatusCode code, absl::string_view message) {
    ClearReadDeadline();
    const HttpRequest* req = parser_ ? &parser_->get() : nullptr;
    HttpResponse res = server_->handler_->ServerError(status, code, message, req);
    res.keep_alive(false);
    Send(std::move(res));
  }

  // Every write sets its own expiry, and every read through the stream clears it first.
  void Dispatch() {
    auto exchange = std::make_shared<Exchange>(shared_from_this(), parser_->release());
    parser_.reset();
    server_->handler_->Handle(std::move(exchange));
  }

  // The whole response (status line, fields and body) into *out.
  static void Serialize(HttpResponse& response, std::string* out) {
    out->clear();
    http::response_serializer<http::string_body> serializer(response);
    error_code ec;
    while (!ec && !serializer.is_done()) {
      serializer.next(ec, [&](error_code&, const auto& buffers) {
        for (net::const_buffer b : beast::buffers_range_ref(buffers)) {
          out->append(static_cast<const char*>(b.data()), b.size());
        }
        serializer.consume(beast::buffer_bytes(buffers));
      });
    }
  }

  void OnWritten(error_code ec) {
    if (out_.capacity() > kKeptBufferBytes) {
      std::string().swap(out_);
    }
    if (ec || !keep_alive_) {
      return Close();
    }
    WaitForRequest();
  }

  // While a response streams, a read on the socket tells when the client goes away.
  void WatchForClose() {
    stream_.socket().async_read_some(net::buffer(watch_, sizeof(watch_)),
                                     [self = shared_from_this()](error_code ec, size_t) {
                                       if (ec) {
                                         return self->ClientGone();
                                       }
                                       if (!self->closed_) {
                                         self->WatchForClose();
                                       }
                                     });
  }

  void ClientGone() {
    if (client_gone_) {
      return;
    }
    client_gone_ = true;
    if (on_client_gone_) {
      auto cb = std::move(on_client_gone_);
      on_client_gone_ = nullptr;
      cb();
    }
  }

  void Close() {
    if (closed_.exchange(true)) {
      return;
    }
    ClearReadDeadline();
    // Close may run on an upstream call's completion thread; the timer belongs to the I/O thread.
    net::dispatch(stream_.get_executor(),
                  [self = shared_from_this()] { self->read_timer_.cancel(); });
    error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    // Drain what the client still sends for a moment, so that closing does not reset the
    // connection before it read our answer (e.g. a 413 while its body is on the way).
    stream_.expires_after(std::chrono::seconds(1));
    Drain();
  }

  void Drain() {
    stream_.async_read_some(net::buffer(drain_, sizeof(drain_)),
                            [self = shared_from_this()](error_code ec, size_t) {
                              if (ec) {
                                self->stream_.close();
                                self->ClientGone();
                                return;
                              }
                              self->Drain();
                            });
  }

  using Clock = std::chrono::steady_clock;
  Stream stream_;
  Timer read_timer_;
  const Clock::duration timer_period_;
  // Clock ticks; Clock::time_point::max() while no read is under way.
  std::atomic<Clock::rep> read_deadline_{Clock::time_point::max().time_since_epoch().count()};
  std::atomic<bool> read_timed_out_{false};
  beast::flat_buffer buffer_;
  HttpServer* server_;
  std::string peer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  // The serialized response being written; kept between requests up to kKeptBufferBytes.
  static constexpr size_t kKeptBufferBytes = 64 << 10;
  std::string out_;
  bool keep_alive_ = false;
  std::optional<http::response<http::empty_body>> continue_;

  bool streaming_ = false;
  bool client_gone_ = false;
  std::atomic<bool> closed_{false};
  std::optional<http::response<http::empty_body>> stream_head_;
  std::optional<http::response_serializer<http::empty_body>> head_serializer_;
  std::string chunk_;
  std::function<void()> on_client_gone_;
  char watch_[512];
  char drain_[4096];
};

Exchange::Exchange(std::shared_ptr<Connection> connection, HttpRequest request)
    : connection_(std::move(connection)), request_(std::move(request)) {
  connection_->server()->in_flight_.fetch_add(1, std::memory_order_relaxed);
}

Exchange::~Exchange() {
  if (!responded_) {
    // Asio may throw while closing; from a destructor that would end the process, so a
    // connection that cannot be closed now is left to its timers.
    try {
      connection_->Abandon();
    } catch (const std::exception& e) {
      KURT_LOG(kWarn, "closing an abandoned connection failed", {"error", e.what()});
    }
  }
  connection_->server()->in_flight_.fetch_sub(1, std::memory_order_relaxed);
}

const std::string& Exchange::peer_address() const { return connection_->peer(); }

net::any_io_executor Exchange::executor() const { return connection_->executor(); }

void Exchange::Respond(HttpResponse response) {
  if (responded_) {
    return;
  }
  responded_ = true;
  response.keep_alive(response.keep_alive() && request_.keep_alive() && !connection_->stopping());
  if (request_.method() == boost::beast::http::verb::head) {
    // The length a GET would have, and no body.
    size_t length = response.body().size();
    response.body().clear();
    response.content_length(length);
  }
  connection_->Send(std::move(response));
}

void Exchange::RespondPrebuilt(
    absl::string_view head,
    absl::Span<const std::pair<absl::string_view, absl::string_view>> fields,
    absl::string_view body) {
  if (responded_) {
    return;
  }
  responded_ = true;
  bool keep_alive = request_.keep_alive() && !connection_->stopping();
  bool head_only = request_.method() == boost::beast::http::verb::head;
  std::string& out = connection_->out();
  out.clear();
  out.append(head.data(), head.size());
  for (const auto& [name, value] : fields) {
    absl::StrAppend(&out, name, ": ", value, "\r\n");
  }
  absl::StrAppend(&out, "Content-Length: ", body.size(), "\r\n",
                  keep_alive ? "" : "Connection: close\r\n", "\r\n");
  if (!head_only) {
    out.append(body.data(), body.size());
  }
  connection_->SendOut(keep_alive);
}

void Exchange::StartStream(HttpResponse head, std::function<void(bool ok)> done) {
  responded_ = true;
  connection_->StartStream(std::move(head), std::move(done));
}

void Exchange::WriteChunk(std::string data, std::function<void(bool ok)> done) {
  connection_->WriteChunk(std::move(data), std::move(done));
}

void Exchange::EndStream() { connection_->EndStream(); }

void Exchange::OnClientGone(std::function<void()> callback) {
  connection_->OnClientGone(std::move(callback));
}

HttpServer::HttpServer(HttpServerOptions options, HttpHandler* handler, metrics::Registry* registry)
    : options_(std::move(options)), handler_(handler) {
  if (registry != nullptr) {
    open_gauge_ = &registry->AddGauge("kurt_edge_connections", "Client connections open").Get();
    refused_ = &registry
                    ->AddCounter("kurt_edge_connections_refused_total",
                                 "Client connections answered 503 and closed: over "
                                 "--max_connections")
                    .Get();
    accept_errors_ = &registry
                          ->AddCounter("kurt_edge_accept_errors_total",
                                       "Failed accepts (EMFILE: out of file descriptors, ...); "
                                       "each is followed by a backoff")
                          .Get();
  }
  HttpResponse res{http::status::service_unavailable, 11};
  res.set(http::field::content_type, "application/json");
  res.set(http::field::retry_after, "1");
  res.body() =
      absl::StrCat(R"({"code":14,"message":"too many connections to this server (at most )",
                   options_.max_connections, R"(); retry later","details":[]})");
  res.keep_alive(false);
  res.prepare_payload();
  std::ostringstream out;
  out << res;
  refusal_ = out.str();
}

HttpServer::~HttpServer() { Stop(); }

absl::StatusOr<int> HttpServer::Start() {
  error_code ec;
  net::ip::address address = net::ip::make_address(options_.host, ec);
  if (ec) {
    return absl::InvalidArgumentError(absl::StrCat("bad listen address ", options_.host));
  }
  int port = options_.port;
  int threads = std::max(1, options_.threads);
  for (int i = 0; i < threads; ++i) {
    auto worker = std::make_unique<Worker>();
    Acceptor& acceptor = worker->acceptor.emplace(worker->ioc.get_executor());
    tcp::endpoint endpoint(address, static_cast<uint16_t>(port));
    acceptor.open(endpoint.protocol(), ec);
    if (!ec) {
      acceptor.set_option(net::socket_base::reuse_address(true), ec);
    }
    if (!ec) {
      using reuse_port = net::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;
      acceptor.set_option(reuse_port(true), ec);
    }
    if (!ec) {
      acceptor.bind(endpoint, ec);
    }
    if (!ec) {
      acceptor.listen(net::socket_base::max_listen_connections, ec);
    }
    if (ec) {
      return absl::UnavailableError(
          absl::StrCat("cannot listen on ", options_.host, ":", port, ": ", ec.message()));
    }
    port = acceptor.local_endpoint().port();
    workers_.push_back(std::move(worker));
  }
  port_ = port;
  for (auto& worker : workers_) {
    Worker* w = worker.get();
    net::post(w->ioc, [this, w] { Accept(w); });
    threads_.emplace_back([w] { w->ioc.run(); });
  }
  return port_;
}

void HttpServer::Accept(Worker* w) {
  w->acceptor->async_accept([this, w](error_code ec, Socket socket) {
    if (ec == net::error::operation_aborted || !w->acceptor->is_open()) {
      return;
    }
    if (ec) {
      // Out of file descriptors (or buffers): the pending connection stays in the backlog and
      // would fail again at once, so wait before the next try rather than spin on it.
      if (accept_errors_ != nullptr) {
        accept_errors_->Increment();
      }
      w->backoff = w->backoff == absl::ZeroDuration()
                       ? options_.accept_backoff
                       : std::min(w->backoff * 2, options_.max_accept_backoff);
      KURT_LOG(kWarn, "accept failed; backing off", {"error", ec.message()},
               {"ms", absl::ToInt64Milliseconds(w->backoff)});
      w->retry.emplace(w->ioc.get_executor());
      w->retry->expires_after(ToChrono(w->backoff));
      w->retry->async_wait([this, w](error_code wait_ec) {
        if (!wait_ec && w->acceptor->is_open()) {
          Accept(w);
        }
      });
      return;
    }
    w->backoff = absl::ZeroDuration();
    if (connections_.load(std::memory_order_relaxed) >= options_.max_connections) {
      Refuse(std::move(socket));
    } else {
      std::make_shared<Connection>(std::move(socket), this)->Start();
    }
    Accept(w);
  });
}

void HttpServer::Refuse(tcp::socket socket) {
  if (refused_ != nullptr) {
    refused_->Increment();
  }
  // Written whole, then the connection is half-closed and drained for a moment, so that the
  // client reads the answer before the close (a request it sent meanwhile would otherwise turn
  // the close into a reset).
  auto stream = std::make_shared<beast::tcp_stream>(std::move(socket));
  stream->expires_after(std::chrono::seconds(1));
  net::async_write(stream->socket(), net::buffer(refusal_), [stream](error_code ec, size_t) {
    if (ec) {
      return;
    }
    stream->socket().shutdown(tcp::socket::shutdown_send, ec);
    auto drain = std::make_shared<std::array<char, 1024>>();
    auto read = std::make_shared<std::function<void()>>();
    *read = [stream, drain, read] {
      stream->async_read_some(net::buffer(*drain), [stream, drain, read](error_code e, size_t) {
        if (e) {
          stream->close();
          *read = nullptr;  // breaks the cycle
          return;
        }
        (*read)();
      });
    };
    (*read)();
  });
}

void HttpServer::Stop(absl::Duration grace) {
  if (threads_.empty()) {
    return;
  }
  stopping_ = true;
  // The listening sockets are closed before anything else: until then the kernel would go on
  // accepting connections that no thread will serve (a balancer's request would hang on one).
  std::vector<std::future<void>> closed;
  for (auto& worker : workers_) {
    Worker* w = worker.get();
    auto done = std::make_shared<std::promise<void>>();
    closed.push_back(done->get_future());
    net::post(w->ioc, [w, done] {
      error_code ec;
      w->acceptor->close(ec);
      if (w->retry) {
        w->retry->cancel();
      }
      done->set_value();
    });
  }
  for (std::future<void>& f : closed) {
    f.wait();
  }
  absl::Time deadline = absl::Now() + grace;
  while (in_flight_.load() > 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  for (auto& worker : workers_) {
    worker->ioc.stop();
  }
  for (std::thread& t : threads_) {
    t.join();
  }
  threads_.clear();
}

}  // namespace kurt::edge
