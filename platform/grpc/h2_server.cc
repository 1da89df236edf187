#include "platform/grpc/h2_server.h"

#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstring>
#include <random>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/ssl/context.hpp"
#include "boost/asio/ssl/error.hpp"
#include "boost/asio/ssl/stream.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/asio/write.hpp"
#include "platform/core/log.h"
#include "platform/grpc/grpc_wire.h"

namespace kurt::platform {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;

namespace {

// What one connection reads at a time: many small calls per read under load.
constexpr size_t kReadBufferBytes = 64 << 10;
// HTTP/2 receive windows: a request up to the size limit goes without waiting for WINDOW_UPDATEs.
constexpr int32_t kStreamWindow = 1 << 20;
constexpr int32_t kConnectionWindow = 16 << 20;
// The most header bytes (names and values) one call may carry; its stream is reset above.
constexpr size_t kMaxHeaderBytes = 16 << 10;
constexpr size_t kPrefixBytes = 5;  // a gRPC message's compressed flag and length

nghttp2_nv Header(absl::string_view name, absl::string_view value) {
  return nghttp2_nv{const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(name.data())),
                    const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(value.data())),
                    name.size(), value.size(), NGHTTP2_NV_FLAG_NONE};
}

// Headers of gRPC's own, not the call's metadata.
bool IsReservedHeader(absl::string_view name) {
  return name.empty() || name[0] == ':' || name == "content-type" || name == "te" ||
         name == "grpc-timeout" || name == "grpc-encoding" || name == "grpc-accept-encoding" ||
         name == "content-length";
}

// The certificate's DNS subject alternative names, or its common name when it has none.
std::vector<std::string> PeerNames(SSL* ssl) {
  std::vector<std::string> names;
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (cert == nullptr) {
    return names;
  }
  auto* sans =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (sans != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* name = sk_GENERAL_NAME_value(sans, i);
      if (name->type == GEN_DNS) {
        const ASN1_STRING* s = name->d.dNSName;
        names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                           static_cast<size_t>(ASN1_STRING_length(s)));
      }
    }
    GENERAL_NAMES_free(sans);
  }
  if (names.empty()) {
    X509_NAME* subject = X509_get_subject_name(cert);
    int at = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    if (at >= 0) {
      const ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, at));
      names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                         static_cast<size_t>(ASN1_STRING_length(s)));
    }
  }
  return names;
}

}  // namespace

absl::StatusOr<std::shared_ptr<net::ssl::context>> H2ServerTlsContext(const TlsConfig& tls) {
  auto context = std::make_shared<net::ssl::context>(net::ssl::context::tls_server);
  if (absl::Status s = UseMutualTls(context.get(), tls,
                                    net::ssl::verify_peer | net::ssl::verify_fail_if_no_peer_cert);
      !s.ok()) {
    return s;
  }
  SSL_CTX* ctx = context->native_handle();
  // gRPC over TLS is HTTP/2, chosen by ALPN: a client that does not offer h2 is refused.
  SSL_CTX_set_alpn_select_cb(
      ctx,
      [](SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
         unsigned int inlen, void*) -> int {
        for (unsigned int i = 0; i < inlen; i += 1 + in[i]) {
          if (in[i] == 2 && i + 3 <= inlen && std::memcmp(in + i + 1, "h2", 2) == 0) {
            *out = in + i + 1;
            *outlen = 2;
            return SSL_TLSEXT_ERR_OK;
          }
        }
        return SSL_TLSEXT_ERR_ALERT_FATAL;
      },
      nullptr);
  return context;
}

// One call's stream, from its HEADERS until nghttp2 closes it.
struct H2Server::Stream {
  int32_t id = 0;
  std::string path;
  bool post = false;           // :method is POST
  bool grpc_content = false;   // content-type application/grpc[+proto...]
  bool compressed_ok = false;  // grpc-encoding names a codec (only "identity" is taken)
  H2Request request;
  std::optional<grpc::Status> refusal;  // what was wrong with the headers or the body
  size_t header_bytes = 0;
  std::string body;                    // the DATA frames' bytes (up to the limit)
  const H2Handler* handler = nullptr;  // once its headers named a method served here
  bool dispatched = false;             // handed to its handler, or refused
  bool answered = false;
  absl::Time arrived;
  // The response message (prefixed), sent through the data provider; then the trailer.
  std::string out;
  size_t out_sent = 0;
};

struct H2Responder::Target {
  H2Server::Loop* loop = nullptr;
  std::shared_ptr<H2Server::Connection> connection;
  int32_t stream_id = 0;
};

// One I/O thread's io_context, its connections, and the answers handed to it from elsewhere.
class H2Server::Loop {
 public:
  explicit Loop(H2Server* server) : server_(server), guard_(net::make_work_guard(ioc_)) {}

  net::io_context& ioc() { return ioc_; }
  H2Server* server() const { return server_; }

  void Adopt(const std::shared_ptr<Connection>& connection) {
    connections_.emplace(connection.get(), connection);
    server_->connections_.fetch_add(1, std::memory_order_relaxed);
  }
  void Forget(Connection* connection) {
    if (connections_.erase(connection) > 0) {
      server_->connections_.fetch_sub(1, std::memory_order_relaxed);
    }
  }

  // From any thread. Only the first answer handed over since the loop last took them wakes it.
  void Answer(std::unique_ptr<H2Responder::Target> target, const grpc::Status& status,
              std::string response) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!stopped_) {
        pending_.push_back(Pending{std::move(target), status, std::move(response)});
        if (wake_posted_) {
          return;
        }
        wake_posted_ = true;
      }
    }
    if (target != nullptr) {
      // The loop has stopped: the connection is closed, the answer goes nowhere.
      target.reset();
      server_->CallAnswered();
      return;
    }
    net::post(ioc_, [this] { RunAnswers(); });
  }

  // On the loop's thread: the answers handed over, each connection written once.
  void RunAnswers();

  // On the loop's thread.
  void DrainConnections();
  void CloseConnections();

  // After the loop's thread has stopped: answers are dropped from now on.
  void Stop() {
    std::vector<Pending> left;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopped_ = true;
      left.swap(pending_);
    }
    for (Pending& p : left) {
      p.target.reset();
      server_->CallAnswered();
    }
  }

  void Run() { ioc_.run(); }
  void ReleaseWork() { guard_.reset(); }

 private:
  struct Pending {
    std::unique_ptr<H2Responder::Target> target;
    grpc::Status status;
    std::string response;
  };

  H2Server* const server_;
  net::io_context ioc_{1};
  net::executor_work_guard<net::io_context::executor_type> guard_;
  absl::flat_hash_map<Connection*, std::shared_ptr<Connection>> connections_;
  std::vector<Pending> running_;       // the batch being answered
  std::vector<Connection*> to_flush_;  // connections the batch answered on
  std::mutex mu_;
  std::vector<Pending> pending_;  // guarded by mu_
  bool wake_posted_ = false;      // guarded by mu_
  bool stopped_ = false;          // guarded by mu_
};

// One client connection: its socket (TLS or not), its nghttp2 session and streams. Touched only
// on its loop's thread; kept alive by the loop while open and by the responders of its calls.
class H2Server::Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Loop* loop, tcp::socket socket, net::ssl::context* tls)
      : loop_(loop),
        socket_(std::move(socket)),
        age_timer_(loop->ioc()),
        handshake_timer_(loop->ioc()) {
    if (tls != nullptr) {
      tls_ = std::make_unique<net::ssl::stream<tcp::socket&>>(socket_, *tls);
    }
  }
  ~Connection() {
    if (session_ != nullptr) {
      nghttp2_session_del(session_);
    }
  }

  void Start() {
    error_code ignored;
    socket_.set_option(tcp::no_delay(true), ignored);
    ArmAge();
    // A client that never completes its handshake (TLS, then HTTP/2's preface and SETTINGS) does
    // not keep its socket.
    handshake_timer_.expires_after(absl::ToChronoNanoseconds(server()->options_.handshake_timeout));
    handshake_timer_.async_wait([weak = weak_from_this()](const error_code& ec) {
      if (auto self = weak.lock(); self && !ec && !self->settings_seen_) {
        KURT_LOG(kDebug, "h2 server: no handshake in time; closing");
        self->Close();
      }
    });
    if (tls_ == nullptr) {
      return StartSession();
    }
    auto self = shared_from_this();
    tls_->async_handshake(net::ssl::stream_base::server, [self](const error_code& ec) {
      if (self->closed_) {
        return;
      }
      if (ec) {
        KURT_LOG(kDebug, "h2 server: TLS handshake failed", {"error", ec.message()});
        return self->Close();
      }
      self->peer_names_ =
          std::make_shared<const std::vector<std::string>>(PeerNames(self->tls_->native_handle()));
      self->StartSession();
    });
  }

  // A GOAWAY naming the last call read: those go on, later ones are the client's to retry.
  void GoAway() {
    if (closed_ || draining_) {
      return;
    }
    draining_ = true;
    if (session_ != nullptr) {
      nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                            nghttp2_session_get_last_proc_stream_id(session_), NGHTTP2_NO_ERROR,
                            nullptr, 0);
      Flush();
    } else {
      Close();
    }
  }

  void Close() {
    if (closed_) {
      return;
    }
    closed_ = true;
    error_code ignored;
    age_timer_.cancel();
    handshake_timer_.cancel();
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    streams_.clear();
    auto self = shared_from_this();  // Forget may drop the loop's reference
    loop_->Forget(this);
  }

  // The answer to stream `id`, if it is still open (its client may have cancelled, or gone).
  // True when there is something to write.
  bool Respond(int32_t id, const grpc::Status& status, const std::string& response);
  void Flush();

  bool flush_queued = false;  // by Loop::RunAnswers

 private:
  void ArmAge();
  void StartSession();
  void Read();
  void CloseIfDone() {
    if (closed_ || session_ == nullptr || writing_) {
      return;
    }
    if ((draining_ && streams_.empty()) ||
        (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_))) {
      Close();
    }
  }
  // Once a call's headers are in: true when it was refused on them (answered).
  bool Screen(Stream* stream);
  // Once its request has ended: hands it to its method, or refuses it.
  void Dispatch(Stream* stream);
  void SubmitError(Stream* stream, const grpc::Status& status);
  void SubmitHttpError(Stream* stream, absl::string_view http_status);
  Stream* Find(int32_t id) {
    auto it = streams_.find(id);
    return it == streams_.end() ? nullptr : it->second.get();
  }
  H2Server* server() const { return loop_->server(); }

  static int OnBeginHeaders(nghttp2_session* session, const nghttp2_frame* frame, void* user);
  static int OnHeader(nghttp2_session* session, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t flags,
                      void* user);
  static int OnData(nghttp2_session* session, uint8_t flags, int32_t stream_id, const uint8_t* data,
                    size_t len, void* user);
  static int OnFrameRecv(nghttp2_session* session, const nghttp2_frame* frame, void* user);
  static int OnStreamClose(nghttp2_session* session, int32_t stream_id, uint32_t error_code,
                           void* user);
  static ssize_t ReadBody(nghttp2_session* session, int32_t stream_id, uint8_t* buf, size_t length,
                          uint32_t* data_flags, nghttp2_data_source* source, void* user);

  Loop* const loop_;
  tcp::socket socket_;
  std::unique_ptr<net::ssl::stream<tcp::socket&>> tls_;
  net::steady_timer age_timer_;
  net::steady_timer handshake_timer_;
  bool settings_seen_ = false;  // the client's first SETTINGS: its handshake is done
  nghttp2_session* session_ = nullptr;
  absl::flat_hash_map<int32_t, std::unique_ptr<Stream>> streams_;
  std::shared_ptr<const std::vector<std::string>> peer_names_;
  std::array<uint8_t, kReadBufferBytes> in_{};
  std::string out_;
  bool writing_ = false;
  bool draining_ = false;
  bool closed_ = false;
};

void H2Server::Loop::RunAnswers() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    running_.swap(pending_);
    wake_posted_ = false;
  }
  for (Pending& p : running_) {
    Connection* connection = p.target->connection.get();
    if (connection->Respond(p.target->stream_id, p.status, p.response) &&
        !connection->flush_queued) {
      connection->flush_queued = true;
      to_flush_.push_back(connection);
    }
  }
  for (Connection* connection : to_flush_) {
    connection->flush_queued = false;
    connection->Flush();
  }
  to_flush_.clear();
  for (Pending& p : running_) {
    p.target.reset();
    server_->CallAnswered();
  }
  running_.clear();
}

void H2Server::Loop::DrainConnections() {
  std::vector<std::shared_ptr<Connection>> all;
  for (auto& [raw, connection] : connections_) {
    all.push_back(connection);
  }
  for (auto& connection : all) {
    connection->GoAway();
  }
}

void H2Server::Loop::CloseConnections() {
  std::vector<std::shared_ptr<Connection>> all;
  for (auto& [raw, connection] : connections_) {
    all.push_back(connection);
  }
  for (auto& connection : all) {
    connection->Close();
  }
}

void H2Server::Connection::ArmAge() {
  const absl::Duration age = server()->options_.max_connection_age;
  if (age <= absl::ZeroDuration()) {
    return;
  }
  // ±10 %, so that connections opened together do not all end together.
  thread_local std::minstd_rand random(std::random_device{}());
  const double jitter = std::uniform_real_distribution<double>(0.9, 1.1)(random);
  age_timer_.expires_after(absl::ToChronoNanoseconds(age * jitter));
  std::weak_ptr<Connection> weak = weak_from_this();
  age_timer_.async_wait([weak](const error_code& ec) {
    if (auto self = weak.lock(); self && !ec) {
      self->GoAway();
    }
  });
}

void H2Server::Connection::StartSession() {
  static nghttp2_session_callbacks* const callbacks = [] {
    nghttp2_session_callbacks* cb = nullptr;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, &Connection::OnBeginHeaders);
    nghttp2_session_callbacks_set_on_header_callback(cb, &Connection::OnHeader);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, &Connection::OnData);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, &Connection::OnFrameRecv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, &Connection::OnStreamClose);
    return cb;
  }();
  if (nghttp2_session_server_new(&session_, callbacks, this) != 0) {
    KURT_LOG(kError, "h2 server: nghttp2 refused a session");
    return Close();
  }
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, server()->options_.max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, static_cast<uint32_t>(kStreamWindow)},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, static_cast<uint32_t>(kMaxHeaderBytes)},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, kConnectionWindow);
  if (draining_) {
    // Drained while its handshake ran.
    nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, nullptr, 0);
  }
  Flush();
  Read();
}

void H2Server::Connection::Read() {
  auto self = shared_from_this();
  auto on_read = [self](const error_code& ec, size_t n) {
    if (self->closed_) {
      return;
    }
    if (ec) {
      if (ec != net::error::eof && ec != net::ssl::error::stream_truncated &&
          ec != net::error::connection_reset) {
        KURT_LOG(kDebug, "h2 server: read failed", {"error", ec.message()});
      }
      return self->Close();
    }
    ssize_t rv = nghttp2_session_mem_recv(self->session_, self->in_.data(), n);
    if (rv < 0) {
      KURT_LOG(kDebug, "h2 server: HTTP/2 error",
               {"error", nghttp2_strerror(static_cast<int>(rv))});
      // nghttp2 has queued its GOAWAY for a protocol error: send it, then close.
      self->Flush();
      return self->Close();
    }
    // Answers given on this thread while the calls were read go out in the same write.
    self->loop_->RunAnswers();
    self->Flush();
    if (!self->closed_) {
      self->CloseIfDone();
    }
    if (!self->closed_) {
      self->Read();
    }
  };
  if (tls_ != nullptr) {
    tls_->async_read_some(net::buffer(in_), std::move(on_read));
  } else {
    socket_.async_read_some(net::buffer(in_), std::move(on_read));
  }
}

void H2Server::Connection::Flush() {
  if (closed_ || writing_ || session_ == nullptr) {
    return;
  }
  for (;;) {
    const uint8_t* data = nullptr;
    ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n < 0) {
      KURT_LOG(kDebug, "h2 server: HTTP/2 error", {"error", nghttp2_strerror(static_cast<int>(n))});
      return Close();
    }
    if (n == 0) {
      break;
    }
    out_.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
  }
  if (out_.empty()) {
    return CloseIfDone();
  }
  // Plaintext: what the socket takes at once goes now, without a round through the reactor.
  // TLS always writes asynchronously (Asio's SSL stream must not meet a full non-blocking socket
  // in a synchronous write: what it encrypted and could not send would be lost).
  size_t written = 0;
  if (tls_ == nullptr) {
    error_code ec;
    written = socket_.write_some(net::buffer(out_), ec);
    if (ec == net::error::would_block || ec == net::error::try_again) {
      ec = {};
      written = 0;
    }
    if (ec) {
      return Close();
    }
  }
  if (written == out_.size()) {
    out_.clear();
    return CloseIfDone();
  }
  out_.erase(0, written);
  writing_ = true;
  auto self = shared_from_this();
  auto on_written = [self](const error_code& ec, size_t /*n*/) {
    self->writing_ = false;
    if (self->closed_) {
      return;
    }
    if (ec) {
      return self->Close();
    }
    self->out_.clear();
    self->Flush();
  };
  if (tls_ != nullptr) {
    net::async_write(*tls_, net::buffer(out_), std::move(on_written));
  } else {
    net::async_write(socket_, net::buffer(out_), std::move(on_written));
  }
}

int H2Server::Connection::OnBeginHeaders(nghttp2_session* session, const nghttp2_frame* frame,
                                         void* user) {
  auto* self = static_cast<Connection*>(user);
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
    return 0;
  }
  auto stream = std::make_unique<Stream>();
  stream->id = frame->hd.stream_id;
  nghttp2_session_set_stream_user_data(session, stream->id, stream.get());
  self->streams_.emplace(stream->id, std::move(stream));
  return 0;
}

int H2Server::Connection::OnHeader(nghttp2_session* session, const nghttp2_frame* frame,
                                   const uint8_t* name_bytes, size_t namelen,
                                   const uint8_t* value_bytes, size_t valuelen, uint8_t /*flags*/,
                                   void* /*user*/) {
  auto* stream =
      static_cast<Stream*>(nghttp2_session_get_stream_user_data(session, frame->hd.stream_id));
  if (stream == nullptr || frame->hd.type != NGHTTP2_HEADERS) {
    return 0;  // trailers of a request: nothing gRPC sends
  }
  stream->header_bytes += namelen + valuelen;
  if (stream->header_bytes > kMaxHeaderBytes) {
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // resets the stream
  }
  absl::string_view name(reinterpret_cast<const char*>(name_bytes), namelen);
  absl::string_view value(reinterpret_cast<const char*>(value_bytes), valuelen);
  if (name == ":path") {
    stream->path = std::string(value);
  } else if (name == ":method") {
    stream->post = value == "POST";
  } else if (name == "content-type") {
    stream->grpc_content = absl::StartsWith(value, "application/grpc") &&
                           (value.size() == 16 || value[16] == '+' || value[16] == ';');
  } else if (name == "grpc-timeout") {
    std::optional<absl::Duration> timeout = ParseGrpcTimeout(value);
    if (!timeout) {
      stream->refusal = grpc::Status(grpc::StatusCode::INTERNAL,
                                     absl::StrCat("malformed grpc-timeout \"", value, "\""));
    } else {
      stream->request.deadline = absl::Now() + *timeout;
    }
  } else if (name == "grpc-encoding") {
    stream->compressed_ok = value == "identity";
  } else if (!IsReservedHeader(name)) {
    std::string decoded;
    if (absl::EndsWith(name, "-bin")) {
      if (!absl::Base64Unescape(value, &decoded)) {
        stream->refusal = grpc::Status(grpc::StatusCode::INTERNAL,
                                       absl::StrCat("metadata ", name, " is not base64"));
        return 0;
      }
    } else {
      decoded = std::string(value);
    }
    stream->request.metadata.emplace_back(std::string(name), std::move(decoded));
  }
  return 0;
}

int H2Server::Connection::OnData(nghttp2_session* session, uint8_t /*flags*/, int32_t stream_id,
                                 const uint8_t* data, size_t len, void* user) {
  auto* self = static_cast<Connection*>(user);
  auto* stream = static_cast<Stream*>(nghttp2_session_get_stream_user_data(session, stream_id));
  if (stream == nullptr || stream->refusal || stream->dispatched) {
    return 0;  // refused already, or answered on its headers: the rest is dropped
  }
  const size_t limit = self->server()->options_.max_request_bytes + kPrefixBytes;
  if (stream->body.size() + len > limit) {
    // Read and dropped from here on; answered once the request ends.
    stream->refusal =
        grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                     absl::StrCat("the request message is larger than ",
                                  self->server()->options_.max_request_bytes, " bytes"));
    stream->body.clear();
    stream->body.shrink_to_fit();
    return 0;
  }
  stream->body.append(reinterpret_cast<const char*>(data), len);
  return 0;
}

int H2Server::Connection::OnFrameRecv(nghttp2_session* session, const nghttp2_frame* frame,
                                      void* user) {
  auto* self = static_cast<Connection*>(user);
  if (frame->hd.type == NGHTTP2_SETTINGS && !self->settings_seen_) {
    self->settings_seen_ = true;
    self->handshake_timer_.cancel();
  }
  if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) {
    return 0;
  }
  auto* stream =
      static_cast<Stream*>(nghttp2_session_get_stream_user_data(session, frame->hd.stream_id));
  if (stream == nullptr || stream->dispatched) {
    return 0;
  }
  if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST &&
      self->Screen(stream)) {
    return 0;  // refused on its headers alone: a stream of a method not served here gets its
               // answer at once, not once it ends (a bidirectional one may never end first)
  }
  if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) {
    self->Dispatch(stream);
  }
  return 0;
}

int H2Server::Connection::OnStreamClose(nghttp2_session* /*session*/, int32_t stream_id,
                                        uint32_t /*error_code*/, void* user) {
  // Closed both ways (answered), or reset by the client: an answer given later is dropped.
  static_cast<Connection*>(user)->streams_.erase(stream_id);
  return 0;
}

bool H2Server::Connection::Screen(Stream* stream) {
  H2Server* owner = server();
  stream->handler = nullptr;
  stream->arrived = absl::Now();
  if (!stream->post) {
    SubmitHttpError(stream, "405");
  } else if (!stream->grpc_content) {
    SubmitHttpError(stream, "415");
  } else if (stream->refusal) {
    SubmitError(stream, *stream->refusal);
  } else if (auto method = owner->methods_.find(stream->path); method == owner->methods_.end()) {
    SubmitError(stream, grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                                     absl::StrCat("no method ", stream->path, " here")));
  } else {
    stream->handler = &method->second;
    return false;
  }
  stream->dispatched = true;
  return true;
}

void H2Server::Connection::Dispatch(Stream* stream) {
  stream->dispatched = true;
  if (stream->refusal) {
    return SubmitError(stream, *stream->refusal);  // found in its body
  }
  H2Server* owner = server();
  const std::string& body = stream->body;
  if (body.size() < kPrefixBytes) {
    return SubmitError(stream, grpc::Status(grpc::StatusCode::INTERNAL,
                                            "a unary call's request carries one message"));
  }
  const auto* p = reinterpret_cast<const uint8_t*>(body.data());
  const uint32_t length =
      (uint32_t{p[1]} << 24) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 8) | uint32_t{p[4]};
  if (p[0] != 0 && !(p[0] == 1 && stream->compressed_ok)) {
    return SubmitError(stream, grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                                            "compressed request messages are not accepted"));
  }
  if (length != body.size() - kPrefixBytes) {
    return SubmitError(stream, grpc::Status(grpc::StatusCode::INTERNAL,
                                            "a unary call's request carries one message"));
  }
  if (stream->request.deadline <= absl::Now()) {
    return SubmitError(stream,
                       grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "Deadline Exceeded"));
  }
  {
    std::lock_guard<std::mutex> lock(owner->mu_);
    ++owner->in_flight_;
  }
  H2Request request = std::move(stream->request);
  request.path = stream->path;
  request.peer_names = peer_names_;
  request.message.assign(body, kPrefixBytes, std::string::npos);
  stream->body.clear();
  auto target = std::make_unique<H2Responder::Target>();
  target->loop = loop_;
  target->connection = shared_from_this();
  target->stream_id = stream->id;
  (*stream->handler)(std::move(request), H2Responder(std::move(target)));
}

bool H2Server::Connection::Respond(int32_t id, const grpc::Status& status,
                                   const std::string& response) {
  Stream* stream = closed_ ? nullptr : Find(id);
  if (stream == nullptr || stream->answered) {
    return false;  // the client reset the stream, or the connection is gone
  }
  if (!status.ok()) {
    SubmitError(stream, status);
    return true;
  }
  stream->answered = true;
  if (const auto& observe = server()->options_.observe) {
    observe(stream->path, grpc::StatusCode::OK, absl::Now() - stream->arrived);
  }
  const auto length = static_cast<uint32_t>(response.size());
  stream->out.reserve(kPrefixBytes + response.size());
  stream->out.push_back('\0');
  stream->out.push_back(static_cast<char>(length >> 24));
  stream->out.push_back(static_cast<char>(length >> 16));
  stream->out.push_back(static_cast<char>(length >> 8));
  stream->out.push_back(static_cast<char>(length));
  stream->out.append(response);
  const nghttp2_nv headers[] = {Header(":status", "200"),
                                Header("content-type", "application/grpc")};
  nghttp2_data_provider provider;
  provider.source.ptr = stream;
  provider.read_callback = &Connection::ReadBody;
  nghttp2_submit_response(session_, id, headers, std::size(headers), &provider);
  return true;
}

ssize_t H2Server::Connection::ReadBody(nghttp2_session* session, int32_t stream_id, uint8_t* buf,
                                       size_t length, uint32_t* data_flags,
                                       nghttp2_data_source* source, void* /*user*/) {
  auto* stream = static_cast<Stream*>(source->ptr);
  const size_t n = std::min(length, stream->out.size() - stream->out_sent);
  // Bytes, not a C string (bugprone-not-null-terminated-result takes a memcpy of string data for
  // one, and its fix would make it a strcpy).
  std::copy_n(stream->out.data() + stream->out_sent, n, reinterpret_cast<char*>(buf));
  stream->out_sent += n;
  if (stream->out_sent == stream->out.size()) {
    *data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
    const nghttp2_nv trailers[] = {Header("grpc-status", "0")};
    if (nghttp2_submit_trailer(session, stream_id, trailers, std::size(trailers)) != 0) {
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
  }
  return static_cast<ssize_t>(n);
}

void H2Server::Connection::SubmitError(Stream* stream, const grpc::Status& status) {
  stream->answered = true;
  if (const auto& observe = server()->options_.observe) {
    observe(stream->path, status.error_code(), absl::Now() - stream->arrived);
  }
  // Trailers only: one HEADERS frame that ends the stream.
  const std::string code = absl::StrCat(static_cast<int>(status.error_code()));
  const std::string message = PercentEncodeGrpcMessage(status.error_message());
  const std::string details = absl::Base64Escape(status.error_details());
  std::vector<nghttp2_nv> headers = {Header(":status", "200"),
                                     Header("content-type", "application/grpc"),
                                     Header("grpc-status", code)};
  if (!message.empty()) {
    headers.push_back(Header("grpc-message", message));
  }
  if (!details.empty()) {
    headers.push_back(Header("grpc-status-details-bin", details));
  }
  nghttp2_submit_response(session_, stream->id, headers.data(), headers.size(), nullptr);
}

void H2Server::Connection::SubmitHttpError(Stream* stream, absl::string_view http_status) {
  stream->answered = true;
  const nghttp2_nv headers[] = {Header(":status", http_status)};
  nghttp2_submit_response(session_, stream->id, headers, std::size(headers), nullptr);
}

// Accepts on the first loop's thread; each connection goes to the next loop in turn.
class H2Server::Acceptor {
 public:
  Acceptor(H2Server* server, net::io_context& ioc) : server_(server), acceptor_(ioc) {}

  absl::StatusOr<int> Listen(const std::string& host, int port) {
    error_code ec;
    const net::ip::address address = net::ip::make_address(host, ec);
    if (ec) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot listen on \"", host, "\": ", ec.message()));
    }
    const tcp::endpoint endpoint(address, static_cast<uint16_t>(port));
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) {
      acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    }
    if (!ec) {
      acceptor_.bind(endpoint, ec);
    }
    if (!ec) {
      acceptor_.listen(net::socket_base::max_listen_connections, ec);
    }
    if (ec) {
      return absl::UnavailableError(
          absl::StrCat("cannot listen for HTTP/2 on ", host, ":", port, ": ", ec.message()));
    }
    return acceptor_.local_endpoint().port();
  }

  void Accept() {
    Loop* loop = server_->loops_[next_++ % server_->loops_.size()].get();
    acceptor_.async_accept(loop->ioc(), [this, loop](const error_code& ec, tcp::socket socket) {
      if (ec == net::error::operation_aborted || !acceptor_.is_open()) {
        return;
      }
      if (!ec) {
        // The connection starts on its own loop's thread.
        net::post(loop->ioc(), [loop, socket = std::move(socket), server = server_]() mutable {
          auto connection =
              std::make_shared<Connection>(loop, std::move(socket), server->tls_context_.get());
          loop->Adopt(connection);
          connection->Start();
        });
      } else {
        KURT_LOG(kWarn, "h2 server: accept failed", {"error", ec.message()});
      }
      Accept();
    });
  }

  void Close() {
    error_code ignored;
    acceptor_.close(ignored);
  }

 private:
  H2Server* const server_;
  tcp::acceptor acceptor_;
  size_t next_ = 0;
};

H2Responder::H2Responder(std::unique_ptr<Target> target) : target_(std::move(target)) {}

H2Responder::H2Responder(H2Responder&& other) noexcept : target_(std::move(other.target_)) {}

H2Responder& H2Responder::operator=(H2Responder&& other) noexcept {
  if (this != &other) {
    if (target_ != nullptr) {
      (*this)(grpc::Status(grpc::StatusCode::INTERNAL, "the call was dropped unanswered"));
    }
    target_ = std::move(other.target_);
  }
  return *this;
}

H2Responder::~H2Responder() {
  if (target_ != nullptr) {
    (*this)(grpc::Status(grpc::StatusCode::INTERNAL, "the call was dropped unanswered"));
  }
}

void H2Responder::operator()(const grpc::Status& status, std::string response) {
  if (target_ == nullptr) {
    return;  // answered already
  }
  H2Server::Loop* loop = target_->loop;
  loop->Answer(std::move(target_), status, std::move(response));
}

H2Server::H2Server(H2ServerOptions options) : options_(std::move(options)) {}

H2Server::~H2Server() { Shutdown(absl::ZeroDuration()); }

void H2Server::AddMethod(std::string path, H2Handler handler) {
  methods_.insert_or_assign(std::move(path), std::move(handler));
}

absl::StatusOr<int> H2Server::Start() {
  if (options_.tls) {
    absl::StatusOr<std::shared_ptr<net::ssl::context>> context = H2ServerTlsContext(*options_.tls);
    if (!context.ok()) {
      return context.status();
    }
    tls_context_ = *std::move(context);
  }
  for (int i = 0; i < std::max(options_.io_threads, 1); ++i) {
    loops_.push_back(std::make_unique<Loop>(this));
  }
  acceptor_ = std::make_unique<Acceptor>(this, loops_.front()->ioc());
  absl::StatusOr<int> port = acceptor_->Listen(options_.host, options_.port);
  if (!port.ok()) {
    loops_.clear();
    acceptor_.reset();
    return port.status();
  }
  port_ = *port;
  acceptor_->Accept();
  for (auto& loop : loops_) {
    threads_.emplace_back([loop = loop.get()] { loop->Run(); });
  }
  started_ = true;
  return port_;
}

void H2Server::Drain() {
  if (!started_) {
    return;
  }
  net::post(loops_.front()->ioc(), [acceptor = acceptor_.get()] { acceptor->Close(); });
  for (auto& loop : loops_) {
    net::post(loop->ioc(), [loop = loop.get()] { loop->DrainConnections(); });
  }
}

void H2Server::Shutdown(absl::Duration grace) {
  if (!started_ || shut_down_) {
    return;
  }
  shut_down_ = true;
  Drain();
  {
    std::unique_lock<std::mutex> lock(mu_);
    answered_.wait_for(lock, absl::ToChronoNanoseconds(std::max(grace, absl::ZeroDuration())),
                       [this] { return in_flight_ == 0; });
  }
  for (auto& loop : loops_) {
    net::post(loop->ioc(), [loop = loop.get()] {
      loop->CloseConnections();
      loop->ReleaseWork();
      loop->ioc().stop();
    });
  }
  for (std::thread& thread : threads_) {
    thread.join();
  }
  threads_.clear();
  for (auto& loop : loops_) {
    loop->Stop();
  }
  // A call still being served answers into the void, but its answer must come before the loops
  // (which it reaches) are destroyed.
  std::unique_lock<std::mutex> lock(mu_);
  answered_.wait(lock, [this] { return in_flight_ == 0; });
}

int H2Server::in_flight() const {
  std::lock_guard<std::mutex> lock(mu_);
  return in_flight_;
}

void H2Server::CallAnswered() {
  std::lock_guard<std::mutex> lock(mu_);
  if (--in_flight_ == 0) {
    answered_.notify_all();
  }
}

}  // namespace kurt::platform
