#include "edge/h2_upstream.h"

#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <deque>
#include <optional>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "boost/asio/ip/address.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/ssl/context.hpp"
#include "boost/asio/ssl/error.hpp"
#include "boost/asio/ssl/stream.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/asio/write.hpp"
#include "platform/core/log.h"
#include "platform/grpc/grpc_wire.h"
#include "platform/grpc/tls.h"

namespace kurt::edge {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;

namespace {

std::atomic<uint64_t> next_upstreams_id{1};

// The Loop of the H2Upstreams this thread used last: most threads serve one edge.
struct ThreadLoop {
  uint64_t owner = 0;
  H2Upstreams::Loop* loop = nullptr;
};
thread_local ThreadLoop thread_loop;

std::chrono::steady_clock::time_point SteadyAt(absl::Time t) {
  absl::Duration left = std::max(t - absl::Now(), absl::ZeroDuration());
  return std::chrono::steady_clock::now() +
         std::chrono::duration_cast<std::chrono::steady_clock::duration>(
             absl::ToChronoNanoseconds(std::min(left, absl::Hours(24 * 365))));
}

// gRPC's mapping of an HTTP status that came without a grpc-status (doc/http-grpc-status-mapping).
grpc::StatusCode FromHttpStatus(int status) {
  switch (status) {
    case 400:
      return grpc::StatusCode::INTERNAL;
    case 401:
      return grpc::StatusCode::UNAUTHENTICATED;
    case 403:
      return grpc::StatusCode::PERMISSION_DENIED;
    case 404:
      return grpc::StatusCode::UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return grpc::StatusCode::UNAVAILABLE;
    default:
      return grpc::StatusCode::UNKNOWN;
  }
}

// gRPC's mapping of an RST_STREAM's error code (doc/PROTOCOL-HTTP2, "Errors").
grpc::StatusCode FromResetCode(uint32_t code) {
  switch (code) {
    case NGHTTP2_REFUSED_STREAM:
      return grpc::StatusCode::UNAVAILABLE;
    case NGHTTP2_CANCEL:
      return grpc::StatusCode::CANCELLED;
    case NGHTTP2_ENHANCE_YOUR_CALM:
      return grpc::StatusCode::RESOURCE_EXHAUSTED;
    case NGHTTP2_INADEQUATE_SECURITY:
      return grpc::StatusCode::PERMISSION_DENIED;
    default:
      return grpc::StatusCode::INTERNAL;
  }
}

// One configured address as an endpoint, or nullopt for a name.
std::optional<tcp::endpoint> IpEndpoint(absl::string_view address) {
  absl::string_view host, port;
  if (absl::StartsWith(address, "[")) {
    size_t end = address.find("]:");
    if (end == absl::string_view::npos) {
      return std::nullopt;
    }
    host = address.substr(1, end - 1);
    port = address.substr(end + 2);
  } else {
    size_t colon = address.rfind(':');
    if (colon == absl::string_view::npos) {
      return std::nullopt;
    }
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
  }
  error_code ec;
  net::ip::address ip = net::ip::make_address(std::string(host), ec);
  uint32_t p = 0;
  if (ec || !absl::SimpleAtoi(port, &p) || p > 65535) {
    return std::nullopt;
  }
  return tcp::endpoint(ip, static_cast<uint16_t>(p));
}

nghttp2_nv Header(absl::string_view name, absl::string_view value) {
  return nghttp2_nv{const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(name.data())),
                    const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(value.data())),
                    name.size(), value.size(), NGHTTP2_NV_FLAG_NONE};
}

}  // namespace

// One unary call, from Unary to its `done`; owned by its Loop. Touched by the loop's thread only.
struct H2Upstreams::Call {
  Service* service = nullptr;
  const std::string* path = nullptr;
  H2Metadata metadata;
  absl::Time deadline = absl::InfiniteFuture();
  std::string body;  // the gRPC message as sent: 5-byte prefix, then the request
  size_t offset = 0;
  Done done;
  bool retried_method = false;
  int attempts = 1;
  int transparent_retries = 0;
  size_t loop_index = 0;  // in Loop::calls_
  // While on a connection (queued while it connects, or on a stream).
  std::shared_ptr<Connection> connection;
  int32_t stream_id = 0;
  bool headers_sent = false;
  bool waiting_for_address = false;  // in Service::waiting
  // What came back.
  std::string response;
  int http_status = 0;
  std::optional<int> grpc_status;
  std::string grpc_message;
  std::string details;
  bool too_large = false;

  void Reset() {
    connection.reset();
    stream_id = 0;
    headers_sent = false;
    offset = 0;
    response.clear();
    http_status = 0;
    grpc_status.reset();
    grpc_message.clear();
    details.clear();
    too_large = false;
  }
};

// The calls and connections of one I/O thread: its own io_context, one connection per replica of
// each service. Lives from the thread's first call to Shutdown.
class H2Upstreams::Loop {
 public:
  Loop(H2Upstreams* owner, net::io_context& ioc)
      : owner_(owner), ioc_(ioc), timer_(std::in_place, ioc) {}

  H2Upstreams* owner() const { return owner_; }
  net::io_context& ioc() { return ioc_; }
  const H2UpstreamOptions& options() const { return owner_->options_; }
  bool shut_down() const { return shut_down_; }

  Service* FindService(absl::string_view name);
  void Start(Call* call);
  // Ends a call: `done` runs, the call goes.
  void Complete(Call* call, const grpc::Status& status);
  void Shutdown();

 private:
  void WatchDeadline(absl::Time deadline);
  void OnTimer();

  H2Upstreams* owner_;
  net::io_context& ioc_;
  absl::flat_hash_map<std::string, std::unique_ptr<Service>> services_;
  std::vector<Call*> calls_;
  std::optional<net::steady_timer> timer_;
  absl::Time timer_at_ = absl::InfiniteFuture();
  bool shut_down_ = false;
};

// One service's replicas as seen from one Loop.
struct H2Upstreams::Service {
  Loop* loop = nullptr;
  std::string name;
  std::string authority;
  const char* scheme = "http";  // "https" with TLS
  // With TLS, the name the servers' certificates must carry: the DNS name dialled, the service's
  // identity for a list of IP addresses (tls_server_names), or, when empty, each replica's own
  // address.
  std::string tls_name;
  // A DNS name (resolved by Asio, again when a connection fails), or a fixed list of endpoints.
  std::string dns_host, dns_port;
  std::optional<tcp::resolver> resolver;
  bool resolving = false;
  absl::Time resolve_after = absl::InfinitePast();
  std::vector<Call*> waiting;  // for the resolution
  std::vector<std::shared_ptr<Connection>> connections;
  // Connections that had a GOAWAY, until their last stream ends.
  std::vector<std::shared_ptr<Connection>> draining;
  size_t next = 0;
  absl::flat_hash_set<std::string> retried_paths;
  // gRPC's retry throttle: a retry only while the tokens are above half.
  double retry_tokens = 10;
  std::string last_error = "not connected yet";

  void Dispatch(Call* call, const Connection* avoid);
  // The outcome of one attempt: retried, or the end of the call.
  void Finish(Call* call, const grpc::Status& status, const Connection* from);
  void RetryTransparently(Call* call, const Connection* from);
  void Resolve();
  void ConnectionFailed(Connection* connection);
  // A connection that had a GOAWAY: a new one to its replica takes its place.
  void Replace(Connection* draining);
  // A draining connection is done.
  void Forget(Connection* done);
};

// One HTTP/2 connection to one replica. Shared by the Service and its pending operations.
class H2Upstreams::Connection : public std::enable_shared_from_this<Connection> {
 public:
  enum class State { kIdle, kConnecting, kReady, kDraining, kFailed, kClosed };

  Connection(Service* service, tcp::endpoint endpoint)
      : service_(service),
        endpoint_(std::move(endpoint)),
        socket_(service->loop->ioc()),
        connect_timer_(service->loop->ioc()) {}
  ~Connection() {
    if (session_ != nullptr) {
      nghttp2_session_del(session_);
    }
  }

  State state() const { return state_; }
  // Up, and its server's grpc.health.v1 Watch says SERVING (client-side health checking, as
  // the channels' service config asks): calls go to it.
  bool Serving() const { return state_ == State::kReady && health_ == Health::kServing; }
  // Connecting, or up and its health not heard yet: calls wait on it.
  bool Waiting() const {
    return state_ == State::kConnecting || (state_ == State::kReady && health_ == Health::kUnknown);
  }
  const tcp::endpoint& endpoint() const { return endpoint_; }
  bool DueForReconnect(absl::Time now) const {
    return state_ == State::kIdle || (state_ == State::kFailed && now >= retry_after_);
  }

  void Connect();
  // Sends the call (or queues it until connected).
  void Add(Call* call);
  // Takes the call off this connection (RST_STREAM CANCEL if it was sent).
  void Cancel(Call* call);
  // Closes the socket, forgetting its calls (the Loop ends them). Shutdown.
  void Close();
  // No longer one of its service's: ends once its streams have.
  void Retire();

 private:
  void OnConnected(const error_code& ec);
  // TLS: the handshake, with the server's name to check, then StartSession.
  void Handshake();
  void OnHandshake(const error_code& ec);
  // The HTTP/2 session on a connected (and with TLS, handshaken) socket.
  void StartSession();
  // The socket of this attempt: the TLS stream's, or the plaintext one.
  tcp::socket& Socket() { return tls_ != nullptr ? tls_->next_layer() : socket_; }
  std::string Address() const {
    return absl::StrCat(endpoint_.address().to_string(), ":", endpoint_.port());
  }
  // Opens the grpc.health.v1.Health/Watch stream of the whole server.
  void WatchHealth();
  // What the health stream said, acted on once nghttp2 is out of its callbacks.
  void OnHealthChanged();
  void Submit(Call* call);
  void Read();
  void Flush();
  void Fail(absl::string_view why);
  // Closes the socket and drops the HTTP/2 session; what was pending on them is ignored.
  void Teardown();
  // Delivers what a read completed (after nghttp2 is done with its callbacks).
  void DeliverCompleted();
  void CloseIfDone();
  // Takes no more calls: the ones queued (waiting for the connection or its first health answer)
  // go to another connection, as the server never saw them.
  void Drain();
  // Closes a connection that takes no more calls and has none in flight; what it had queued or
  // completed goes on (delivered, or sent again elsewhere).
  void CloseAndRetryQueued();

  static int OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t flags,
                      void* user_data);
  static int OnData(nghttp2_session*, uint8_t flags, int32_t stream_id, const uint8_t* data,
                    size_t len, void* user_data);
  static int OnStreamClose(nghttp2_session*, int32_t stream_id, uint32_t error_code,
                           void* user_data);
  static int OnFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* user_data);
  static int OnFrameSend(nghttp2_session*, const nghttp2_frame* frame, void* user_data);
  static int OnFrameNotSend(nghttp2_session*, const nghttp2_frame* frame, int error,
                            void* user_data);
  static ssize_t ReadBody(nghttp2_session*, int32_t stream_id, uint8_t* buf, size_t length,
                          uint32_t* data_flags, nghttp2_data_source* source, void* user_data);

  Call* Find(int32_t stream_id) {
    auto it = streams_.find(stream_id);
    return it == streams_.end() ? nullptr : it->second;
  }

  Service* service_;
  tcp::endpoint endpoint_;
  tcp::socket socket_;  // plaintext
  // With TLS, one stream (and socket) per connection attempt, new at each Connect: the operations
  // of an earlier attempt hold their stream until they complete, and never touch a later socket.
  using TlsStream = net::ssl::stream<tcp::socket>;
  std::shared_ptr<TlsStream> tls_;
  // The last failure logged, until the connection is up again: one line per change, not one per
  // attempt of a replica that stays down.
  std::string logged_failure_;
  net::steady_timer connect_timer_;
  nghttp2_session* session_ = nullptr;
  State state_ = State::kIdle;
  // Bumped at each connect and close: a completion of an earlier socket's operation is ignored.
  uint64_t generation_ = 0;
  bool timed_out_ = false;
  absl::Time retry_after_ = absl::InfinitePast();
  absl::Duration backoff_ = absl::ZeroDuration();
  int32_t goaway_last_stream_ = INT32_MAX;
  enum class Health { kUnknown, kServing, kNotServing };
  Health health_ = Health::kUnknown;
  bool health_changed_ = false;
  int32_t health_stream_ = 0;
  std::optional<int> health_status_;  // the Watch stream's grpc-status
  std::string health_messages_;
  std::vector<Call*> queued_;  // while connecting, or until the server's health is known
  absl::flat_hash_map<int32_t, Call*> streams_;
  // Outcomes found while nghttp2 reads, delivered once it is done.
  struct Completed {
    Call* call;
    std::optional<grpc::Status> status;  // none: retry transparently
  };
  std::vector<Completed> completed_;
  std::array<uint8_t, 16384> in_;
  std::string out_;
  bool writing_ = false;
};

// --- Loop ---------------------------------------------------------------------------------------

H2Upstreams::Service* H2Upstreams::Loop::FindService(absl::string_view name) {
  auto it = services_.find(name);
  if (it != services_.end()) {
    return it->second.get();
  }
  auto target = owner_->targets_.find(std::string(name));
  if (target == owner_->targets_.end()) {
    return nullptr;
  }
  auto service = std::make_unique<Service>();
  service->loop = this;
  service->name = std::string(name);
  // A method's own target ("pkg.Service/Method") retries as its service does.
  const std::string configured(name.substr(0, name.find('/')));
  absl::string_view addresses = target->second;
  addresses = absl::StripPrefix(absl::StripPrefix(absl::StripPrefix(addresses, "dns:///"), "ipv4:"),
                                "ipv6:");
  std::vector<absl::string_view> list = absl::StrSplit(addresses, ',', absl::SkipWhitespace());
  service->authority = list.empty() ? std::string() : std::string(list.front());
  for (absl::string_view address : list) {
    std::optional<tcp::endpoint> endpoint = IpEndpoint(address);
    if (!endpoint) {
      // A name: what it resolves to (the first name of a list, as ChannelTarget does).
      size_t colon = address.rfind(':');
      service->dns_host = std::string(address.substr(0, colon));
      service->dns_port =
          colon == absl::string_view::npos ? "443" : std::string(address.substr(colon + 1));
      service->connections.clear();
      service->resolver.emplace(ioc_);
      break;
    }
    service->connections.push_back(std::make_shared<Connection>(service.get(), *endpoint));
  }
  if (options().tls) {
    service->scheme = "https";
    if (!service->dns_host.empty()) {
      service->tls_name = service->dns_host;
    } else if (auto it = options().tls_server_names.find(service->name);
               it != options().tls_server_names.end()) {
      service->tls_name = it->second;
    }
  }
  if (auto retried = options().retried_methods.find(configured);
      retried != options().retried_methods.end()) {
    for (const std::string& method : retried->second) {
      service->retried_paths.insert(absl::StrCat("/", configured, "/", method));
    }
  }
  Service* s = service.get();
  services_.emplace(service->name, std::move(service));
  return s;
}

void H2Upstreams::Loop::Start(Call* call) {
  call->loop_index = calls_.size();
  calls_.push_back(call);
  if (call->deadline != absl::InfiniteFuture()) {
    WatchDeadline(call->deadline);
  }
  call->service->Dispatch(call, nullptr);
}

void H2Upstreams::Loop::Complete(Call* call, const grpc::Status& status) {
  // Off the loop's list (swap with the last).
  Call* last = calls_.back();
  calls_[call->loop_index] = last;
  last->loop_index = call->loop_index;
  calls_.pop_back();
  if (call->connection != nullptr) {
    call->connection->Cancel(call);
  }
  if (call->waiting_for_address) {
    std::vector<Call*>& waiting = call->service->waiting;
    waiting.erase(std::find(waiting.begin(), waiting.end(), call));
  }
  std::string response;
  if (status.ok()) {
    response = std::move(call->response);
    response.erase(0, 5);  // the message's prefix (Outcome checked it)
  }
  Done done = std::move(call->done);
  delete call;
  owner_->in_flight_.fetch_sub(1, std::memory_order_relaxed);
  done(status, std::move(response));
}

void H2Upstreams::Loop::WatchDeadline(absl::Time deadline) {
  // One timer for the loop, at the earliest deadline: with the usual default timeout the deadlines
  // come in order and the timer is armed once per timeout, not per call.
  if (deadline >= timer_at_ || !timer_) {
    return;
  }
  timer_at_ = deadline;
  timer_->expires_at(SteadyAt(deadline));
  timer_->async_wait([this](const error_code& ec) {
    if (ec != net::error::operation_aborted && !shut_down_) {
      OnTimer();
    }
  });
}

void H2Upstreams::Loop::OnTimer() {
  timer_at_ = absl::InfiniteFuture();
  absl::Time now = absl::Now();
  // One pass from the end. Complete moves the last call into the slot it frees, and ending one
  // call may end others (its connection's RST_STREAM may find the connection gone), each time
  // moving a call already looked at, or one still below `i`: every call is looked at, and the
  // pass stays linear however many calls a stalled upstream holds.
  for (size_t i = calls_.size(); i-- > 0;) {
    if (i >= calls_.size()) {
      i = calls_.size();
      continue;
    }
    if (calls_[i]->deadline <= now) {
      Complete(calls_[i], grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "Deadline Exceeded"));
    }
  }
  absl::Time earliest = absl::InfiniteFuture();
  for (const Call* call : calls_) {
    earliest = std::min(earliest, call->deadline);
  }
  if (earliest != absl::InfiniteFuture()) {
    WatchDeadline(earliest);
  }
}

void H2Upstreams::Loop::Shutdown() {
  shut_down_ = true;
  timer_.reset();
  for (auto& [name, service] : services_) {
    service->resolver.reset();
    for (Call* call : service->waiting) {
      call->waiting_for_address = false;  // Complete must not look for it in the cleared list
    }
    service->waiting.clear();
    for (auto& connection : service->connections) {
      connection->Close();
    }
    for (auto& connection : service->draining) {
      connection->Close();
    }
  }
  while (!calls_.empty()) {
    Call* call = calls_.back();
    call->connection.reset();
    Complete(call, grpc::Status(grpc::StatusCode::CANCELLED, "the edge is shutting down"));
  }
  services_.clear();
}

// --- Service ------------------------------------------------------------------------------------

void H2Upstreams::Service::Dispatch(Call* call, const Connection* avoid) {
  if (loop->shut_down()) {
    return loop->Complete(call, grpc::Status(grpc::StatusCode::UNAVAILABLE, "shutting down"));
  }
  absl::Time now = absl::Now();
  if (call->deadline <= now) {
    return loop->Complete(call,
                          grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "Deadline Exceeded"));
  }
  if (!dns_host.empty() && connections.empty()) {
    if (!resolving && now < resolve_after) {
      return loop->Complete(
          call, grpc::Status(grpc::StatusCode::UNAVAILABLE, absl::StrCat(name, ": ", last_error)));
    }
    call->waiting_for_address = true;
    waiting.push_back(call);
    if (!resolving) {
      Resolve();
    }
    return;
  }
  // Round robin over the connections that are up (another than `avoid`, the one a retried call
  // failed on, if there is one); one that is down is tried again once its backoff is over, in the
  // background. With none up, the call waits for one that is connecting, or fails at once, as a
  // gRPC channel's does without wait-for-ready.
  Connection* ready = nullptr;
  Connection* connecting = nullptr;
  Connection* ready_avoided = nullptr;
  Connection* connecting_avoided = nullptr;
  const size_t n = connections.size();
  for (size_t i = 0; i < n; ++i) {
    size_t k = (next + i) % n;
    Connection* c = connections[k].get();
    if (c->DueForReconnect(now)) {
      c->Connect();
    }
    if (c->Serving()) {
      if (c == avoid) {
        ready_avoided = c;
      } else if (ready == nullptr) {
        ready = c;
        next = k + 1;
      }
    } else if (c->Waiting()) {
      if (c == avoid) {
        connecting_avoided = c;
      } else if (connecting == nullptr) {
        connecting = c;
      }
    }
  }
  Connection* chosen = ready != nullptr           ? ready
                       : ready_avoided != nullptr ? ready_avoided
                       : connecting != nullptr    ? connecting
                                                  : connecting_avoided;
  if (chosen == nullptr) {
    return loop->Complete(
        call, grpc::Status(grpc::StatusCode::UNAVAILABLE,
                           absl::StrCat(name, ": no replica reachable (", last_error, ")")));
  }
  chosen->Add(call);
}

void H2Upstreams::Service::Finish(Call* call, const grpc::Status& status, const Connection* from) {
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    retry_tokens = std::max(0.0, retry_tokens - 1);
    if (call->retried_method && call->attempts < 2 && retry_tokens > 5 && !loop->shut_down()) {
      ++call->attempts;
      call->Reset();
      return Dispatch(call, from);
    }
  } else if (status.ok()) {
    retry_tokens = std::min(10.0, retry_tokens + 0.5);
  }
  loop->Complete(call, status);
}

void H2Upstreams::Service::RetryTransparently(Call* call, const Connection* from) {
  // The server never saw the call: it may go again, to another replica if there is one.
  if (++call->transparent_retries > 5) {
    return loop->Complete(call, grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                             absl::StrCat(name, ": the call was refused")));
  }
  call->Reset();
  Dispatch(call, from);
}

void H2Upstreams::Service::Resolve() {
  resolving = true;
  resolver->async_resolve(
      dns_host, dns_port, [this](const error_code& ec, const tcp::resolver::results_type& results) {
        if (ec == net::error::operation_aborted || loop->shut_down()) {
          return;
        }
        resolving = false;
        std::vector<Call*> calls = std::move(waiting);
        waiting.clear();
        for (Call* call : calls) {
          call->waiting_for_address = false;
        }
        if (ec || results.empty()) {
          last_error = absl::StrCat("cannot resolve ", dns_host, ": ",
                                    ec ? ec.message() : std::string("no address"));
          resolve_after = absl::Now() + loop->options().max_reconnect_backoff;
          KURT_LOG(kWarn, "h2 upstream: resolution failed", {"service", name},
                   {"error", last_error});
          for (Call* call : calls) {
            loop->Complete(call, grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                              absl::StrCat(name, ": ", last_error)));
          }
          return;
        }
        // Connections to the addresses still there stay; the others end once their calls have.
        std::vector<std::shared_ptr<Connection>> kept;
        for (const auto& entry : results) {
          tcp::endpoint endpoint = entry.endpoint();
          if (std::any_of(kept.begin(), kept.end(),
                          [&](const auto& c) { return c->endpoint() == endpoint; })) {
            continue;
          }
          auto old = std::find_if(connections.begin(), connections.end(),
                                  [&](const auto& c) { return c->endpoint() == endpoint; });
          kept.push_back(old != connections.end() ? std::move(*old)
                                                  : std::make_shared<Connection>(this, endpoint));
        }
        // The list is whole again before a retired connection sends its queued calls elsewhere
        // (Dispatch walks it).
        std::vector<std::shared_ptr<Connection>> gone;
        for (auto& c : connections) {
          if (c != nullptr) {
            gone.push_back(std::move(c));
          }
        }
        connections = std::move(kept);
        for (auto& c : gone) {
          draining.push_back(c);
          c->Retire();
        }
        for (Call* call : calls) {
          Dispatch(call, nullptr);
        }
      });
}

void H2Upstreams::Service::ConnectionFailed(Connection* /*connection*/) {
  // What the name stands for may have changed (a replica replaced): look again.
  if (!dns_host.empty() && !resolving && resolver) {
    Resolve();
  }
}

void H2Upstreams::Service::Replace(Connection* old) {
  auto it = std::find_if(connections.begin(), connections.end(),
                         [old](const auto& c) { return c.get() == old; });
  if (it == connections.end()) {
    return;
  }
  draining.push_back(*it);
  *it = std::make_shared<Connection>(this, old->endpoint());
  (*it)->Connect();
}

void H2Upstreams::Service::Forget(Connection* done) {
  auto it = std::find_if(draining.begin(), draining.end(),
                         [done](const auto& c) { return c.get() == done; });
  if (it != draining.end()) {
    draining.erase(it);
  }
}

// --- Connection ---------------------------------------------------------------------------------

void H2Upstreams::Connection::Connect() {
  state_ = State::kConnecting;
  timed_out_ = false;
  const uint64_t generation = ++generation_;
  error_code ignored;
  Socket().close(ignored);
  const H2Upstreams& owner = *service_->loop->owner();
  if (owner.tls_context_ != nullptr) {
    tls_ = std::make_shared<TlsStream>(service_->loop->ioc(), *owner.tls_context_);
  }
  auto self = shared_from_this();
  // The timeout covers the TCP connection and the TLS handshake.
  connect_timer_.expires_after(
      absl::ToChronoNanoseconds(service_->loop->options().connect_timeout));
  connect_timer_.async_wait([self, generation](const error_code& ec) {
    if (!ec && self->generation_ == generation && self->state_ == State::kConnecting) {
      self->timed_out_ = true;
      error_code e;
      self->Socket().close(e);
    }
  });
  Socket().async_connect(endpoint_, [self, generation](const error_code& ec) {
    if (self->generation_ == generation) {
      self->OnConnected(ec);
    }
  });
}

void H2Upstreams::Connection::OnConnected(const error_code& ec) {
  if (state_ != State::kConnecting) {
    connect_timer_.cancel();
    return;
  }
  if (ec) {
    connect_timer_.cancel();
    return Fail(absl::StrCat("cannot connect to ", Address(), ": ",
                             timed_out_ ? std::string("timed out") : ec.message()));
  }
  error_code ignored;
  Socket().set_option(tcp::no_delay(true), ignored);
  const H2Upstreams& owner = *service_->loop->owner();
  if (owner.options_.tls) {
    if (tls_ == nullptr) {
      connect_timer_.cancel();
      return Fail(absl::StrCat("TLS with ", Address(), ": ", owner.tls_error_));
    }
    return Handshake();
  }
  connect_timer_.cancel();
  // Flush writes what the socket takes at once, without a round through the reactor.
  socket_.non_blocking(true, ignored);
  StartSession();
}

void H2Upstreams::Connection::Handshake() {
  SSL* ssl = tls_->native_handle();
  // The name checked by OpenSSL during the handshake (subject alternative names, or the common
  // name when there are none), as gRPC's channels check it; SNI with a DNS name.
  const std::string name =
      service_->tls_name.empty() ? endpoint_.address().to_string() : service_->tls_name;
  error_code not_ip;
  (void)net::ip::make_address(name, not_ip);
  SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  const bool named = not_ip ? SSL_set_tlsext_host_name(ssl, name.c_str()) == 1 &&
                                  SSL_set1_host(ssl, name.c_str()) == 1
                            : X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str()) == 1;
  if (!named) {
    connect_timer_.cancel();
    return Fail(absl::StrCat("TLS with ", Address(), ": cannot check the name \"", name, "\""));
  }
  auto self = shared_from_this();
  const uint64_t generation = generation_;
  tls_->async_handshake(net::ssl::stream_base::client,
                        [self, generation, tls = tls_](const error_code& ec) {
                          if (self->generation_ == generation) {
                            self->OnHandshake(ec);
                          }
                        });
}

void H2Upstreams::Connection::OnHandshake(const error_code& ec) {
  connect_timer_.cancel();
  if (state_ != State::kConnecting) {
    return;
  }
  SSL* ssl = tls_->native_handle();
  if (ec) {
    std::string why = timed_out_ ? std::string("timed out") : ec.message();
    // Why the server's certificate was refused, when it was (unknown CA, name mismatch...).
    if (int64_t verify = SSL_get_verify_result(ssl); verify != X509_V_OK) {
      why = absl::StrCat("the server's certificate is refused: ",
                         X509_verify_cert_error_string(verify));
    }
    return Fail(absl::StrCat("TLS handshake with ", Address(), ": ", why));
  }
  const unsigned char* protocol = nullptr;
  unsigned int length = 0;
  SSL_get0_alpn_selected(ssl, &protocol, &length);
  if (absl::string_view(reinterpret_cast<const char*>(protocol), length) != "h2") {
    return Fail(absl::StrCat("TLS handshake with ", Address(),
                             ": the server did not select HTTP/2 (ALPN h2)"));
  }
  StartSession();
}

void H2Upstreams::Connection::StartSession() {
  static nghttp2_session_callbacks* const callbacks = [] {
    nghttp2_session_callbacks* cb = nullptr;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_header_callback(cb, &Connection::OnHeader);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, &Connection::OnData);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, &Connection::OnStreamClose);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, &Connection::OnFrameRecv);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, &Connection::OnFrameSend);
    nghttp2_session_callbacks_set_on_frame_not_send_callback(cb, &Connection::OnFrameNotSend);
    return cb;
  }();
  if (session_ != nullptr) {
    nghttp2_session_del(session_);
  }
  nghttp2_session_client_new(&session_, callbacks, this);
  const H2UpstreamOptions& options = service_->loop->options();
  std::array<nghttp2_settings_entry, 2> settings = {{
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, static_cast<uint32_t>(options.stream_window)},
  }};
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings.data(), settings.size());
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, options.connection_window);
  state_ = State::kReady;
  health_ = Health::kUnknown;
  goaway_last_stream_ = INT32_MAX;
  // The queued calls wait for the server's health (one round trip).
  WatchHealth();
  Read();
  Flush();
}

void H2Upstreams::Connection::WatchHealth() {
  health_status_.reset();
  health_messages_.clear();
  std::array<nghttp2_nv, 6> headers = {Header(":method", "POST"),
                                       Header(":scheme", service_->scheme),
                                       Header(":path", "/grpc.health.v1.Health/Watch"),
                                       Header(":authority", service_->authority),
                                       Header("content-type", "application/grpc"),
                                       Header("te", "trailers")};
  nghttp2_data_provider body;
  body.source.ptr = nullptr;
  body.read_callback = &Connection::ReadBody;
  health_stream_ =
      nghttp2_submit_request(session_, nullptr, headers.data(), headers.size(), &body, nullptr);
  if (health_stream_ < 0) {
    health_stream_ = 0;
    health_ = Health::kServing;  // cannot tell: as without health checking
    OnHealthChanged();
  }
}

void H2Upstreams::Connection::OnHealthChanged() {
  health_changed_ = false;
  if (state_ != State::kReady || health_ == Health::kUnknown) {
    return;
  }
  std::vector<Call*> queued = std::move(queued_);
  queued_.clear();
  if (health_ == Health::kServing) {
    for (Call* call : queued) {
      Submit(call);
    }
    return;
  }
  // Not serving (starting, or going away): its calls go to another replica.
  KURT_LOG(kInfo, "h2 upstream: replica not serving", {"service", service_->name},
           {"address", Address()});
  for (Call* call : queued) {
    call->connection.reset();
    completed_.push_back({call, std::nullopt});
  }
}

void H2Upstreams::Connection::Add(Call* call) {
  call->connection = shared_from_this();
  if (Waiting()) {
    queued_.push_back(call);
    return;
  }
  Submit(call);
  Flush();
}

void H2Upstreams::Connection::Submit(Call* call) {
  std::string timeout;
  if (call->deadline != absl::InfiniteFuture()) {
    timeout = platform::GrpcTimeoutHeader(call->deadline - absl::Now());
  }
  std::vector<std::string> encoded;  // -bin values, base64
  std::vector<nghttp2_nv> headers;
  headers.reserve(8 + call->metadata.size());
  headers.push_back(Header(":method", "POST"));
  headers.push_back(Header(":scheme", service_->scheme));
  headers.push_back(Header(":path", *call->path));
  headers.push_back(Header(":authority", service_->authority));
  headers.push_back(Header("content-type", "application/grpc"));
  headers.push_back(Header("te", "trailers"));
  if (!timeout.empty()) {
    headers.push_back(Header("grpc-timeout", timeout));
  }
  // Pointers into `encoded` go into `headers`: it must not grow past what it reserved.
  encoded.reserve(std::count_if(call->metadata.begin(), call->metadata.end(),
                                [](const auto& kv) { return absl::EndsWith(kv.first, "-bin"); }));
  for (const auto& [name, value] : call->metadata) {
    if (absl::EndsWith(name, "-bin")) {
      encoded.push_back(absl::Base64Escape(value));
      headers.push_back(Header(name, encoded.back()));
    } else {
      headers.push_back(Header(name, value));
    }
  }
  nghttp2_data_provider body;
  body.source.ptr = nullptr;
  body.read_callback = &Connection::ReadBody;
  // nghttp2 copies the header fields.
  int32_t id =
      nghttp2_submit_request(session_, nullptr, headers.data(), headers.size(), &body, nullptr);
  if (id < 0) {
    // No stream id left on this connection: the call goes on a new one.
    KURT_LOG(kInfo, "h2 upstream: cannot start a stream", {"service", service_->name},
             {"error", nghttp2_strerror(id)});
    call->connection.reset();
    completed_.push_back({call, std::nullopt});
    if (state_ == State::kReady) {
      Drain();
      service_->Replace(this);
    }
    return;
  }
  call->stream_id = id;
  streams_.emplace(id, call);
}

void H2Upstreams::Connection::Cancel(Call* call) {
  auto self = shared_from_this();
  call->connection.reset();
  if (call->stream_id > 0) {
    streams_.erase(call->stream_id);
    if (session_ != nullptr) {
      nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, call->stream_id, NGHTTP2_CANCEL);
      Flush();
      CloseIfDone();
    }
    return;
  }
  auto it = std::find(queued_.begin(), queued_.end(), call);
  if (it != queued_.end()) {
    queued_.erase(it);
  }
}

void H2Upstreams::Connection::Retire() {
  if (state_ == State::kReady && !streams_.empty()) {
    auto self = shared_from_this();
    Drain();
    DeliverCompleted();
    return;
  }
  CloseAndRetryQueued();
}

void H2Upstreams::Connection::Drain() {
  state_ = State::kDraining;
  for (Call* call : queued_) {
    call->connection.reset();
    completed_.push_back({call, std::nullopt});
  }
  queued_.clear();
}

void H2Upstreams::Connection::CloseAndRetryQueued() {
  auto self = shared_from_this();
  DeliverCompleted();
  std::vector<Call*> queued = std::move(queued_);
  queued_.clear();
  Close();
  service_->Forget(this);
  for (Call* call : queued) {
    call->connection.reset();
    service_->RetryTransparently(call, this);
  }
}

void H2Upstreams::Connection::Teardown() {
  ++generation_;
  error_code ignored;
  Socket().close(ignored);
  connect_timer_.cancel();
  if (session_ != nullptr) {
    nghttp2_session_del(session_);
    session_ = nullptr;
  }
  out_.clear();
  writing_ = false;
}

void H2Upstreams::Connection::Close() {
  state_ = State::kClosed;
  if (tls_ != nullptr && session_ != nullptr && !writing_) {
    // TLS's close_notify if the socket takes it at once; the peer's is not waited for (this may
    // run once the I/O threads are gone), the socket closes right after.
    error_code ignored;
    tls_->next_layer().non_blocking(true, ignored);
    tls_->shutdown(ignored);
  }
  Teardown();
  queued_.clear();
  streams_.clear();
  completed_.clear();
}

void H2Upstreams::Connection::CloseIfDone() {
  if (state_ == State::kDraining && streams_.empty() && !writing_) {
    CloseAndRetryQueued();
  }
}

void H2Upstreams::Connection::Read() {
  auto self = shared_from_this();
  const uint64_t generation = generation_;
  // `tls` keeps the attempt's stream alive until its operation completes.
  auto on_read = [self, generation, tls = tls_](const error_code& ec, size_t n) {
    if (self->generation_ != generation ||
        (self->state_ != State::kReady && self->state_ != State::kDraining)) {
      return;
    }
    if (ec) {
      return self->Fail(ec == net::error::eof || ec == net::ssl::error::stream_truncated
                            ? std::string("the upstream closed the connection")
                            : ec.message());
    }
    // The server speaks: only now does the backoff start again from its shortest, and the
    // connection count as back (with TLS 1.3 a server may refuse the edge's certificate after the
    // handshake, at the first read).
    self->backoff_ = absl::ZeroDuration();
    if (!self->logged_failure_.empty()) [[unlikely]] {
      KURT_LOG(kInfo, "h2 upstream: connected again", {"service", self->service_->name},
               {"address", self->Address()});
      self->logged_failure_.clear();
    }
    ssize_t rv = nghttp2_session_mem_recv(self->session_, self->in_.data(), n);
    if (rv < 0) {
      self->DeliverCompleted();
      return self->Fail(absl::StrCat("HTTP/2: ", nghttp2_strerror(static_cast<int>(rv))));
    }
    if (self->health_changed_) {
      self->OnHealthChanged();
    }
    self->Flush();
    self->DeliverCompleted();
    if (self->generation_ != generation) {
      return;
    }
    if (self->state_ == State::kReady || self->state_ == State::kDraining) {
      if (!nghttp2_session_want_read(self->session_) &&
          !nghttp2_session_want_write(self->session_)) {
        if (self->state_ == State::kReady || !self->streams_.empty()) {
          // nghttp2 ended the session itself (a protocol error: its GOAWAY is out), or nothing
          // more will be read for the streams left: a failed connection, reconnected later.
          return self->Fail("the HTTP/2 session ended");
        }
        // The server's GOAWAY, every stream done.
        self->CloseIfDone();
        return;
      }
      self->CloseIfDone();
      if (self->generation_ == generation) {
        self->Read();
      }
    }
  };
  if (tls_ != nullptr) {
    tls_->async_read_some(net::buffer(in_), std::move(on_read));
  } else {
    socket_.async_read_some(net::buffer(in_), std::move(on_read));
  }
}

void H2Upstreams::Connection::Flush() {
  if (writing_ || session_ == nullptr) {
    return;
  }
  for (;;) {
    const uint8_t* data = nullptr;
    ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n < 0) {
      return Fail(absl::StrCat("HTTP/2: ", nghttp2_strerror(static_cast<int>(n))));
    }
    if (n == 0) {
      break;
    }
    out_.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
  }
  if (!out_.empty()) {
    // Plaintext: what the socket takes at once goes now, without a round through the reactor.
    // TLS always writes asynchronously: Asio's SSL stream must not meet a full non-blocking
    // socket in a synchronous write (what it encrypted and could not send would be lost).
    size_t written = 0;
    if (tls_ == nullptr) {
      error_code ec;
      written = socket_.write_some(net::buffer(out_), ec);
      if (ec == net::error::would_block || ec == net::error::try_again) {
        ec = {};
        written = 0;
      }
      if (ec) {
        return Fail(ec.message());
      }
    }
    if (written == out_.size()) {
      out_.clear();
    } else {
      out_.erase(0, written);
      writing_ = true;
      auto self = shared_from_this();
      const uint64_t generation = generation_;
      auto on_written = [self, generation, tls = tls_](const error_code& ec, size_t /*n*/) {
        if (self->generation_ != generation) {
          return;
        }
        self->writing_ = false;
        if (ec) {
          return self->Fail(ec.message());
        }
        self->out_.clear();
        self->Flush();
        self->CloseIfDone();
      };
      if (tls_ != nullptr) {
        net::async_write(*tls_, net::buffer(out_), std::move(on_written));
      } else {
        net::async_write(socket_, net::buffer(out_), std::move(on_written));
      }
    }
  }
  DeliverCompleted();
}

void H2Upstreams::Connection::DeliverCompleted() {
  while (!completed_.empty()) {
    std::vector<Completed> batch;
    batch.swap(completed_);
    for (const Completed& c : batch) {
      if (c.status) {
        service_->Finish(c.call, *c.status, this);
      } else {
        service_->RetryTransparently(c.call, this);
      }
    }
  }
}

void H2Upstreams::Connection::Fail(absl::string_view why) {
  if (state_ != State::kConnecting && state_ != State::kReady && state_ != State::kDraining) {
    return;
  }
  auto self = shared_from_this();
  const bool was_up = state_ != State::kConnecting;
  state_ = State::kFailed;
  const H2UpstreamOptions& options = service_->loop->options();
  backoff_ = backoff_ == absl::ZeroDuration()
                 ? std::min(absl::Milliseconds(100), options.max_reconnect_backoff)
                 : std::min(backoff_ * 1.6, options.max_reconnect_backoff);
  retry_after_ = absl::Now() + backoff_;
  service_->last_error = std::string(why);
  // Once per change: a replica that stays down (or keeps refusing the handshake, or closes each
  // connection before it says anything) for the same reason is not logged at each attempt.
  if (why != logged_failure_) {
    KURT_LOG(kWarn, "h2 upstream: connection failed", {"service", service_->name},
             {"address", Address()}, {"error", why}, {"was_up", was_up});
    logged_failure_ = std::string(why);
  }
  Teardown();
  // Calls the server never saw go again at once (to another replica if there is one); the others
  // fail UNAVAILABLE (and the retried methods go once more).
  std::vector<Call*> unseen = std::move(queued_);
  queued_.clear();
  std::vector<Call*> lost;
  for (const auto& [id, call] : streams_) {
    (!call->headers_sent || id > goaway_last_stream_ ? unseen : lost).push_back(call);
  }
  streams_.clear();
  const bool draining = std::any_of(service_->draining.begin(), service_->draining.end(),
                                    [this](const auto& c) { return c.get() == this; });
  if (draining) {
    service_->Forget(this);
  }
  service_->ConnectionFailed(this);
  for (Call* call : unseen) {
    call->connection.reset();
    service_->RetryTransparently(call, this);
  }
  for (Call* call : lost) {
    call->connection.reset();
    service_->Finish(
        call, grpc::Status(grpc::StatusCode::UNAVAILABLE, absl::StrCat(service_->name, ": ", why)),
        this);
  }
  // What nghttp2 gave up before the failure (HEADERS not sent, from a Flush that then failed).
  DeliverCompleted();
}

// --- nghttp2's callbacks (inside mem_recv / mem_send)
// ---------------------------------------------

int H2Upstreams::Connection::OnHeader(nghttp2_session*, const nghttp2_frame* frame,
                                      const uint8_t* name, size_t namelen, const uint8_t* value,
                                      size_t valuelen, uint8_t /*flags*/, void* user_data) {
  auto* self = static_cast<Connection*>(user_data);
  if (frame->hd.type != NGHTTP2_HEADERS) {
    return 0;
  }
  absl::string_view n(reinterpret_cast<const char*>(name), namelen);
  absl::string_view v(reinterpret_cast<const char*>(value), valuelen);
  if (frame->hd.stream_id == self->health_stream_ && self->health_stream_ != 0) {
    if (int code = 0; n == "grpc-status" && absl::SimpleAtoi(v, &code)) {
      self->health_status_ = code;
    }
    return 0;
  }
  Call* call = self->Find(frame->hd.stream_id);
  if (call == nullptr) {
    return 0;
  }
  if (n == ":status") {
    (void)absl::SimpleAtoi(v, &call->http_status);
  } else if (n == "grpc-status") {
    int code = 0;
    call->grpc_status = absl::SimpleAtoi(v, &code) && code >= 0 && code <= 16
                            ? code
                            : static_cast<int>(grpc::StatusCode::UNKNOWN);
  } else if (n == "grpc-message") {
    call->grpc_message = platform::PercentDecodeGrpcMessage(v);
  } else if (n == "grpc-status-details-bin") {
    absl::Base64Unescape(v, &call->details);
  }
  return 0;
}

int H2Upstreams::Connection::OnData(nghttp2_session* session, uint8_t /*flags*/, int32_t stream_id,
                                    const uint8_t* data, size_t len, void* user_data) {
  auto* self = static_cast<Connection*>(user_data);
  if (stream_id == self->health_stream_ && stream_id != 0) {
    // HealthCheckResponse messages: {status: SERVING} is the bytes 08 01.
    std::string& buf = self->health_messages_;
    buf.append(reinterpret_cast<const char*>(data), len);
    while (buf.size() >= 5) {
      uint32_t length = (uint32_t{static_cast<uint8_t>(buf[1])} << 24) |
                        (uint32_t{static_cast<uint8_t>(buf[2])} << 16) |
                        (uint32_t{static_cast<uint8_t>(buf[3])} << 8) |
                        uint32_t{static_cast<uint8_t>(buf[4])};
      if (buf.size() - 5 < length) {
        break;
      }
      Health health =
          buf.compare(5, length, "\x08\x01") == 0 ? Health::kServing : Health::kNotServing;
      buf.erase(0, 5 + length);
      if (health != self->health_) {
        self->health_ = health;
        self->health_changed_ = true;
      }
    }
    return 0;
  }
  Call* call = self->Find(stream_id);
  if (call == nullptr || call->too_large) {
    return 0;
  }
  if (call->response.size() + len > self->service_->loop->options().max_response_bytes + 5) {
    call->too_large = true;
    nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_CANCEL);
    return 0;
  }
  call->response.append(reinterpret_cast<const char*>(data), len);
  return 0;
}

namespace {

grpc::Status Outcome(const std::string& service, int http_status, std::optional<int> grpc_status,
                     const std::string& message, const std::string& details,
                     const std::string& response, bool too_large, size_t max, uint32_t error_code) {
  if (too_large) {
    return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        absl::StrCat(service, ": the response is larger than ", max, " bytes"));
  }
  if (grpc_status) {
    if (*grpc_status != 0) {
      return grpc::Status(static_cast<grpc::StatusCode>(*grpc_status), message, details);
    }
    // A unary call's answer: one uncompressed message (no compression was offered).
    if (response.size() < 5 || response[0] != 0) {
      return grpc::Status(
          grpc::StatusCode::INTERNAL,
          absl::StrCat(service, ": no message, or a compressed one, in the answer"));
    }
    uint32_t length = (uint32_t{static_cast<uint8_t>(response[1])} << 24) |
                      (uint32_t{static_cast<uint8_t>(response[2])} << 16) |
                      (uint32_t{static_cast<uint8_t>(response[3])} << 8) |
                      uint32_t{static_cast<uint8_t>(response[4])};
    if (length != response.size() - 5) {
      return grpc::Status(grpc::StatusCode::INTERNAL,
                          absl::StrCat(service, ": a malformed message in the answer"));
    }
    return grpc::Status::OK;
  }
  if (http_status != 0 && http_status != 200) {
    return grpc::Status(FromHttpStatus(http_status),
                        absl::StrCat(service, ": HTTP status ", http_status));
  }
  if (error_code != NGHTTP2_NO_ERROR) {
    return grpc::Status(
        FromResetCode(error_code),
        absl::StrCat(service, ": stream reset (", nghttp2_http2_strerror(error_code), ")"));
  }
  return grpc::Status(grpc::StatusCode::UNKNOWN,
                      absl::StrCat(service, ": the call ended without a status"));
}

}  // namespace

int H2Upstreams::Connection::OnStreamClose(nghttp2_session*, int32_t stream_id, uint32_t error_code,
                                           void* user_data) {
  auto* self = static_cast<Connection*>(user_data);
  if (stream_id == self->health_stream_ && stream_id != 0) {
    self->health_stream_ = 0;
    if (self->health_status_ == static_cast<int>(grpc::StatusCode::UNIMPLEMENTED)) {
      // A server without health checking: taken as serving, as gRPC's channels do.
      self->health_ = Health::kServing;
      self->health_changed_ = true;
    } else if (self->state_ == State::kReady) {
      // Ended otherwise: the last word stands, and the watch starts again in a second.
      auto keep = self->shared_from_this();
      const uint64_t generation = self->generation_;
      self->connect_timer_.expires_after(std::chrono::seconds(1));
      self->connect_timer_.async_wait([keep, generation](const boost::system::error_code& ec) {
        if (!ec && keep->generation_ == generation && keep->state_ == State::kReady) {
          keep->WatchHealth();
          keep->Flush();
        }
      });
    }
    return 0;
  }
  Call* call = self->Find(stream_id);
  if (call == nullptr) {
    return 0;
  }
  self->streams_.erase(stream_id);
  call->connection.reset();
  if (!call->grpc_status && error_code == NGHTTP2_REFUSED_STREAM) {
    // Refused, or above the last stream of a GOAWAY: the server never processed it.
    self->completed_.push_back({call, std::nullopt});
    return 0;
  }
  self->completed_.push_back(
      {call, Outcome(self->service_->name, call->http_status, call->grpc_status, call->grpc_message,
                     call->details, call->response, call->too_large,
                     self->service_->loop->options().max_response_bytes, error_code)});
  return 0;
}

int H2Upstreams::Connection::OnFrameRecv(nghttp2_session*, const nghttp2_frame* frame,
                                         void* user_data) {
  auto* self = static_cast<Connection*>(user_data);
  if (frame->hd.type == NGHTTP2_GOAWAY) {
    // The server is going (a graceful shutdown, its connections' maximum age): new calls go on
    // a new connection; those above last_stream_id are closed REFUSED_STREAM by nghttp2 (retried).
    self->goaway_last_stream_ = std::min(self->goaway_last_stream_, frame->goaway.last_stream_id);
    if (self->state_ == State::kReady) {
      self->Drain();
      self->service_->Replace(self);
    }
  }
  return 0;
}

int H2Upstreams::Connection::OnFrameSend(nghttp2_session*, const nghttp2_frame* frame,
                                         void* user_data) {
  auto* self = static_cast<Connection*>(user_data);
  if (frame->hd.type == NGHTTP2_HEADERS) {
    if (Call* call = self->Find(frame->hd.stream_id)) {
      call->headers_sent = true;
    }
  }
  return 0;
}

int H2Upstreams::Connection::OnFrameNotSend(nghttp2_session*, const nghttp2_frame* frame,
                                            int /*error*/, void* user_data) {
  auto* self = static_cast<Connection*>(user_data);
  if (frame->hd.type != NGHTTP2_HEADERS) {
    return 0;
  }
  Call* call = self->Find(frame->hd.stream_id);
  if (call == nullptr) {
    return 0;
  }
  // Not sent (the server's GOAWAY came first): the call goes on another connection.
  self->streams_.erase(frame->hd.stream_id);
  call->connection.reset();
  self->completed_.push_back({call, std::nullopt});
  return 0;
}

ssize_t H2Upstreams::Connection::ReadBody(nghttp2_session*, int32_t stream_id, uint8_t* buf,
                                          size_t length, uint32_t* data_flags,
                                          nghttp2_data_source* /*source*/, void* user_data) {
  auto* self = static_cast<Connection*>(user_data);
  if (stream_id == self->health_stream_ && length >= 5) {
    // HealthCheckRequest{service: ""}: an empty message.
    std::memset(buf, 0, 5);
    *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return 5;
  }
  Call* call = self->Find(stream_id);
  if (call == nullptr) {
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  }
  size_t n = std::min(length, call->body.size() - call->offset);
  std::copy_n(call->body.data() + call->offset, n, buf);
  call->offset += n;
  if (call->offset == call->body.size()) {
    *data_flags |= NGHTTP2_DATA_FLAG_EOF;
  }
  return static_cast<ssize_t>(n);
}

// --- H2Upstreams --------------------------------------------------------------------------------

absl::StatusOr<std::shared_ptr<net::ssl::context>> H2ClientTlsContext(
    const platform::TlsConfig& tls) {
  auto context = std::make_shared<net::ssl::context>(net::ssl::context::tls_client);
  if (absl::Status s = platform::UseMutualTls(context.get(), tls, net::ssl::verify_peer); !s.ok()) {
    return s;
  }
  SSL_CTX* ctx = context->native_handle();
  // gRPC over TLS is HTTP/2 chosen by ALPN (the handshake checks the server chose it).
  static constexpr unsigned char kAlpn[] = {2, 'h', '2'};
  if (SSL_CTX_set_alpn_protos(ctx, kAlpn, sizeof(kAlpn)) != 0) {
    return absl::InternalError("OpenSSL refuses the ALPN protocol list");
  }
  return context;
}

H2Upstreams::H2Upstreams(const std::map<std::string, std::string>& targets,
                         H2UpstreamOptions options)
    : id_(next_upstreams_id.fetch_add(1)), targets_(targets), options_(std::move(options)) {
  for (const auto& [key, addresses] : targets_) {
    if (absl::StrContains(key, '/')) {
      method_targets_.insert(key);
    }
  }
  if (options_.tls) {
    absl::StatusOr<std::shared_ptr<net::ssl::context>> context = H2ClientTlsContext(*options_.tls);
    if (context.ok()) {
      tls_context_ = *std::move(context);
    } else {
      // Every connection fails with this (main checks the files before it gets here).
      tls_error_ = std::string(context.status().message());
      KURT_LOG(kError, "h2 upstream: no TLS", {"error", tls_error_});
    }
  }
}

H2Upstreams::~H2Upstreams() {
  if (!shut_down_) {
    std::lock_guard<std::mutex> lock(loops_mu_);
    if (!loops_.empty()) {
      // Their sockets and timers belong to io_contexts that may be gone: leave them.
      KURT_LOG(kError, "h2 upstream: destroyed without Shutdown; leaking its connections");
      for (auto& loop : loops_) {
        (void)loop.release();
      }
    }
  }
}

bool H2Upstreams::Has(absl::string_view service) const {
  auto it = targets_.find(std::string(service));
  // unix: targets and the like stay on gRPC's channels.
  return it != targets_.end() && !absl::StartsWith(it->second, "unix:") &&
         (!absl::StrContains(it->second, ":///") || absl::StartsWith(it->second, "dns:///"));
}

H2Upstreams::Loop* H2Upstreams::LoopFor(net::io_context& ioc) {
  if (thread_loop.owner == id_ && &thread_loop.loop->ioc() == &ioc) {
    return thread_loop.loop;
  }
  std::lock_guard<std::mutex> lock(loops_mu_);
  Loop* found = nullptr;
  for (auto& loop : loops_) {
    if (&loop->ioc() == &ioc) {
      found = loop.get();
    }
  }
  if (found == nullptr) {
    loops_.push_back(std::make_unique<Loop>(this, ioc));
    found = loops_.back().get();
  }
  thread_loop = {id_, found};
  return found;
}

void H2Upstreams::Unary(net::io_context& ioc, absl::string_view service, const std::string& method,
                        H2Metadata metadata, absl::Time deadline, absl::string_view request,
                        Done done) {
  if (shut_down_.load(std::memory_order_relaxed)) {
    return done(grpc::Status(grpc::StatusCode::UNAVAILABLE, "shutting down"), "");
  }
  Loop* loop = LoopFor(ioc);
  if (!method_targets_.empty()) {
    // "/pkg.Service/Method" -> "pkg.Service/Method": a target of its own, when it has one.
    if (absl::string_view key = absl::string_view(method).substr(1);
        method_targets_.contains(key)) {
      service = key;
    }
  }
  Service* s = loop->FindService(service);
  if (s == nullptr) {
    return done(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                             absl::StrCat("no upstream configured for ", service)),
                "");
  }
  auto* call = new Call();
  call->service = s;
  call->path = &method;
  call->metadata = std::move(metadata);
  call->deadline = deadline;
  call->done = std::move(done);
  call->retried_method = s->retried_paths.contains(method);
  const uint32_t length = static_cast<uint32_t>(request.size());
  call->body.reserve(5 + request.size());
  call->body.push_back('\0');
  call->body.push_back(static_cast<char>(length >> 24));
  call->body.push_back(static_cast<char>(length >> 16));
  call->body.push_back(static_cast<char>(length >> 8));
  call->body.push_back(static_cast<char>(length));
  call->body.append(request.data(), request.size());
  in_flight_.fetch_add(1, std::memory_order_relaxed);
  loop->Start(call);
}

void H2Upstreams::Shutdown() {
  if (shut_down_.exchange(true)) {
    return;
  }
  std::lock_guard<std::mutex> lock(loops_mu_);
  for (auto& loop : loops_) {
    loop->Shutdown();
  }
}

}  // namespace kurt::edge
