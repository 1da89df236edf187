// End to end over real HTTP: metadata, CORS, ETags, operations routes and OpenAPI.
#include "tests/edge/edge_fixture.h"

namespace kurt::edge::testing {
namespace {

TEST_F(EdgeTest, AllowListedHeadersBecomeMetadata) {
  Reply r = Get("/v1/headers",
                {{"Authorization", "Bearer k1"},
                 {"X-Request-Id", "req-123"},
                 {"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
                 {"User-Agent", "Agent/1.0"},
                 {"Referer", "https://ref.example/"},
                 {"X-Kurt-Account-Id", "forged"},
                 {"X-Forwarded-For", "203.0.113.9"},
                 {"Cookie", "secret=1"}});
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.Header("x-request-id"), "req-123");
  EXPECT_CONTAINS(r.body, R"("x-request-id":"req-123")");
  EXPECT_CONTAINS(r.body,
                  R"("traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")");
  EXPECT_CONTAINS(r.body, R"("x-kurt-user-agent":"Agent/1.0")");
  EXPECT_CONTAINS(r.body, R"("x-kurt-referer":"https://ref.example/")");
  EXPECT_CONTAINS(r.body, R"("x-kurt-client-ip":"127.0.0.1")");  // X-Forwarded-For not trusted
  EXPECT_EQ(r.body.find("forged"), std::string::npos);
  EXPECT_EQ(r.body.find("secret"), std::string::npos);
  // The API key stays at the edge on a route that is not public.
  EXPECT_EQ(r.body.find("authorization"), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find("k1"), std::string::npos) << r.body;
}

TEST_F(EdgeTest, AuthorizationGoesOnlyToPublicRoutes) {
  // A public route's service checks credentials itself (CreateAccount's admin token).
  Reply pub = Get("/v1/public/headers", {{"Authorization", "Bearer admin-token"}});
  ASSERT_EQ(pub.status, 200u) << pub.body;
  EXPECT_CONTAINS(pub.body, R"("authorization":"Bearer admin-token")");
  Reply other = Get("/v1/headers", {{"Authorization", "Bearer admin-token"}});
  ASSERT_EQ(other.status, 200u) << other.body;
  EXPECT_EQ(other.body.find("admin-token"), std::string::npos) << other.body;
}

TEST_F(EdgeTest, RequestIdIsGeneratedWhenAbsent) {
  Reply r = Get("/v1/headers");
  std::string id = r.Header("x-request-id");
  EXPECT_EQ(id.size(), 32u);
  EXPECT_CONTAINS(r.body, absl::StrCat(R"("x-request-id":")", id, "\""));
  EXPECT_EQ(Get("/v2/nothing").Header("x-request-id").size(), 32u);
}

// Behind trusted proxies (the test's loopback peer is one), the client is the right-most
// X-Forwarded-For address that is not a trusted proxy: a forged first entry is not believed, by
// the upstream call nor by the rate limits that key on the same address.
TEST(EdgeForwardedForTest, ClientIpIsTheRightMostUntrustedForwardedForEntry) {
  TestUpstream upstream;
  EdgeServerConfig config = TestConfig(upstream.port(), 0);
  absl::StatusOr<TrustedProxies> trusted = TrustedProxies::Parse({"127.0.0.0/8", "10.0.0.0/8"});
  ASSERT_TRUE(trusted.ok()) << trusted.status();
  config.edge.trusted_proxies = *trusted;
  absl::StatusOr<std::unique_ptr<EdgeServer>> server = EdgeServer::Start(config);
  ASSERT_TRUE(server.ok()) << server.status();
  Reply r = Fetch((*server)->port(), "GET", "/v1/headers",
                  {{"X-Forwarded-For", "198.51.100.1, 203.0.113.9, 10.0.0.1"}});
  EXPECT_CONTAINS(r.body, R"("x-kurt-client-ip":"203.0.113.9")");
  // A proxy that adds its entry as a line of its own (HAProxy): the lines are one list, and a
  // forged line the client sent stays on the left.
  r = Fetch((*server)->port(), "GET", "/v1/headers",
            {{"X-Forwarded-For", "198.51.100.1"}, {"X-Forwarded-For", "203.0.113.10"}});
  EXPECT_CONTAINS(r.body, R"("x-kurt-client-ip":"203.0.113.10")");
}

// A redirect's click id goes with its Resolve call and its cached hits: the request id when the
// edge made it or a trusted proxy gave it, never one a client chose. A Resolve that fails
// UNAVAILABLE (a links replica gone mid-call) is sent once more with the same id, so the visitor
// gets the 302 and analytics counts one click.
TEST(EdgeClickIdTest, ARedirectsClickIdIsStableAcrossItsCallsAndTrustedOnlyFromProxies) {
  TestUpstream upstream;
  EdgeServerConfig config = TestConfig(upstream.port(), 0);
  absl::StatusOr<TrustedProxies> trusted = TrustedProxies::Parse({"10.0.0.0/8"});
  ASSERT_TRUE(trusted.ok()) << trusted.status();
  config.edge.trusted_proxies = *trusted;  // not the test's loopback peer
  absl::StatusOr<std::unique_ptr<EdgeServer>> server = EdgeServer::Start(config);
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->port();
  FakeLinksService& links = upstream.links();

  upstream.links().fail_resolves = 1;
  Reply r = Fetch(port, "GET", "/retriedcode");
  EXPECT_EQ(r.status, 302u) << r.body;
  std::vector<std::string> ids = links.ResolveClickIds();
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(ids[0], r.Header("x-request-id"));
  EXPECT_EQ(ids[1], ids[0]);

  // From an untrusted peer, the client's X-Request-ID is its request id but not its click id.
  r = Fetch(port, "GET", "/chosencode", {{"X-Request-ID", "chosen-by-client"}});
  EXPECT_EQ(r.status, 302u);
  ids = links.ResolveClickIds();
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_NE(ids[2], "chosen-by-client");
  EXPECT_EQ(ids[2].size(), 32u);

  // A cached redirect's hit carries a click id of its own.
  r = Fetch(port, "GET", "/chosencode");
  EXPECT_EQ(r.status, 302u);
  (*server)->edge().FlushCachedHits();
  std::vector<kurt::api::v1::CachedRedirects::Hit> hits = links.CachedHits();
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].metadata().at("x-kurt-click-id"), r.Header("x-request-id"));

  // Two failures in a row: one retry only, and the visitor hears 503.
  upstream.links().fail_resolves = 2;
  r = Fetch(port, "GET", "/failedcode");
  EXPECT_EQ(r.status, 503u) << r.body;
  EXPECT_EQ(links.ResolveClickIds().size(), 5u);
}

TEST(EdgeClickIdTest, ATrustedProxysRequestIdIsTheClickId) {
  TestUpstream upstream;
  EdgeServerConfig config = TestConfig(upstream.port(), 0);
  absl::StatusOr<TrustedProxies> trusted = TrustedProxies::Parse({"127.0.0.0/8"});
  ASSERT_TRUE(trusted.ok()) << trusted.status();
  config.edge.trusted_proxies = *trusted;
  absl::StatusOr<std::unique_ptr<EdgeServer>> server = EdgeServer::Start(config);
  ASSERT_TRUE(server.ok()) << server.status();
  // The proxy sends the request again (to this or another edge) with the same id.
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(Fetch((*server)->port(), "GET", "/proxiedcode", {{"X-Request-ID", "proxy-1"}}).status,
              302u);
  }
  EXPECT_EQ(upstream.links().ResolveClickIds(), (std::vector<std::string>{"proxy-1"}))
      << "the second came from the edge's cache";
  (*server)->edge().FlushCachedHits();
  std::vector<kurt::api::v1::CachedRedirects::Hit> hits = upstream.links().CachedHits();
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].metadata().at("x-kurt-click-id"), "proxy-1");
}

// Services end each connection after a maximum age (GOAWAY), so that clients spread over new
// replicas. A call that meets the GOAWAY on its way must go on the next connection, not fail.
TEST(EdgeUpstreamTest, CallsCrossingAnUpstreamsConnectionEndingDoNotFail) {
  TestUpstream upstream(/*max_connection_age_ms=*/100);
  EdgeServerConfig config = TestConfig(upstream.port(), 0);
  config.edge.cache_entries = 0;
  absl::StatusOr<std::unique_ptr<EdgeServer>> server = EdgeServer::Start(config);
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->port();
  std::atomic<int> failed{0};
  std::vector<std::thread> clients;
  clients.reserve(8);
  for (int c = 0; c < 8; ++c) {
    clients.emplace_back([&, c] {
      HttpConnection conn(port);
      const absl::Time until = absl::Now() + absl::Seconds(3);
      for (int i = 0; absl::Now() < until; ++i) {
        Reply r = conn.Fetch("GET", absl::StrCat("/agecode", c, "x", i));
        if (r.status != 302) {
          ++failed;
        }
      }
    });
  }
  for (std::thread& t : clients) {
    t.join();
  }
  EXPECT_EQ(failed, 0);
}

TEST(EdgeDevAuthTest, DevAccountHeaderIsTrustedOnlyWhenEnabled) {
  TestUpstream upstream;
  EdgeServerConfig config = TestConfig(upstream.port(), 0);
  config.dev_trust_account_header = true;
  absl::StatusOr<std::unique_ptr<EdgeServer>> server = EdgeServer::Start(config);
  ASSERT_TRUE(server.ok()) << server.status();
  Reply r = Fetch((*server)->port(), "GET", "/v1/headers", {{"X-Kurt-Account-Id", "acct-1"}});
  EXPECT_CONTAINS(r.body, R"("x-kurt-account-id":"acct-1")");
  EXPECT_EQ(r.body.find("x-kurt-edge-secret"), std::string::npos) << r.body;
}

TEST(EdgeDevAuthTest, DevAccountHeaderGoesWithTheEdgeSecret) {
  TestUpstream upstream;
  EdgeServerConfig config = TestConfig(upstream.port(), 0);
  config.dev_trust_account_header = true;
  config.edge_secret = "dev-edge-secret";
  absl::StatusOr<std::unique_ptr<EdgeServer>> server = EdgeServer::Start(config);
  ASSERT_TRUE(server.ok()) << server.status();
  Reply r = Fetch((*server)->port(), "GET", "/v1/headers", {{"X-Kurt-Account-Id", "acct-1"}});
  EXPECT_CONTAINS(r.body, R"("x-kurt-account-id":"acct-1")");
  EXPECT_CONTAINS(r.body, R"("x-kurt-edge-secret":"dev-edge-secret")");
}

TEST_F(EdgeTest, CorsPreflightForAllowedOrigin) {
  Reply r = Fetch(port(), "OPTIONS", "/v1/links/abc",
                  {{"Origin", "http://localhost:5173"},
                   {"Access-Control-Request-Method", "PATCH"},
                   {"Access-Control-Request-Headers", "authorization, content-type"}});
  EXPECT_EQ(r.status, 204u);
  EXPECT_EQ(r.Header("access-control-allow-origin"), "http://localhost:5173");
  EXPECT_EQ(r.Header("access-control-allow-methods"), "DELETE, GET, PATCH");
  EXPECT_CONTAINS(r.Header("access-control-allow-headers"), "authorization");
  EXPECT_CONTAINS(r.Header("access-control-allow-headers"), "content-type");
  EXPECT_EQ(r.Header("access-control-max-age"), "600");
  EXPECT_EQ(r.Header("vary"), "Origin");
}

TEST_F(EdgeTest, CorsRefusesOtherOrigins) {
  Reply r = Fetch(port(), "OPTIONS", "/v1/links/abc",
                  {{"Origin", "https://evil.example"}, {"Access-Control-Request-Method", "GET"}});
  EXPECT_EQ(r.status, 403u);
  EXPECT_EQ(r.Header("access-control-allow-origin"), "");
  Reply get = Get("/v1/things/x", {{"Origin", "https://evil.example"}});
  EXPECT_EQ(get.status, 200u);
  EXPECT_EQ(get.Header("access-control-allow-origin"), "");
}

TEST_F(EdgeTest, CorsHeadersOnResponses) {
  Reply r = Get("/v1/things/x", {{"Origin", "http://localhost:5173"}});
  EXPECT_EQ(r.Header("access-control-allow-origin"), "http://localhost:5173");
  EXPECT_CONTAINS(r.Header("access-control-expose-headers"), "x-request-id");
  // On errors and cached redirects too.
  EXPECT_EQ(
      Get("/v2/x", {{"Origin", "http://localhost:5173"}}).Header("access-control-allow-origin"),
      "http://localhost:5173");
  Get("/t/cors");
  EXPECT_EQ(
      Get("/t/cors", {{"Origin", "http://localhost:5173"}}).Header("access-control-allow-origin"),
      "http://localhost:5173");
}

TEST_F(EdgeTest, PlainOptionsListsMethods) {
  Reply r = Fetch(port(), "OPTIONS", "/v1/things/x");
  EXPECT_EQ(r.status, 204u);
  EXPECT_EQ(r.Header("allow"), "GET, PATCH, OPTIONS");
  EXPECT_EQ(Fetch(port(), "OPTIONS", "/v2/none").status, 404u);
}

TEST_F(EdgeTest, EtagAndNotModified) {
  Reply r = Get("/v1/public/things/e1");
  ASSERT_EQ(r.status, 200u);
  std::string etag = r.Header("etag");
  ASSERT_FALSE(etag.empty());
  EXPECT_EQ(r.Header("cache-control"), "public, no-cache");
  Reply again = Get("/v1/public/things/e1", {{"If-None-Match", etag}});
  EXPECT_EQ(again.status, 304u);
  EXPECT_EQ(again.body, "");
  EXPECT_EQ(again.Header("etag"), etag);
  EXPECT_EQ(Get("/v1/public/things/e1", {{"If-None-Match", "\"other\""}}).status, 200u);
  // Authenticated GETs are private to the client.
  EXPECT_EQ(Get("/v1/things/e1").Header("cache-control"), "private, no-cache");
}

TEST_F(EdgeTest, HealthzAndReadyz) {
  EXPECT_EQ(Get("/healthz").status, 200u);
  {
    // HEAD: the GET's headers (Content-Length 3) without its body.
    HttpConnection c(port());
    ASSERT_TRUE(c.Send("HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    std::string raw = c.ReadToEnd();
    EXPECT_CONTAINS(raw, "Content-Length: 3\r\n");
    EXPECT_EQ(raw.substr(raw.size() - 4), "\r\n\r\n");
  }
  // The fixture's DownService has no server: the edge is ready all the same (its routes answer
  // 503), and says nothing of its upstreams to the public.
  Reply r = Get("/readyz");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body, "ready\n");
}

TEST(EdgeReadyTest, ReadyWhenEveryUpstreamServes) {
  TestUpstream upstream;
  absl::StatusOr<std::unique_ptr<EdgeServer>> server =
      EdgeServer::Start(TestConfig(upstream.port(), 0));
  ASSERT_TRUE(server.ok()) << server.status();
  Reply r = Fetch((*server)->port(), "GET", "/readyz");
  EXPECT_EQ(r.status, 200u) << r.body;
  (*server)->Shutdown(absl::Seconds(1));
}

TEST(EdgeShutdownTest, ShutdownEndsOpenStreamsQuickly) {
  TestUpstream upstream;
  absl::StatusOr<std::unique_ptr<EdgeServer>> server =
      EdgeServer::Start(TestConfig(upstream.port(), 0));
  ASSERT_TRUE(server.ok()) << server.status();
  HttpConnection c((*server)->port());
  ASSERT_TRUE(c.Send("GET /v1/events:watch?count=-1&interval=0.05s HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto start = std::chrono::steady_clock::now();
  (*server)->Shutdown(absl::Seconds(10));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  std::string raw = c.ReadToEnd();
  EXPECT_CONTAINS(raw, "id: e1");
  EXPECT_CONTAINS(raw, "event: error");  // the stream says it ended; the client may resume
}

TEST(EdgeShutdownTest, CallsStillInFlightAfterTheGraceAre503AndShutdownReturns) {
  TestUpstream upstream;
  absl::StatusOr<std::unique_ptr<EdgeServer>> server =
      EdgeServer::Start(TestConfig(upstream.port(), 0));
  ASSERT_TRUE(server.ok()) << server.status();
  HttpConnection c((*server)->port());
  // An upstream call that outlasts the grace period (the upstream answers after 20 s).
  ASSERT_TRUE(c.Send("GET /v1/sleep?duration=20s HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto start = std::chrono::steady_clock::now();
  (*server)->Shutdown(absl::Milliseconds(200));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  // The client was answered before the server went, not left to a connection that closes.
  std::string raw = c.ReadToEnd();
  EXPECT_CONTAINS(raw, "HTTP/1.1 503");
  EXPECT_CONTAINS(raw, "shutting down");
  server->reset();
}

TEST_F(EdgeTest, MetricsAreExposed) {
  Get("/v1/things/m");
  Reply r = Get("/metrics");
  ASSERT_EQ(r.status, 200u);
  EXPECT_CONTAINS(r.Header("content-type"), "text/plain");
  EXPECT_CONTAINS(r.body,
                  "kurt_edge_requests_total{route=\"kurt.testing.v1.EchoService.GetThing\","
                  "status_class=\"2xx\"}");
  EXPECT_CONTAINS(r.body,
                  "kurt_edge_request_latency_seconds_bucket{route=\"kurt.testing.v1.EchoService."
                  "GetThing\"");
  EXPECT_CONTAINS(r.body, "kurt_edge_cache_hits_total");
  EXPECT_CONTAINS(r.body, "kurt_edge_upstream_errors_total");
}

TEST_F(EdgeTest, OpenApiDocument) {
  Reply r = Get("/v1/openapi.json");
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(r.Header("content-type"), "application/json");
  EXPECT_CONTAINS(r.body, R"("openapi": "3.0.3")");
  EXPECT_CONTAINS(r.body, R"("/v1/links/{code}")");
  EXPECT_CONTAINS(r.body, R"("/v1/things/{id}:cancel")");
  EXPECT_EQ(Get("/v1/openapi.json", {{"If-None-Match", r.Header("etag")}}).status, 304u);
}

}  // namespace
}  // namespace kurt::edge::testing
