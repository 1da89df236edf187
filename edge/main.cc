// kurt-edge: the public HTTP/JSON API, translated to gRPC calls to Kurt's services.
#include <algorithm>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "edge/accounts_authorizer.h"
#include "edge/edge_server.h"
#include "edge/h2_upstream.h"
#include "platform/core/config.h"
#include "platform/core/log.h"
#include "platform/grpc/tls.h"
#include "platform/redis/redis.h"
#include "platform/redis/subscriber.h"
#include "services/common/mesh.h"

ABSL_FLAG(int, edge_port, kurt::mesh::kEdgeHttpPort,
          "HTTP port of the public API (and /metrics, /healthz, /readyz)");
ABSL_FLAG(int, admin_port, 0,
          "HTTP port of the edge's admin server, never to be made public: /readyz with what the "
          "health checks found of each upstream, /metrics, /healthz (0: none)");
ABSL_FLAG(absl::Duration, upstream_health_interval, absl::Seconds(1),
          "How often each upstream's health is checked (kurt_edge_upstream_serving; the routes of "
          "a service found not serving answer 503 at once)");
ABSL_FLAG(int, io_threads, 0, "HTTP I/O threads (0: one per core)");
ABSL_FLAG(std::vector<std::string>, upstream, {},
          "Service=host:port[,host:port...] per upstream service, e.g. "
          "kurt.links.v1.LinksService=127.0.0.1:7101 (repeatable; several addresses or a DNS "
          "name are balanced round-robin). Kurt's services default to their local ports.");
ABSL_FLAG(std::string, upstream_host, "127.0.0.1",
          "Host of Kurt's services when --upstream does not name them");
ABSL_FLAG(int, upstream_channels, 1, "Connections (channels) per upstream service");
ABSL_FLAG(int, upstream_threads, 1, "Threads completing unary upstream calls");
ABSL_FLAG(absl::Duration, upstream_connect_timeout, absl::Seconds(1),
          "How long connecting to an upstream may take before calls fail with 503");
ABSL_FLAG(std::string, upstream_transport, "h2",
          "How unary upstream calls go: h2 (an HTTP/2 client on the I/O threads, no thread hop; "
          "mutual TLS too with --tls_cert/--tls_key/--tls_ca) or grpc (gRPC's channels). Server "
          "streams, health and API-key checks always use gRPC's channels");
ABSL_FLAG(std::vector<std::string>, extra_descriptor_sets, {},
          "Files with serialized FileDescriptorSets of more services to serve (tests)");
ABSL_FLAG(std::vector<std::string>, cors_origins, {"http://localhost:5173"},
          "Origins allowed by CORS (comma-separated; * for any)");
ABSL_FLAG(std::vector<std::string>, trusted_proxies, {},
          "CIDR ranges of the proxies in front of the edge (e.g. the ingress' pod network); the "
          "client address is the right-most X-Forwarded-For entry that is not one of them "
          "(empty: none trusted, the client is the peer address)");
ABSL_FLAG(int, max_connections, 10000,
          "Client connections open at most; one more is answered 503 and closed (keep it under "
          "the file descriptor limit, with room for the upstream connections)");
ABSL_FLAG(int64_t, max_body_bytes, 1 << 20, "Largest request body (else 413)");
ABSL_FLAG(int64_t, max_header_bytes, 16 << 10, "Largest request header (else 431)");
ABSL_FLAG(int, max_header_count, 64, "Most header fields in a request (else 431)");
ABSL_FLAG(absl::Duration, read_timeout, absl::Seconds(10),
          "Time to receive one request's header and body (else 408 and close)");
ABSL_FLAG(absl::Duration, idle_timeout, kurt::edge::kDefaultIdleTimeout,
          "Keep-alive idle time; keep it longer than the keep-alive of the proxy in front "
          "(ingress-nginx: 60 s), so that the proxy closes idle connections first");
ABSL_FLAG(absl::Duration, write_timeout, absl::Seconds(30), "Time for each write to a client");
ABSL_FLAG(absl::Duration, default_timeout, absl::Seconds(10),
          "Deadline of unary upstream calls when the request has no grpc-timeout or "
          "x-request-timeout header");
ABSL_FLAG(std::vector<std::string>, route_timeouts, {},
          "Per-RPC default deadlines: Package.Service.Method=duration,...");
ABSL_FLAG(absl::Duration, max_timeout, absl::Seconds(60), "Upper bound of a requested deadline");
ABSL_FLAG(int64_t, cache_entries, 100000,
          "Entries of the in-memory cache of public redirects (0: off)");
ABSL_FLAG(int64_t, cache_bytes, int64_t{64} << 20,
          "Bytes the in-memory cache of public redirects may hold, keys included (entries are "
          "also bounded by --cache_entries)");
ABSL_FLAG(absl::Duration, cache_ttl_cap, absl::Seconds(60),
          "Longest time a cached redirect is kept, whatever its max-age");
ABSL_FLAG(std::string, redirect_changes_channel, kurt::mesh::kRedirectChangesChannel,
          "Redis pub/sub channel on which services announce redirects that changed; the edge "
          "drops them from its cache at once (empty: only expiry drops them)");
ABSL_FLAG(absl::Duration, cached_hits_interval, absl::Milliseconds(500),
          "How often redirects answered from the cache are reported to their service "
          "(kurt-links counts them as clicks); at least 10ms");
ABSL_FLAG(int64_t, cached_hits_max_pending, 200000,
          "Reports of cached redirects kept while their service is unreachable; more are dropped");
ABSL_FLAG(absl::Duration, drain_delay, absl::ZeroDuration(),
          "On SIGTERM, how long to go on serving with /readyz answering 503 before no longer "
          "taking connections: a balancer's health-check period times its fall count (0 where "
          "the platform removes the endpoint first, e.g. a Kubernetes preStop pause)");
ABSL_FLAG(bool, hold_cached_redirects, true,
          "A redirect answered from the cache goes out only once kurt-links has its click (a "
          "killed edge loses none), or after --cached_hits_hold_timeout; false: at once, its "
          "click reported within --cached_hits_interval");
ABSL_FLAG(int64_t, cached_hits_senders, 2,
          "Calls reporting cached redirects in flight at once (held redirects each wait for "
          "theirs): two keep one batch on its way while the next fills; more split the hits "
          "into smaller batches");
ABSL_FLAG(absl::Duration, cached_hits_hold_timeout, absl::Seconds(1),
          "How long a held cached redirect waits for its click to be recorded before it goes out "
          "anyway (its click is then reported later, and later redirects are not held until a "
          "report succeeds)");
ABSL_FLAG(std::string, cached_hits_spool, "",
          "File that keeps the hits of cached redirects that went out before their service had "
          "them (past the hold, or at shutdown), fdatasync'ed first and sent again by the next "
          "start, so that a killed edge loses none (\"\": in memory only)");
ABSL_FLAG(bool, dev_trust_account_header, false,
          "DEVELOPMENT ONLY: take the account from the client's X-Kurt-Account-Id header (until "
          "API keys exist); never in production");
ABSL_FLAG(std::string, public_url, "", "The API's public base URL, for the OpenAPI document");
ABSL_FLAG(std::string, accounts_address, "",
          "host:port of kurt-accounts: every non-public route needs Authorization: Bearer <API "
          "key>, and rate limits apply. Required unless --dev_mode (then empty: no "
          "authentication) or --dev_trust_account_header");
ABSL_FLAG(double, rate_per_address, 50,
          "Requests per second per client address (token bucket refill; 0: no limit); needs "
          "--accounts_address");
ABSL_FLAG(double, burst_per_address, 100, "Token bucket size per client address");
ABSL_FLAG(double, rate_per_account, 20, "Requests per second per account (0: no limit)");
ABSL_FLAG(double, burst_per_account, 40, "Token bucket size per account");
ABSL_FLAG(int, rate_limit_threads, 2, "Threads that run the rate limits' Redis calls");
ABSL_FLAG(int64_t, rate_limit_max_queue, 10000,
          "Rate-limit checks waiting for those threads at most; more requests are answered 503 "
          "(counted in kurt_edge_rate_limit_refusals_total{reason=\"overloaded\"})");
ABSL_FLAG(absl::Duration, auth_cache_ttl, absl::Seconds(5),
          "How long the edge remembers an API key's account (part of the revocation bound)");

namespace {

absl::Status CheckAuthorizerFlags() {
  return kurt::edge::CheckAuthorizerConfigured(!absl::GetFlag(FLAGS_accounts_address).empty(),
                                               absl::GetFlag(FLAGS_dev_trust_account_header),
                                               absl::GetFlag(FLAGS_dev_mode));
}

[[maybe_unused]] const bool kAuthorizerChecked =
    kurt::platform::RegisterStartupCheck(&CheckAuthorizerFlags);

// absl keeps only the last of a repeated flag; --upstream may be given many times, so its
// occurrences are joined into one before parsing.
std::vector<std::string> MergeRepeated(int argc, char** argv, const std::string& name) {
  std::vector<std::string> args;
  std::vector<std::string> values;
  std::string eq = absl::StrCat("--", name, "=");
  std::string bare = absl::StrCat("--", name);
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind(eq, 0) == 0) {
      values.push_back(a.substr(eq.size()));
    } else if (a == bare && i + 1 < argc) {
      values.push_back(argv[++i]);
    } else {
      args.push_back(a);
    }
  }
  if (!values.empty()) {
    args.push_back(absl::StrCat(eq, absl::StrJoin(values, ",")));
  }
  return args;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args = MergeRepeated(argc, argv, "upstream");
  std::vector<char*> arg_ptrs;
  arg_ptrs.reserve(args.size());
  for (std::string& a : args) {
    arg_ptrs.push_back(a.data());
  }
  kurt::platform::InitProcess(
      static_cast<int>(arg_ptrs.size()), arg_ptrs.data(), "edge",
      "kurt-edge: the public HTTP/JSON API in front of Kurt's gRPC services");

  // Abseil's mutex deadlock detection (on in Debian's build) costs every gRPC call a graph
  // update; the edge takes no lock in an order that could deadlock.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  kurt::edge::EdgeServerConfig config;
  config.http.host = absl::GetFlag(FLAGS_listen_host);
  config.http.port = absl::GetFlag(FLAGS_edge_port);
  int threads = absl::GetFlag(FLAGS_io_threads);
  config.http.threads =
      threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  config.http.max_body_bytes = static_cast<size_t>(absl::GetFlag(FLAGS_max_body_bytes));
  config.http.max_header_bytes = static_cast<size_t>(absl::GetFlag(FLAGS_max_header_bytes));
  config.http.max_header_count = absl::GetFlag(FLAGS_max_header_count);
  config.http.max_connections = std::max(1, absl::GetFlag(FLAGS_max_connections));
  config.http.read_timeout = absl::GetFlag(FLAGS_read_timeout);
  config.http.idle_timeout = absl::GetFlag(FLAGS_idle_timeout);
  config.http.write_timeout = absl::GetFlag(FLAGS_write_timeout);

  config.admin_port = absl::GetFlag(FLAGS_admin_port) > 0 ? absl::GetFlag(FLAGS_admin_port) : -1;
  config.edge.upstream_health.interval = absl::GetFlag(FLAGS_upstream_health_interval);
  config.edge.cors_origins = absl::GetFlag(FLAGS_cors_origins);
  absl::StatusOr<kurt::edge::TrustedProxies> trusted_proxies =
      kurt::edge::TrustedProxies::Parse(absl::GetFlag(FLAGS_trusted_proxies));
  if (!trusted_proxies.ok()) {
    KURT_LOG(kError, "bad --trusted_proxies", {"error", trusted_proxies.status().ToString()});
    return 2;
  }
  config.edge.trusted_proxies = *std::move(trusted_proxies);
  config.edge.max_timeout = absl::GetFlag(FLAGS_max_timeout);
  config.edge.cache_entries =
      static_cast<size_t>(std::max<int64_t>(0, absl::GetFlag(FLAGS_cache_entries)));
  config.edge.cache_bytes =
      static_cast<size_t>(std::max<int64_t>(0, absl::GetFlag(FLAGS_cache_bytes)));
  config.edge.cache_ttl_cap = absl::GetFlag(FLAGS_cache_ttl_cap);
  config.edge.cached_hits.interval = absl::GetFlag(FLAGS_cached_hits_interval);
  config.edge.cached_hits.max_pending =
      static_cast<size_t>(std::max<int64_t>(1, absl::GetFlag(FLAGS_cached_hits_max_pending)));
  config.drain_delay = absl::GetFlag(FLAGS_drain_delay);
  config.edge.hold_cached_redirects = absl::GetFlag(FLAGS_hold_cached_redirects);
  config.edge.cached_hits.senders =
      static_cast<size_t>(std::clamp<int64_t>(absl::GetFlag(FLAGS_cached_hits_senders), 1, 64));
  config.edge.cached_hits.hold_timeout = absl::GetFlag(FLAGS_cached_hits_hold_timeout);
  config.edge.cached_hits.spool_path = absl::GetFlag(FLAGS_cached_hits_spool);
  config.edge.public_url = absl::GetFlag(FLAGS_public_url);

  config.routes.default_timeout = absl::GetFlag(FLAGS_default_timeout);
  for (const std::string& entry : absl::GetFlag(FLAGS_route_timeouts)) {
    std::pair<std::string, std::string> kv = absl::StrSplit(entry, absl::MaxSplits('=', 1));
    absl::Duration d;
    if (kv.second.empty() || !absl::ParseDuration(kv.second, &d)) {
      KURT_LOG(kError, "bad --route_timeouts entry (want Package.Service.Method=10s)",
               {"entry", entry});
      return 2;
    }
    config.routes.route_timeouts[kv.first] = d;
  }
  config.upstream.channels_per_service = absl::GetFlag(FLAGS_upstream_channels);
  config.upstream.completion_threads = absl::GetFlag(FLAGS_upstream_threads);
  config.upstream.connect_timeout = absl::GetFlag(FLAGS_upstream_connect_timeout);
  // Mutual TLS to every service when --tls_cert/--tls_key/--tls_ca are set (platform/grpc/tls.h),
  // on gRPC's channels and on the h2 transport's connections alike.
  absl::StatusOr<std::optional<kurt::platform::TlsConfig>> tls =
      kurt::platform::LoadTls(kurt::platform::TlsFiles::FromFlags());
  if (tls.ok() && *tls) {
    // What OpenSSL makes of the files (a key that is not the certificate's...), before serving.
    if (absl::Status usable = kurt::edge::H2ClientTlsContext(**tls).status(); !usable.ok()) {
      tls = usable;
    }
  }
  if (!tls.ok()) {
    KURT_LOG(kError, "bad TLS settings", {"error", tls.status().ToString()});
    return 2;
  }
  const std::shared_ptr<grpc::ChannelCredentials> credentials =
      kurt::platform::ChannelCredentials(*tls);
  config.upstream.tls = *tls;
  const std::string transport = absl::GetFlag(FLAGS_upstream_transport);
  if (transport == "grpc") {
    config.upstream.transport = kurt::edge::UpstreamOptions::Transport::kGrpc;
  } else if (transport != "h2") {
    KURT_LOG(kError, "bad --upstream_transport (want h2 or grpc)", {"value", transport});
    return 2;
  }
  config.upstreams = absl::GetFlag(FLAGS_upstream);
  config.default_upstream_host = absl::GetFlag(FLAGS_upstream_host);
  config.extra_descriptor_sets = absl::GetFlag(FLAGS_extra_descriptor_sets);
  config.dev_trust_account_header = absl::GetFlag(FLAGS_dev_trust_account_header);
  config.edge_secret = absl::GetFlag(FLAGS_edge_secret);

  // Redis for the rate limits and for hearing of changed redirects, once for both.
  std::unique_ptr<kurt::redis::RedisClient> redis;
  auto use_redis = [&redis]() -> absl::Status {
    if (redis == nullptr) {
      absl::StatusOr<std::unique_ptr<kurt::redis::RedisClient>> client =
          kurt::redis::RedisClient::FromFlags();
      if (!client.ok()) {
        return client.status();
      }
      redis = *std::move(client);
    }
    return absl::OkStatus();
  };
  std::unique_ptr<kurt::edge::RateLimiter> limiter;
  std::unique_ptr<kurt::edge::KeyAuthenticator> authenticator;
  std::unique_ptr<kurt::edge::Authorizer> authorizer;
  if (!absl::GetFlag(FLAGS_accounts_address).empty()) {
    kurt::edge::GrpcKeyAuthenticatorOptions auth_options;
    auth_options.address = absl::GetFlag(FLAGS_accounts_address);
    auth_options.edge_secret = absl::GetFlag(FLAGS_edge_secret);
    auth_options.credentials = credentials;
    authenticator = kurt::edge::MakeGrpcKeyAuthenticator(auth_options);
    kurt::edge::AccountsAuthorizerOptions authorizer_options;
    authorizer_options.edge_secret = absl::GetFlag(FLAGS_edge_secret);
    authorizer_options.cache_ttl = absl::GetFlag(FLAGS_auth_cache_ttl);
    authorizer_options.per_address = {absl::GetFlag(FLAGS_rate_per_address),
                                      absl::GetFlag(FLAGS_burst_per_address)};
    authorizer_options.per_account = {absl::GetFlag(FLAGS_rate_per_account),
                                      absl::GetFlag(FLAGS_burst_per_account)};
    if (authorizer_options.per_address.per_second > 0 ||
        authorizer_options.per_account.per_second > 0) {
      if (absl::Status s = use_redis(); !s.ok()) {
        KURT_LOG(kError, "cannot use Redis", {"error", s.ToString()});
        return 2;
      }
      limiter = std::make_unique<kurt::edge::RedisRateLimiter>(
          redis.get(), absl::GetFlag(FLAGS_rate_limit_threads), "kurt:rl:",
          static_cast<size_t>(std::max<int64_t>(1, absl::GetFlag(FLAGS_rate_limit_max_queue))));
      authorizer_options.limiter = limiter.get();
    }
    authorizer =
        std::make_unique<kurt::edge::AccountsAuthorizer>(authorizer_options, authenticator.get());
  }

  const std::string changes_channel = absl::GetFlag(FLAGS_redirect_changes_channel);
  const bool hear_changes = config.edge.cache_entries > 0 && !changes_channel.empty();
  if (hear_changes) {
    if (absl::Status s = use_redis(); !s.ok()) {
      KURT_LOG(kError, "cannot use Redis", {"error", s.ToString()});
      return 2;
    }
  }
  absl::StatusOr<std::unique_ptr<kurt::edge::EdgeServer>> server =
      kurt::edge::EdgeServer::Start(std::move(config), authorizer.get());
  if (!server.ok()) {
    KURT_LOG(kError, "cannot start", {"error", server.status().ToString()});
    return 1;
  }
  // Changed redirects leave the cache at once; after the subscription was lost (Redis down, a
  // failover), the whole cache goes, since what changed meanwhile is unknown.
  std::unique_ptr<kurt::redis::Subscriber> changes;
  if (hear_changes) {
    kurt::edge::Edge* edge = &(*server)->edge();
    kurt::redis::SubscriberOptions subscriber_options;
    subscriber_options.channel = changes_channel;
    changes = std::make_unique<kurt::redis::Subscriber>(
        redis.get(), subscriber_options,
        [edge](absl::string_view message) { edge->DropChangedRedirects(message); },
        [edge] { edge->DropCachedRedirects(); });
  }
  int sig = kurt::platform::WaitForShutdownSignal();
  KURT_LOG(kInfo, "shutting down", {"signal", sig});
  (*server)->Shutdown(absl::GetFlag(FLAGS_shutdown_grace));
  return 0;
}
