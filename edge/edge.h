// The edge's request pipeline, as the HttpServer's handler: operations routes, CORS, the
// response cache, routing, the auth seam, transcoding, the upstream gRPC call (unary, or a
// server stream served as Server-Sent Events / chunked raw content) and the HTTP answer.
//
// Created in main after its dependencies, which it does not own and which outlive it. Handle
// runs on the I/O threads; a unary call is answered on the I/O thread that made it (the h2
// transport, H2Upstreams) or on the completion thread that got its response (gRPC's channels);
// the other completions (streams, the authorizer's, held cached redirects) are posted
// back to the connection's thread.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "edge/api_descriptors.h"
#include "edge/auth.h"
#include "edge/edge_metrics.h"
#include "edge/hit_reporter.h"
#include "edge/http_server.h"
#include "edge/http_util.h"
#include "edge/response_cache.h"
#include "edge/route_table.h"
#include "edge/transcoder.h"
#include "edge/upstream.h"
#include "edge/upstream_health.h"
#include "platform/core/metrics.h"

namespace kurt::edge {

struct EdgeOptions {
  // Origins allowed by CORS ("*": any).
  std::vector<std::string> cors_origins = {"http://localhost:5173"};
  absl::Duration cors_max_age = absl::Minutes(10);
  // The proxies whose X-Forwarded-For entries are believed (ClientIp, http_util.h); none: the
  // client is the peer.
  TrustedProxies trusted_proxies;
  // Upper bound of any deadline a request asks for.
  absl::Duration max_timeout = absl::Seconds(60);
  // The in-memory cache of public redirects: entries (0: off), bytes, and the longest time an
  // entry is kept whatever its max-age. Keyed by the route and the upstream request the edge
  // makes of the HTTP request, so that what the route ignores (a query string of tracking
  // parameters, or of junk) neither makes new entries nor misses the hot ones.
  size_t cache_entries = 100000;
  size_t cache_bytes = size_t{64} << 20;
  absl::Duration cache_ttl_cap = absl::Seconds(60);
  // How the redirects answered from the cache are reported to their service
  // ((kurt.api.v1.http_redirect).cached_hits_method).
  HitReporterOptions cached_hits;
  // A redirect answered from the cache goes out only once its service has heard of it, or has
  // failed to for longer than cached_hits.hold_timeout (the hit is held: HitReporter), so that a
  // killed edge loses no click of a redirect it answered. Off: it goes out at once and is
  // reported within cached_hits.interval.
  bool hold_cached_redirects = true;
  // SSE: headers go out after this long without a first event; then a comment this often.
  absl::Duration sse_first_flush = absl::Milliseconds(500);
  absl::Duration sse_keepalive = absl::Seconds(15);
  // How often, and with what deadline, each upstream's health is checked (UpstreamHealth).
  UpstreamHealthOptions upstream_health;
  // The OpenAPI document's servers[0].url ("" for none).
  std::string public_url;
  // Sent as x-kurt-edge-secret with the reports of cached redirects, which only the edge may make
  // (even empty: with neither a secret nor mTLS configured, the header alone names the edge).
  std::string edge_secret;
};

class Edge : public HttpHandler {
 public:
  Edge(EdgeOptions options, const ApiDescriptors* api, const RouteTable* routes,
       Upstreams* upstreams, Authorizer* authorizer, metrics::Registry* registry);
  ~Edge() override;

  void Handle(std::shared_ptr<Exchange> exchange) override;
  HttpResponse ServerError(unsigned http_status, int grpc_code, absl::string_view message,
                           const HttpRequest* request) override;

  // /readyz answers 503 from now on (graceful shutdown).
  void SetDraining() { draining_ = true; }
  bool draining() const { return draining_; }
  // What the last health checks found of each upstream, one line each (the admin port's /readyz).
  UpstreamHealth& upstream_health() { return *health_; }
  // Waits (up to `max`) until no upstream call is in flight.
  void WaitIdle(absl::Duration max);
  // Cancels the server streams in flight (shutdown: they have no deadline of their own).
  void CancelStreams();
  // Cancels every upstream call still in flight, and refuses (503) any call that would start
  // (shutdown, once the listeners are closed and the grace period is over): their clients get a
  // 503 now rather than a closed connection later, and once WaitIdle returns no completion thread
  // writes to a connection, whose I/O service goes with the HttpServer. Only once the I/O threads
  // have stopped: the h2 transport's calls are ended from here (H2Upstreams::Shutdown).
  void CancelUpstreamCalls();
  // Sends the pending reports of cached redirects now, and returns when that is done (tests;
  // destruction sends what is left).
  void FlushCachedHits() { hit_reporter_->Flush(); }

  // A kurt.api.v1.RedirectChanges (mesh::kRedirectChangesChannel): drops the cached answers of
  // those requests; a message it cannot read drops every cached redirect.
  void DropChangedRedirects(absl::string_view message);
  // Drops every cached redirect: changes may have been missed (the subscription was lost).
  void DropCachedRedirects();

  ResponseCache& cache() { return cache_; }
  const std::string& openapi() const { return openapi_; }

  struct Call;
  struct StreamCall;

 private:
  struct RouteState {
    RouteStats* stats = nullptr;
    metrics::Counter* upstream_errors = nullptr;
    int cached_hits = -1;  // the route's HitReporter method, if it reports cached answers
    int upstream = -1;     // the route's service in health_
  };

  void Builtin(const std::shared_ptr<Call>& call, absl::string_view path);
  void Preflight(const std::shared_ptr<Call>& call, absl::string_view path);
  bool ServeFromCache(const std::shared_ptr<Call>& call, const std::string& key);
  void Authorized(const std::shared_ptr<Call>& call, const AuthDecision& decision);
  void StartUnary(const std::shared_ptr<Call>& call, const std::string& request);
  void FinishUnary(const std::shared_ptr<Call>& call, const grpc::Status& status,
                   const std::string& bytes);
  // The gRPC ClientContext of a call through gRPC's channels, of its metadata and deadline.
  static void MakeContext(Call& call);
  void StartStream(const std::shared_ptr<Call>& call, const std::string& request);

  // Fills the headers every response carries (request id, CORS) and sends it.
  void Send(const std::shared_ptr<Call>& call, HttpResponse response);
  void SendError(const std::shared_ptr<Call>& call, unsigned http_status, int grpc_code,
                 absl::string_view message, absl::string_view details = "");
  void SendGrpcError(const std::shared_ptr<Call>& call, const grpc::Status& status);
  // A redirect route's page (HttpRedirect.body_field): never cached, with the route's CSP, and
  // Retry-After from a RetryInfo in `details` (an error's).
  void SendPage(const std::shared_ptr<Call>& call, unsigned http_status, HttpPayload page,
                absl::string_view details);
  // An upstream's status as the client may see it: the code always; for server-side failures
  // (UNAVAILABLE, INTERNAL, UNKNOWN, DATA_LOSS) a message of the edge's own naming the service and
  // the request id instead of the upstream's (which may name hosts, databases or addresses: it
  // goes to the log).
  grpc::Status PublicStatus(const Call& call, const grpc::Status& status) const;
  // 503 for a route whose service is not serving (UpstreamHealth), without calling it.
  void SendUpstreamNotServing(const std::shared_ptr<Call>& call);
  // 503 for a call cancelled, or not started, because the edge is shutting down.
  void SendShuttingDown(const std::shared_ptr<Call>& call);
  void AddCommonHeaders(const Call& call, HttpResponse* response) const;
  // Reports a cached redirect; with `done`, the hit is held (HitReporter::Add).
  // The id of a redirect's click (mesh::kClickIdMetadata), the same in every call that may
  // carry it again.
  std::string ClickId(const Call& call) const;
  // Whether that id is the call's request id (else each call makes a new one).
  bool ClickIdIsRequestId(const Call& call) const;
  void ReportCachedHit(const Call& call, const CachedResponse& hit,
                       HitReporter::Done done = nullptr);
  // Sends a cached answer.
  void SendCached(const std::shared_ptr<Call>& call, const CachedResponse& hit);
  bool OriginAllowed(absl::string_view origin) const;
  void Record(const Call& call, unsigned http_status);

  friend struct StreamCall;

  const EdgeOptions options_;
  const ApiDescriptors* api_;
  const RouteTable* routes_;
  Upstreams* upstreams_;
  Authorizer* authorizer_;
  metrics::Registry* registry_;
  Transcoder transcoder_;
  EdgeMetrics metrics_;
  ResponseCache cache_;
  std::unique_ptr<HitSender> hit_sender_;
  std::unique_ptr<HitReporter> hit_reporter_;
  std::unique_ptr<UpstreamHealth> health_;
  std::vector<RouteState> route_states_;
  // Routes whose redirects are cached, by their method's full name (RedirectChanges.method).
  absl::flat_hash_map<std::string, std::vector<int>> cached_redirect_routes_;
  RouteStats* unmatched_stats_;
  RouteStats* healthz_stats_;
  RouteStats* readyz_stats_;
  RouteStats* metrics_stats_;
  RouteStats* openapi_stats_;
  RouteStats* preflight_stats_;
  RouteStats* server_error_stats_;
  std::string openapi_;
  std::string openapi_etag_;
  std::string cors_allow_headers_;
  std::string cors_max_age_;
  std::atomic<bool> draining_{false};
  // The upstream calls in flight, so that shutdown can cancel them; false once it has.
  bool Track(grpc::ClientContext* context, bool stream);
  void Untrack(grpc::ClientContext* context);
  std::mutex calls_mu_;
  // Context -> whether the call is a server stream.
  absl::flat_hash_map<grpc::ClientContext*, bool> calls_;  // guarded by calls_mu_
  std::atomic<bool> calls_cancelled_{false};               // set under calls_mu_
  std::atomic<int> upstream_calls_{0};
};

}  // namespace kurt::edge
