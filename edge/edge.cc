#include "edge/edge.h"

#include <algorithm>
#include <array>
#include <future>
#include <optional>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "boost/asio/post.hpp"
#include "boost/asio/steady_timer.hpp"
#include "edge/edge_call.h"
#include "edge/field_encoding.h"
#include "edge/http_util.h"
#include "edge/openapi.h"
#include "edge/status_mapping.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "kurt/api/v1/options.pb.h"
#include "platform/core/log.h"
#include "platform/grpc/edge_trust.h"
#include "platform/grpc/grpc_wire.h"
#include "services/common/mesh.h"

namespace kurt::edge {

namespace http = boost::beast::http;
namespace net = boost::asio;

namespace {

absl::string_view View(boost::beast::string_view s) {
  return absl::string_view(s.data(), s.size());
}

// A response's status line and header fields, as Beast would write them (Exchange::
// RespondPrebuilt); "" when a name or value holds what must not go out as is (CR, LF).
std::string PrebuiltHead(unsigned status,
                         const std::vector<std::pair<std::string, std::string>>& headers) {
  std::string head =
      absl::StrCat("HTTP/1.1 ", status, " ",
                   View(http::obsolete_reason(static_cast<http::status>(status))), "\r\n");
  for (const auto& [name, value] : headers) {
    if (name.empty() || name.find_first_of("\r\n: ") != std::string::npos ||
        value.find_first_of("\r\n") != std::string::npos) {
      return "";
    }
    absl::StrAppend(&head, name, ": ", value, "\r\n");
  }
  return head;
}

// A cached redirect's key: its route and the upstream request, what the answer depends on and
// nothing else (a query string the route ignores does not make another entry).
void CacheKey(int route_id, absl::string_view request, std::string* key) {
  key->assign(reinterpret_cast<const char*>(&route_id), sizeof(route_id));
  key->append(request.data(), request.size());
}

std::string CacheKey(int route_id, absl::string_view request) {
  std::string key;
  CacheKey(route_id, request, &key);
  return key;
}

// Headers a browser may send cross-origin; CORS preflights are answered with these.
constexpr absl::string_view kCorsAllowHeaders =
    "authorization, content-type, x-request-id, traceparent, last-event-id, x-request-timeout, "
    "grpc-timeout, if-none-match";
constexpr absl::string_view kCorsExposeHeaders = "x-request-id, etag, location, retry-after";

bool IsServerSide(grpc::StatusCode code) { return HttpStatusFromGrpc(code) >= 500; }

// The whole seconds (at least 1) of a google.rpc.RetryInfo in an error's details, for Retry-After.
std::optional<int64_t> RetryAfterSeconds(absl::string_view details) {
  if (details.empty()) {
    return std::nullopt;
  }
  google::rpc::Status status;
  if (!status.ParseFromArray(details.data(), static_cast<int>(details.size()))) {
    return std::nullopt;
  }
  for (const google::protobuf::Any& any : status.details()) {
    google::rpc::RetryInfo info;
    if (any.UnpackTo(&info)) {
      const google::protobuf::Duration& d = info.retry_delay();
      return std::max<int64_t>(1, d.seconds() + (d.nanos() > 0 ? 1 : 0));
    }
  }
  return std::nullopt;
}

// Reports of cached redirects go upstream like any unary call, from the reporter's thread.
class UpstreamHitSender final : public HitSender {
 public:
  UpstreamHitSender(Upstreams* upstreams, std::string edge_secret)
      : upstreams_(upstreams), edge_secret_(std::move(edge_secret)) {}

  grpc::Status Send(const std::string& service, const std::string& method, const std::string& batch,
                    absl::Duration timeout) override {
    grpc::GenericStub* stub = upstreams_->Stub(service);
    if (stub == nullptr) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          absl::StrCat("no upstream configured for ", service));
    }
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    context.AddMetadata(std::string(platform::kRequestIdMetadata), log::NewRequestId());
    context.AddMetadata(std::string(platform::kEdgeSecretMetadata), edge_secret_);
    grpc::ByteBuffer request = ToByteBuffer(batch);
    grpc::ByteBuffer response;
    std::promise<grpc::Status> done;
    upstreams_->AsyncUnary(stub, &context, method, request, &response,
                           [&done](const grpc::Status& status) { done.set_value(status); });
    return done.get_future().get();
  }

 private:
  Upstreams* upstreams_;
  const std::string edge_secret_;
};

// X-Forwarded-For as one list: a proxy may add its entry as a header line of its own (HAProxy's
// `option forwardfor` does) after the lines the client sent, and the last entries are the only
// ones to believe. One line (the common case) is returned as it is; several are joined into
// `*joined`.
absl::string_view ForwardedFor(const HttpRequest& req, std::string* joined) {
  auto [first, last] = req.equal_range("x-forwarded-for");
  if (first == last) {
    return {};
  }
  if (std::next(first) == last) {
    return View(first->value());
  }
  *joined = std::string(View(first->value()));
  for (auto it = std::next(first); it != last; ++it) {
    absl::StrAppend(joined, ", ", View(it->value()));
  }
  return *joined;
}

// `value` as MetadataSafe makes it, without a copy when it is already so (the usual case);
// otherwise made in `*scratch`.
absl::string_view SafeView(absl::string_view value, size_t max_size, std::string* scratch) {
  if (value.size() <= max_size &&
      std::all_of(value.begin(), value.end(), [](char c) { return c >= 0x20 && c <= 0x7e; })) {
    return value;
  }
  *scratch = MetadataSafe(value, max_size);
  return *scratch;
}

// The metadata an upstream call carries for the client's request (besides the auth decision's
// and the credentials), bounded in size; also what the report of a cached redirect says. Each
// value given to `add` lives until `add` returns.
template <typename Add>
void ForEachForwarded(const HttpRequest& req, const std::string& request_id,
                      absl::string_view client_ip, absl::string_view click_id, Add&& add) {
  std::string scratch;
  add(platform::kRequestIdMetadata, absl::string_view(request_id));
  if (!click_id.empty()) {
    add(mesh::kClickIdMetadata, click_id);
  }
  if (auto v = View(req["traceparent"]); !v.empty()) {
    add(platform::kTraceparentMetadata, SafeView(v, 256, &scratch));
  }
  add(mesh::kClientIpMetadata, SafeView(client_ip, 64, &scratch));
  if (req.method() == http::verb::head) {
    add(mesh::kRequestMethodMetadata, absl::string_view("HEAD"));
  }
  if (auto v = View(req[http::field::user_agent]); !v.empty()) {
    add(mesh::kUserAgentMetadata, SafeView(v, 512, &scratch));
  }
  if (auto v = View(req[http::field::referer]); !v.empty()) {
    add(mesh::kRefererMetadata, SafeView(v, 1024, &scratch));
  }
  if (auto v = View(req["last-event-id"]); !v.empty()) {
    add("last-event-id", SafeView(v, 256, &scratch));
  }
}

}  // namespace

Edge::Edge(EdgeOptions options, const ApiDescriptors* api, const RouteTable* routes,
           Upstreams* upstreams, Authorizer* authorizer, metrics::Registry* registry)
    : options_(std::move(options)),
      api_(api),
      routes_(routes),
      upstreams_(upstreams),
      authorizer_(authorizer),
      registry_(registry),
      transcoder_(api),
      metrics_(registry),
      cache_(options_.cache_entries, options_.cache_bytes),
      hit_sender_(std::make_unique<UpstreamHitSender>(upstreams, options_.edge_secret)),
      hit_reporter_(
          std::make_unique<HitReporter>(options_.cached_hits, hit_sender_.get(), registry)),
      health_(std::make_unique<UpstreamHealth>(upstreams, registry, options_.upstream_health)) {
  absl::flat_hash_map<std::string, int> hit_methods;
  for (const auto& route : routes_->routes()) {
    RouteState state;
    state.stats = metrics_.Route(route->name);
    state.upstream_errors = &metrics_.UpstreamErrors(route->service);
    state.upstream = health_->Index(route->service);
    if (route->redirect && !route->redirect->cached_hits_method.empty()) {
      const std::string& method = route->redirect->cached_hits_method;
      auto [it, added] = hit_methods.try_emplace(method, -1);
      if (added) {
        it->second = hit_reporter_->AddMethod(route->service, method);
      }
      state.cached_hits = it->second;
    }
    route_states_.push_back(state);
    if (route->redirect && route->is_public && route->redirect->cache_max_age_seconds > 0) {
      cached_redirect_routes_[route->method->full_name()].push_back(route->id);
    }
  }
  unmatched_stats_ = metrics_.Route("unmatched");
  healthz_stats_ = metrics_.Route("healthz");
  readyz_stats_ = metrics_.Route("readyz");
  metrics_stats_ = metrics_.Route("metrics");
  openapi_stats_ = metrics_.Route("openapi");
  preflight_stats_ = metrics_.Route("cors_preflight");
  server_error_stats_ = metrics_.Route("refused");
  openapi_ = BuildOpenApi(*api_, *routes_, options_.public_url);
  openapi_etag_ = StrongEtag(openapi_);
  cors_max_age_ = absl::StrCat(absl::ToInt64Seconds(options_.cors_max_age));
}

Edge::~Edge() { WaitIdle(absl::Seconds(5)); }

void Edge::WaitIdle(absl::Duration max) {
  absl::Time deadline = absl::Now() + max;
  while (upstream_calls_.load() > 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
}

void Edge::CancelStreams() {
  std::lock_guard<std::mutex> lock(calls_mu_);
  for (const auto& [context, stream] : calls_) {
    if (stream) {
      context->TryCancel();
    }
  }
}

void Edge::CancelUpstreamCalls() {
  {
    std::lock_guard<std::mutex> lock(calls_mu_);
    calls_cancelled_ = true;
    for (const auto& [context, stream] : calls_) {
      context->TryCancel();
    }
  }
  // The h2 calls live on the I/O threads, stopped by now: they are answered (503) from here.
  if (H2Upstreams* h2 = upstreams_->h2(); h2 != nullptr) {
    h2->Shutdown();
  }
}

bool Edge::Track(grpc::ClientContext* context, bool stream) {
  std::lock_guard<std::mutex> lock(calls_mu_);
  if (calls_cancelled_) {
    return false;
  }
  calls_.emplace(context, stream);
  return true;
}

void Edge::Untrack(grpc::ClientContext* context) {
  std::lock_guard<std::mutex> lock(calls_mu_);
  calls_.erase(context);
}

void Edge::SendShuttingDown(const std::shared_ptr<Call>& call) {
  SendError(
      call, 503, grpc::StatusCode::UNAVAILABLE,
      absl::StrCat("this server is shutting down; retry (request id ", call->request_id, ")"));
}

bool Edge::OriginAllowed(absl::string_view origin) const {
  for (const std::string& o : options_.cors_origins) {
    if (o == "*" || o == origin) {
      return true;
    }
  }
  return false;
}

void Edge::AddCommonHeaders(const Call& call, HttpResponse* res) const {
  res->set("x-request-id", call.request_id);
  if (!call.origin.empty() && OriginAllowed(call.origin)) {
    res->set(http::field::access_control_allow_origin, call.origin);
    res->set(http::field::access_control_expose_headers, std::string(kCorsExposeHeaders));
    res->set(http::field::vary, "Origin");
  }
}

void Edge::Record(const Call& call, unsigned http_status) {
  absl::Duration latency = absl::Now() - call.start;
  call.stats->Record(http_status, latency);
  if (http_status >= 500) {
    KURT_LOG(kWarn, "request failed", {"request_id", call.request_id},
             {"method", std::string(View(call.exchange->request().method_string()))},
             {"target", std::string(View(call.exchange->request().target()))},
             {"status", http_status}, {"ms", absl::ToDoubleMilliseconds(latency)});
  } else {
    KURT_LOG(kDebug, "request", {"request_id", call.request_id},
             {"method", std::string(View(call.exchange->request().method_string()))},
             {"target", std::string(View(call.exchange->request().target()))},
             {"status", http_status}, {"ms", absl::ToDoubleMilliseconds(latency)});
  }
}

void Edge::Send(const std::shared_ptr<Call>& call, HttpResponse res) {
  AddCommonHeaders(*call, &res);
  Record(*call, res.result_int());
  call->exchange->Respond(std::move(res));
}

void Edge::SendError(const std::shared_ptr<Call>& call, unsigned http_status, int grpc_code,
                     absl::string_view message, absl::string_view details) {
  HttpResponse res{static_cast<http::status>(http_status), 11};
  res.set(http::field::content_type, "application/json");
  res.set(http::field::cache_control, "no-store");
  if (std::optional<int64_t> seconds = RetryAfterSeconds(details)) {
    res.set(http::field::retry_after, absl::StrCat(*seconds));
  }
  res.body() = transcoder_.ErrorBody(grpc_code, message, details);
  Send(call, std::move(res));
}

grpc::Status Edge::PublicStatus(const Call& call, const grpc::Status& status) const {
  const std::string& service = call.route != nullptr ? call.route->service : "the upstream";
  std::string message;
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
      message = absl::StrCat(service, " is unavailable right now; retry later (request id ",
                             call.request_id, ")");
      break;
    case grpc::StatusCode::INTERNAL:
    case grpc::StatusCode::UNKNOWN:
    case grpc::StatusCode::DATA_LOSS:
      message = absl::StrCat("internal error in ", service, " (request id ", call.request_id,
                             "); it has been logged");
      break;
    default:
      return status;
  }
  KURT_LOG(kWarn, "upstream failed", {"request_id", call.request_id}, {"service", service},
           {"code", static_cast<int>(status.error_code())}, {"error", status.error_message()});
  return grpc::Status(status.error_code(), message);
}

void Edge::SendPage(const std::shared_ptr<Call>& call, unsigned http_status, HttpPayload page,
                    absl::string_view details) {
  HttpResponse res{static_cast<http::status>(http_status), 11};
  res.set(http::field::content_type, page.content_type);
  res.set(http::field::cache_control, "no-store");
  res.set("x-content-type-options", "nosniff");
  res.set("referrer-policy", "no-referrer");
  if (!call->route->redirect->content_security_policy.empty()) {
    res.set("content-security-policy", call->route->redirect->content_security_policy);
  }
  if (std::optional<int64_t> seconds = RetryAfterSeconds(details)) {
    res.set(http::field::retry_after, absl::StrCat(*seconds));
  }
  if (call->exchange->request().method() == http::verb::head) {
    res.content_length(page.body.size());
  } else {
    res.body() = std::move(page.body);
  }
  Send(call, std::move(res));
}

void Edge::SendGrpcError(const std::shared_ptr<Call>& call, const grpc::Status& status) {
  // A redirect route with pages answers a person: an error that carries a page is that page.
  if (HttpPayload page; call->route != nullptr && call->route->redirect &&
                        call->route->redirect->body_field_number > 0 &&
                        Transcoder::ErrorPage(status.error_details(), &page)) {
    return SendPage(call, HttpStatusFromGrpc(status.error_code()), std::move(page),
                    status.error_details());
  }
  grpc::Status shown = PublicStatus(*call, status);
  SendError(call, HttpStatusFromGrpc(shown.error_code()), shown.error_code(), shown.error_message(),
            shown.error_details());
}

void Edge::SendUpstreamNotServing(const std::shared_ptr<Call>& call) {
  route_states_[call->route->id].upstream_errors->Increment();
  HttpResponse res{http::status::service_unavailable, 11};
  res.set(http::field::content_type, "application/json");
  res.set(http::field::cache_control, "no-store");
  res.set(http::field::retry_after, "1");
  res.body() = transcoder_.ErrorBody(
      grpc::StatusCode::UNAVAILABLE,
      absl::StrCat(call->route->service, " is not serving right now; retry later (request id ",
                   call->request_id, ")"),
      "");
  Send(call, std::move(res));
}

HttpResponse Edge::ServerError(unsigned http_status, int grpc_code, absl::string_view message,
                               const HttpRequest* request) {
  HttpResponse res{static_cast<http::status>(http_status), 11};
  res.set(http::field::content_type, "application/json");
  res.set(http::field::connection, "close");
  res.body() = transcoder_.ErrorBody(grpc_code, message, "");
  std::string id;
  if (request != nullptr) {
    id = MetadataSafe(View((*request)["x-request-id"]), 128);
  }
  res.set("x-request-id", id.empty() ? log::NewRequestId() : id);
  server_error_stats_->Record(http_status, absl::ZeroDuration());
  return res;
}

void Edge::Handle(std::shared_ptr<Exchange> exchange) {
  auto call = std::make_shared<Call>();
  call->start = absl::Now();
  call->exchange = std::move(exchange);
  HttpRequest& req = call->exchange->request();
  call->request_id = MetadataSafe(View(req["x-request-id"]), 128);
  if (call->request_id.empty()) {
    call->request_id = log::NewRequestId();
  }
  call->origin = std::string(View(req[http::field::origin]));

  absl::string_view target = View(req.target());
  absl::string_view path = target.substr(0, target.find('?'));
  absl::string_view query =
      path.size() < target.size() ? target.substr(path.size() + 1) : absl::string_view();

  if (req.method() == http::verb::options) {
    return Preflight(call, path);
  }
  if (path == "/healthz" || path == "/readyz" || path == "/metrics" || path == "/v1/openapi.json") {
    return Builtin(call, path);
  }
  bool is_get = req.method() == http::verb::get;

  Router::Match match = routes_->router().Find(View(req.method_string()), path);
  if (req.method() == http::verb::head && match.outcome != Router::Outcome::kFound) {
    // A redirect answers HEAD as it answers GET (link checkers and preview fetchers send it;
    // links counts the click as a bot's). Never from the cache: is_get is false.
    Router::Match get = routes_->router().Find("GET", path);
    if (get.outcome == Router::Outcome::kFound && routes_->routes()[get.route_id]->redirect) {
      match = std::move(get);
    }
  }
  switch (match.outcome) {
    case Router::Outcome::kFound:
      break;
    case Router::Outcome::kNotFound:
      call->stats = unmatched_stats_;
      return SendError(call, 404, grpc::StatusCode::NOT_FOUND,
                       absl::StrCat("no route for ", View(req.method_string()), " ", path));
    case Router::Outcome::kMethodNotAllowed: {
      call->stats = unmatched_stats_;
      HttpResponse res{http::status::method_not_allowed, 11};
      res.set(http::field::allow, match.allow);
      res.set(http::field::content_type, "application/json");
      res.body() =
          transcoder_.ErrorBody(grpc::StatusCode::UNIMPLEMENTED,
                                absl::StrCat(View(req.method_string()), " is not allowed on ", path,
                                             " (allowed: ", match.allow, ")"),
                                "");
      return Send(call, std::move(res));
    }
    case Router::Outcome::kBadPath:
      call->stats = unmatched_stats_;
      return SendError(call, 400, grpc::StatusCode::INVALID_ARGUMENT,
                       "malformed path (a bad %-escape?)");
  }

  const Route& route = *routes_->routes()[match.route_id];
  call->route = &route;
  call->stats = route_states_[route.id].stats;
  absl::StatusOr<std::string> request = transcoder_.Request(route, match.values, query, req.body(),
                                                            View(req[http::field::content_type]));
  if (!request.ok()) {
    return SendError(call, 400, grpc::StatusCode::INVALID_ARGUMENT, request.status().message());
  }
  if (is_get && route.redirect && route.is_public && route.redirect->cache_max_age_seconds > 0 &&
      cache_.enabled()) {
    // Looked up in a buffer the thread keeps; kept by the call only on a miss.
    thread_local std::string key;
    CacheKey(route.id, *request, &key);
    if (ServeFromCache(call, key)) {
      return;
    }
    call->cache_key = key;
    call->cache_generation = cache_.generation();
    metrics_.cache_misses().Increment();
  }
  if (!health_->Serving(route_states_[route.id].upstream)) {
    return SendUpstreamNotServing(call);
  }
  if (!call->cache_key.empty() && route_states_[route.id].cached_hits >= 0) {
    call->cached_request = *request;
  }
  std::string joined;
  call->client_ip = ClientIp(call->exchange->peer_address(), ForwardedFor(req, &joined),
                             options_.trusted_proxies);

  // The auth seam: may answer at once (pass-through) or later, on any thread.
  AuthRequest auth;
  auth.route = &route;
  auth.authorization = View(req[http::field::authorization]);
  auth.client_ip = call->client_ip;
  auth.request_id = call->request_id;
  auth.header = [&req](absl::string_view name) {
    return View(req[boost::beast::string_view(name.data(), name.size())]);
  };
  auto serialized = std::make_shared<std::string>(*std::move(request));
  auto inline_thread = std::this_thread::get_id();
  authorizer_->Authorize(auth, [this, call, serialized, inline_thread](AuthDecision decision) {
    if (std::this_thread::get_id() == inline_thread) {
      Authorized(call, decision);
      if (call->exchange->responded()) {
        return;
      }
      if (call->route->server_streaming) {
        StartStream(call, *serialized);
      } else {
        StartUnary(call, *serialized);
      }
      return;
    }
    net::post(call->exchange->executor(),
              [this, call, serialized, decision = std::move(decision)]() mutable {
                Authorized(call, decision);
                if (call->exchange->responded()) {
                  return;
                }
                if (call->route->server_streaming) {
                  StartStream(call, *serialized);
                } else {
                  StartUnary(call, *serialized);
                }
              });
  });
}

void Edge::Authorized(const std::shared_ptr<Call>& call, const AuthDecision& decision) {
  if (!decision.status.ok()) {
    int code = static_cast<int>(decision.status.code());
    HttpResponse res{static_cast<http::status>(HttpStatusFromGrpc(code)), 11};
    res.set(http::field::content_type, "application/json");
    res.set(http::field::cache_control, "no-store");
    for (const auto& [name, value] : decision.response_headers) {
      res.set(name, value);
    }
    res.body() = transcoder_.ErrorBody(code, decision.status.message(), "");
    return Send(call, std::move(res));
  }
  HttpRequest& req = call->exchange->request();
  H2Metadata& metadata = call->metadata;
  metadata.reserve(decision.metadata.size() + 8);
  for (auto& [key, value] : decision.metadata) {
    metadata.emplace_back(key, value);
  }
  // The client's credentials go only to public routes, whose service checks them itself
  // (CreateAccount's admin token). On every other route the edge has authenticated the key, and
  // the upstream learns the account, never the key.
  if (auto v = View(req[http::field::authorization]); !v.empty() && call->route->is_public) {
    metadata.emplace_back("authorization", MetadataSafe(v, 4096));
  }
  ForEachForwarded(req, call->request_id, call->client_ip,
                   call->route->redirect ? ClickId(*call) : std::string(),
                   [&metadata](absl::string_view key, absl::string_view value) {
                     metadata.emplace_back(std::string(key), std::string(value));
                   });
  // A redirect may forward the short URL's query to its target (kurt-links' forward_query), or
  // choose its target by the browser's languages (redirect rules); the edge keeps no such
  // redirect (its answer says max-age 0), so its cache key needs neither.
  if (call->route->redirect) {
    if (auto v = View(req[http::field::accept_language]); !v.empty()) {
      metadata.emplace_back(mesh::kAcceptLanguageMetadata,
                            MetadataSafe(v, mesh::kMaxForwardedAcceptLanguage));
    }
    // A longer query is not forwarded at all rather than cut inside a parameter.
    absl::string_view target = View(req.target());
    if (size_t q = target.find('?');
        q != target.npos && target.size() - q - 1 <= mesh::kMaxForwardedQuery) {
      metadata.emplace_back(mesh::kQueryMetadata,
                            MetadataSafe(target.substr(q + 1), mesh::kMaxForwardedQuery));
    }
  }

  std::optional<absl::Duration> timeout;
  if (auto v = View(req["grpc-timeout"]); !v.empty()) {
    timeout = platform::ParseGrpcTimeout(v);
  }
  if (!timeout) {
    if (auto v = View(req["x-request-timeout"]); !v.empty()) {
      timeout = ParseRequestTimeout(v);
    }
  }
  if (!timeout && call->route->default_timeout > absl::ZeroDuration()) {
    timeout = call->route->default_timeout;
  }
  if (timeout) {
    call->deadline = call->start + std::min(*timeout, options_.max_timeout);
  }
}

void Edge::MakeContext(Call& call) {
  grpc::ClientContext& context = call.context.emplace();
  for (const auto& [key, value] : call.metadata) {
    context.AddMetadata(key, value);
  }
  if (call.deadline != absl::InfiniteFuture()) {
    context.set_deadline(absl::ToChronoTime(call.deadline));
  }
}

void Edge::StartUnary(const std::shared_ptr<Call>& call, const std::string& request) {
  if (H2Upstreams* h2 = upstreams_->h2(); h2 != nullptr && h2->Has(call->route->service)) {
    if (calls_cancelled_) {
      return SendShuttingDown(call);
    }
    upstream_calls_.fetch_add(1);
    // On this I/O thread's own connections to the service: the response is read, and the answer
    // written, on this thread, with no hand-off to another.
    auto& ioc = static_cast<net::io_context&>(
        net::query(call->exchange->executor(), net::execution::context));
    h2->Unary(ioc, call->route->service, call->route->grpc_method, std::move(call->metadata),
              call->deadline, request,
              [this, call](const grpc::Status& status, const std::string& response) {
                FinishUnary(call, status, response);
                upstream_calls_.fetch_sub(1);
              });
    return;
  }
  grpc::GenericStub* stub = upstreams_->Stub(call->route->service);
  if (stub == nullptr) {
    return SendError(call, 503, grpc::StatusCode::UNAVAILABLE,
                     absl::StrCat("no upstream configured for ", call->route->service));
  }
  MakeContext(*call);
  if (!Track(&*call->context, /*stream=*/false)) {
    return SendShuttingDown(call);
  }
  call->request = ToByteBuffer(request);
  upstream_calls_.fetch_add(1);
  // The answer is made and written on the completion thread that read the upstream's response,
  // not posted to the connection's I/O thread: that hand-off cost a wake-up and a context switch
  // per request. The connection is idle meanwhile; the Call and its Exchange pass from thread to
  // thread through gRPC's completion queue.
  upstreams_->AsyncUnary(stub, &*call->context, call->route->grpc_method, call->request,
                         &call->response, [this, call](const grpc::Status& status) {
                           Untrack(&*call->context);
                           FinishUnary(call, status,
                                       status.ok() ? FromByteBuffer(call->response) : "");
                           // After the answer: once the count is zero, no gRPC thread touches an
                           // io_context any more (see WaitIdle).
                           upstream_calls_.fetch_sub(1);
                         });
}

void Edge::FinishUnary(const std::shared_ptr<Call>& call, const grpc::Status& status,
                       const std::string& bytes) {
  const Route& route = *call->route;
  if (!status.ok()) {
    if (status.error_code() == grpc::StatusCode::CANCELLED && calls_cancelled_) {
      // Cancelled by the shutdown (CancelUpstreamCalls), not by the client.
      return SendShuttingDown(call);
    }
    if (IsServerSide(status.error_code())) {
      route_states_[route.id].upstream_errors->Increment();
    }
    return SendGrpcError(call, status);
  }
  HttpRequest& req = call->exchange->request();

  if (route.redirect) {
    std::string location = Transcoder::Location(route, bytes);
    if (HttpPayload page; location.empty() && Transcoder::Page(route, bytes, &page)) {
      // Never kept: the page stands in front of a redirect that must not be served without it.
      return SendPage(call, 200, std::move(page), "");
    }
    if (location.empty()) {
      return SendError(call, 500, grpc::StatusCode::INTERNAL,
                       "the upstream answered the redirect without a location");
    }
    HttpResponse res{static_cast<http::status>(route.redirect->status_code), 11};
    // A CDN cannot tell the service of the redirects it answers: a route that counts them keeps
    // them to the edge's cache (and the browser's).
    int max_age = route.redirect->cache_max_age_seconds;
    // The answer may bound it (a link that expires in 2 s, or one whose every redirect counts).
    if (int32_t bound = 0; route.redirect->max_age_field_number > 0 &&
                           FindInt32(bytes, route.redirect->max_age_field_number, &bound)) {
      max_age = std::min(max_age, bound);
    }
    std::string cache_control =
        max_age > 0 && route.is_public
            ? absl::StrCat(route.redirect->cached_hits_method.empty() ? "public" : "private",
                           ", max-age=", max_age)
            : "no-store";
    res.set(http::field::location, location);
    res.set(http::field::cache_control, cache_control);
    if (!call->cache_key.empty() && max_age > 0) {
      auto cached = std::make_shared<CachedResponse>();
      cached->status = route.redirect->status_code;
      cached->route_id = route.id;
      cached->headers.emplace_back("Location", location);
      cached->headers.emplace_back("Cache-Control", cache_control);
      cached->head = PrebuiltHead(cached->status, cached->headers);
      cached->request = std::move(call->cached_request);
      absl::Duration ttl = std::min(absl::Seconds(max_age), options_.cache_ttl_cap);
      cache_.Put(call->cache_key, std::move(cached), absl::Now() + ttl, call->cache_generation);
    }
    return Send(call, std::move(res));
  }

  absl::StatusOr<HttpPayload> payload = transcoder_.Response(route, bytes);
  if (!payload.ok()) {
    return SendError(call, 500, grpc::StatusCode::INTERNAL, payload.status().message());
  }
  HttpResponse res{http::status::ok, 11};
  res.set(http::field::content_type, payload->content_type);
  if (req.method() == http::verb::get) {
    std::string etag = StrongEtag(payload->body);
    res.set(http::field::etag, etag);
    // A route that says so may be kept by any cache: the CDN keys /v1/* by Authorization too, so
    // it serves a caller's answer to that caller only.
    res.set(http::field::cache_control,
            route.cache_max_age_seconds > 0
                ? absl::StrCat("public, max-age=", route.cache_max_age_seconds)
                : (route.is_public ? "public, no-cache" : "private, no-cache"));
    if (auto inm = View(req[http::field::if_none_match]); !inm.empty() && IfNoneMatch(inm, etag)) {
      res.result(http::status::not_modified);
      res.erase(http::field::content_type);
      return Send(call, std::move(res));
    }
  } else {
    res.set(http::field::cache_control, "no-store");
  }
  res.body() = std::move(payload->body);
  Send(call, std::move(res));
}

void Edge::DropChangedRedirects(absl::string_view message) {
  api::v1::RedirectChanges changes;
  if (!changes.ParseFromArray(message.data(), static_cast<int>(message.size()))) {
    // Something else on the channel, or a newer format: whatever changed is unknown.
    KURT_LOG(kWarn, "unreadable redirect change; dropping every cached redirect",
             {"bytes", message.size()});
    DropCachedRedirects();
    return;
  }
  auto routes = cached_redirect_routes_.find(changes.method());
  if (routes == cached_redirect_routes_.end()) {
    return;
  }
  for (int route_id : routes->second) {
    for (const std::string& request : changes.requests()) {
      if (cache_.Erase(CacheKey(route_id, request))) {
        metrics_.cache_drops_changed().Increment();
      }
    }
  }
}

void Edge::DropCachedRedirects() {
  cache_.Clear();
  metrics_.cache_clears().Increment();
}

bool Edge::ServeFromCache(const std::shared_ptr<Call>& call, const std::string& key) {
  absl::Time now = call->start;
  std::shared_ptr<const CachedResponse> hit = cache_.Get(key, now);
  if (hit == nullptr) {
    return false;
  }
  metrics_.cache_hits().Increment();
  call->stats = hit->route_id >= 0 ? route_states_[hit->route_id].stats : unmatched_stats_;
  if (hit->route_id < 0 || route_states_[hit->route_id].cached_hits < 0) {
    SendCached(call, *hit);
    return true;
  }
  if (!options_.hold_cached_redirects) {
    ReportCachedHit(*call, *hit);
    SendCached(call, *hit);
    return true;
  }
  // Held: the answer goes out once the service has the hit (or the service is failing:
  // HitReporter), written by the thread that learns it (the reporter's; the connection waits,
  // idle), as a unary call's answer is. Counted as an upstream call, so that WaitIdle waits for
  // it (the reporter's thread touches the io_context).
  upstream_calls_.fetch_add(1);
  ReportCachedHit(*call, *hit, [this, call, hit](bool /*reported*/) {
    SendCached(call, *hit);
    upstream_calls_.fetch_sub(1);
  });
  return true;
}

void Edge::SendCached(const std::shared_ptr<Call>& call, const CachedResponse& hit) {
  if (!hit.head.empty() && call->exchange->request().version() == 11) {
    // The entry's head as made once, and the fields AddCommonHeaders would add.
    std::array<std::pair<absl::string_view, absl::string_view>, 4> fields;
    size_t n = 0;
    fields[n++] = {"x-request-id", call->request_id};
    if (!call->origin.empty() && OriginAllowed(call->origin)) {
      fields[n++] = {"Access-Control-Allow-Origin", call->origin};
      fields[n++] = {"Access-Control-Expose-Headers", kCorsExposeHeaders};
      fields[n++] = {"Vary", "Origin"};
    }
    Record(*call, hit.status);
    call->exchange->RespondPrebuilt(hit.head, absl::MakeConstSpan(fields.data(), n), hit.body);
    return;
  }
  HttpResponse res{static_cast<http::status>(hit.status), 11};
  for (const auto& [name, value] : hit.headers) {
    res.set(name, value);
  }
  res.body() = hit.body;
  Send(call, std::move(res));
}

bool Edge::ClickIdIsRequestId(const Call& call) const {
  // The request id when this edge made it, or when a trusted proxy gave it (a proxy sends the
  // same request again, with its id, to another edge when this one died before answering);
  // never one a client chose, or a client could have its clicks counted as one.
  return View(call.exchange->request()["x-request-id"]).empty() ||
         options_.trusted_proxies.Contains(call.exchange->peer_address());
}

std::string Edge::ClickId(const Call& call) const {
  return ClickIdIsRequestId(call) ? call.request_id : log::NewRequestId();
}

void Edge::ReportCachedHit(const Call& call, const CachedResponse& hit, HitReporter::Done done) {
  HttpRequest& req = call.exchange->request();
  std::string joined;
  const std::string client_ip =
      ClientIp(call.exchange->peer_address(), ForwardedFor(req, &joined), options_.trusted_proxies);
  std::string fresh_click_id;
  if (!ClickIdIsRequestId(call)) {
    fresh_click_id = log::NewRequestId();
  }
  // Encoded in a buffer the thread keeps (no allocation once it has grown), which the reporter
  // copies into its batch.
  thread_local std::string encoded;
  encoded.clear();
  AppendCachedHitStart(hit.request, call.start, &encoded);
  ForEachForwarded(req, call.request_id, client_ip,
                   fresh_click_id.empty() ? absl::string_view(call.request_id) : fresh_click_id,
                   [](absl::string_view key, absl::string_view value) {
                     AppendCachedHitMetadata(key, value, &encoded);
                   });
  hit_reporter_->Add(route_states_[hit.route_id].cached_hits, encoded, std::move(done));
  if (encoded.capacity() > 4096) {
    std::string().swap(encoded);  // a hit with huge headers does not keep its buffer
  }
}

void Edge::Builtin(const std::shared_ptr<Call>& call, absl::string_view path) {
  HttpRequest& req = call->exchange->request();
  RouteStats* stats = path == "/healthz"   ? healthz_stats_
                      : path == "/readyz"  ? readyz_stats_
                      : path == "/metrics" ? metrics_stats_
                                           : openapi_stats_;
  call->stats = stats;
  if (req.method() != http::verb::get && req.method() != http::verb::head) {
    HttpResponse res{http::status::method_not_allowed, 11};
    res.set(http::field::allow, "GET, HEAD");
    res.set(http::field::content_type, "application/json");
    res.body() = transcoder_.ErrorBody(grpc::StatusCode::UNIMPLEMENTED,
                                       absl::StrCat("only GET is allowed on ", path), "");
    return Send(call, std::move(res));
  }
  HttpResponse res{http::status::ok, 11};
  res.set(http::field::cache_control, "no-store");
  if (path == "/healthz") {
    res.set(http::field::content_type, "text/plain");
    res.body() = "ok\n";
    return Send(call, std::move(res));
  }
  if (path == "/metrics") {
    res.set(http::field::content_type, "text/plain; version=0.0.4");
    res.body() = registry_->Render();
    return Send(call, std::move(res));
  }
  if (path == "/v1/openapi.json") {
    res.set(http::field::etag, openapi_etag_);
    res.set(http::field::cache_control, "public, max-age=300");
    if (auto inm = View(req[http::field::if_none_match]);
        !inm.empty() && IfNoneMatch(inm, openapi_etag_)) {
      res.result(http::status::not_modified);
      return Send(call, std::move(res));
    }
    res.set(http::field::content_type, "application/json");
    res.body() = openapi_;
    return Send(call, std::move(res));
  }
  // /readyz: the edge itself, so that a service that is down takes down its own routes only (they
  // answer 503) and never every edge pod. Nothing is called per request; what the upstreams'
  // health checks found is in /metrics and, in detail, on the admin port.
  res.set(http::field::content_type, "text/plain");
  if (draining_) {
    res.result(http::status::service_unavailable);
    res.body() = "draining\n";
  } else {
    res.body() = "ready\n";
  }
  Send(call, std::move(res));
}

void Edge::Preflight(const std::shared_ptr<Call>& call, absl::string_view path) {
  call->stats = preflight_stats_;
  HttpRequest& req = call->exchange->request();
  bool builtin =
      path == "/healthz" || path == "/readyz" || path == "/metrics" || path == "/v1/openapi.json";
  std::string allowed = builtin ? "GET, HEAD" : routes_->router().AllowedMethods(path);
  if (allowed.empty()) {
    return SendError(call, 404, grpc::StatusCode::NOT_FOUND, absl::StrCat("no route for ", path));
  }
  absl::string_view requested = View(req[http::field::access_control_request_method]);
  if (requested.empty()) {  // a plain OPTIONS
    HttpResponse res{http::status::no_content, 11};
    res.set(http::field::allow, absl::StrCat(allowed, ", OPTIONS"));
    return Send(call, std::move(res));
  }
  if (call->origin.empty() || !OriginAllowed(call->origin)) {
    return SendError(call, 403, grpc::StatusCode::PERMISSION_DENIED,
                     absl::StrCat("origin \"", call->origin, "\" is not allowed"));
  }
  HttpResponse res{http::status::no_content, 11};
  res.set(http::field::access_control_allow_methods, allowed);
  res.set(http::field::access_control_allow_headers, std::string(kCorsAllowHeaders));
  res.set(http::field::access_control_max_age, cors_max_age_);
  Send(call, std::move(res));
}

}  // namespace kurt::edge
