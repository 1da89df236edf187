// End to end over real HTTP: what the edge does under faults and abuse: readiness of its own,
// upstreams that stop serving, junk query strings against the redirect cache, too many
// connections, no file descriptor left, bytes that are not UTF-8.
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <random>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "platform/core/text.h"
#include "tests/edge/edge_fixture.h"

namespace kurt::edge::testing {
namespace {

// The value of a metric line `name` (with its labels) on a /metrics page; -1 when absent.
double Metric(const std::string& page, const std::string& name) {
  size_t at = page.find("\n" + name + " ");
  if (at == std::string::npos) {
    return -1;
  }
  size_t start = at + name.size() + 2;
  double v = -1;
  (void)absl::SimpleAtod(page.substr(start, page.find('\n', start) - start), &v);
  return v;
}

// Reports down must not take redirects down: the edge stays ready, the routes of the service that
// is not serving answer 503 at once (no call), and every other route, the redirects among them,
// goes on. The metrics and the admin port tell which upstream is down; the public does not learn.
TEST(EdgeUpstreamHealthTest, AServiceNotServingTakesDownItsRoutesOnly) {
  TestUpstream echo;   // stands in for a service that goes down (reports)
  TestUpstream links;  // the redirects
  EdgeServerConfig config = TestConfig(echo.port(), 0);
  config.upstreams = {absl::StrCat("kurt.testing.v1.EchoService=127.0.0.1:", echo.port()),
                      absl::StrCat("kurt.links.v1.LinksService=127.0.0.1:", links.port())};
  config.edge.cache_entries = 0;                          // every redirect goes to links
  config.edge.upstream_health.interval = absl::Hours(1);  // the test runs the checks itself
  config.admin_port = 0;
  absl::StatusOr<std::unique_ptr<EdgeServer>> server = EdgeServer::Start(config);
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->port();
  ASSERT_EQ(Fetch(port, "GET", "/t/abc").status, 302u);

  echo.SetServing(false);
  (*server)->edge().upstream_health().CheckNow();
  const int calls = echo.echo().go_calls;
  Reply r = Fetch(port, "GET", "/t/abc");
  EXPECT_EQ(r.status, 503u) << r.body;
  EXPECT_EQ(r.Header("retry-after"), "1");
  EXPECT_EQ(r.Header("content-type"), "application/json");
  EXPECT_CONTAINS(r.body, R"("code":14)");
  EXPECT_CONTAINS(r.body, "kurt.testing.v1.EchoService is not serving right now");
  EXPECT_CONTAINS(r.body, r.Header("x-request-id"));
  EXPECT_EQ(echo.echo().go_calls, calls);  // refused at the edge

  // The redirects and the edge's readiness are untouched.
  Reply redirect = Fetch(port, "GET", "/somecode");
  EXPECT_EQ(redirect.status, 302u) << redirect.body;
  EXPECT_EQ(redirect.Header("location"), "https://links.example/somecode");
  Reply ready = Fetch(port, "GET", "/readyz");
  EXPECT_EQ(ready.status, 200u);
  EXPECT_EQ(ready.body, "ready\n");

  std::string metrics = Fetch(port, "GET", "/metrics").body;
  EXPECT_EQ(Metric(metrics, R"(kurt_edge_upstream_serving{service="kurt.testing.v1.EchoService"})"),
            0)
      << metrics;
  EXPECT_EQ(Metric(metrics, R"(kurt_edge_upstream_serving{service="kurt.links.v1.LinksService"})"),
            1)
      << metrics;
  // Details for operators, on the admin port only.
  Reply admin = Fetch((*server)->admin_port(), "GET", "/readyz");
  EXPECT_EQ(admin.status, 200u);
  EXPECT_CONTAINS(admin.body, "kurt.testing.v1.EchoService");
  EXPECT_CONTAINS(admin.body, "NOT SERVING");
  EXPECT_CONTAINS(admin.body, absl::StrCat("127.0.0.1:", echo.port()));

  // Serving again: once the channel's own watch of the replica's health has heard it (client-side
  // health checking), a check finds it serving.
  echo.SetServing(true);
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  do {
    (*server)->edge().upstream_health().CheckNow();
  } while (Fetch(port, "GET", "/t/abc").status != 302u && absl::Now() < deadline);
  EXPECT_EQ(Fetch(port, "GET", "/t/abc").status, 302u);
}

// Of a service's replicas, one not serving (starting, or going away) gets no calls, and the
// service is not taken for down while another serves: its routes go on.
TEST(EdgeUpstreamHealthTest, AReplicaNotServingGetsNoCallsWhileAnotherServes) {
  TestUpstream starting;
  TestUpstream serving;
  EdgeServerConfig config = TestConfig(serving.port(), 0);
  config.upstreams = {absl::StrCat("kurt.testing.v1.EchoService=127.0.0.1:", starting.port(),
                                   ",127.0.0.1:", serving.port())};
  config.edge.cache_entries = 0;
  config.edge.upstream_health.interval = absl::Hours(1);
  starting.SetServing(false);
  absl::StatusOr<std::unique_ptr<EdgeServer>> server = EdgeServer::Start(config);
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->port();
  // Both connections up and the starting one's health heard: every call goes to the other.
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (serving.echo().go_calls < 3 && absl::Now() < deadline) {
    Fetch(port, "GET", "/t/warmup");
    absl::SleepFor(absl::Milliseconds(20));
  }
  for (int i = 0; i < 10; ++i) {
    (*server)->edge().upstream_health().CheckNow();
    EXPECT_EQ(Fetch(port, "GET", "/t/abc").status, 302u);
  }
  EXPECT_EQ(starting.echo().go_calls, 0);
  EXPECT_GE(serving.echo().go_calls, 13);
}

// Once a service is found down, the edge checks it again often: its routes serve again soon after
// it is back, not at the next regular check (an hour here).
TEST(EdgeUpstreamHealthTest, RoutesServeAgainSoonAfterTheServiceIsBack) {
  TestUpstream echo;
  EdgeServerConfig config = TestConfig(echo.port(), 0);
  config.edge.upstream_health.interval = absl::Hours(1);
  config.edge.upstream_health.recheck_interval = absl::Milliseconds(100);
  config.edge.cache_entries = 0;  // every request goes to the upstream
  absl::StatusOr<std::unique_ptr<EdgeServer>> server = EdgeServer::Start(config);
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->port();
  ASSERT_EQ(Fetch(port, "GET", "/t/abc").status, 302u);

  echo.SetServing(false);
  (*server)->edge().upstream_health().CheckNow();
  ASSERT_EQ(Fetch(port, "GET", "/t/abc").status, 503u);
  echo.SetServing(true);
  const absl::Time back = absl::Now();
  unsigned status = 0;
  while ((status = Fetch(port, "GET", "/t/abc").status) == 503u &&
         absl::Now() - back < absl::Seconds(5)) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(status, 302u);
  EXPECT_LT(absl::Now() - back, absl::Seconds(1));
}

// Whether a TCP connection to the port is accepted (by the kernel, at least).
bool Connects(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool connected = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return connected;
}

// SIGTERM behind a balancer: for drain_delay the edge still serves while its /readyz answers
// 503 (the balancer's checks take it out meanwhile), and only then stops taking connections.
TEST(EdgeDrainTest, ItServesThroughTheDrainDelayWithReadinessDown) {
  TestUpstream upstream;
  EdgeServerConfig config = TestConfig(upstream.port(), 0);
  config.drain_delay = absl::Seconds(1);
  absl::StatusOr<std::unique_ptr<EdgeServer>> server = EdgeServer::Start(config);
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->port();
  ASSERT_EQ(Fetch(port, "GET", "/readyz").status, 200u);

  std::thread stopping([&] { (*server)->Shutdown(absl::Seconds(5)); });
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(Fetch(port, "GET", "/readyz").status, 503u);
  Reply served = Fetch(port, "GET", "/t/abc");  // a new connection, still taken
  EXPECT_EQ(served.status, 302u) << served.error;
  stopping.join();
  // Refused, not accepted by the kernel into a backlog that no thread serves any more.
  EXPECT_FALSE(Connects(port)) << "still taking connections";
}

// A service with no server at all: its routes answer 503 with a message of the edge's own, which
// names the service and the request id but no address; the others are served.
TEST_F(EdgeTest, AnUpstreamWithNoServerIs503WithoutItsAddress) {
  server_->edge().upstream_health().CheckNow();
  Reply r = Get("/v1/down");
  EXPECT_EQ(r.status, 503u) << r.body;
  EXPECT_CONTAINS(r.body, "kurt.testing.v1.DownService");
  EXPECT_CONTAINS(r.body, r.Header("x-request-id"));
  EXPECT_EQ(r.body.find("127.0.0.1"), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find("onnect"), std::string::npos) << r.body;  // no "Connection refused"
  EXPECT_EQ(Get("/t/abc").status, 302u);
  EXPECT_EQ(Get("/readyz").status, 200u);
}

// The upstream's own text of a server-side failure stays in the edge's log.
TEST_F(EdgeTest, ServerSideFailuresDoNotEchoTheUpstreamsText) {
  Reply r = Post("/v1/fail", R"({"code":13,"message":"pq: relation \"links\" does not exist"})");
  EXPECT_EQ(r.status, 500u);
  EXPECT_EQ(r.body.find("relation"), std::string::npos) << r.body;
  EXPECT_CONTAINS(r.body, r.Header("x-request-id"));
  r = Post("/v1/fail", R"({"code":14,"message":"redis 10.0.3.7:6379: Connection refused"})");
  EXPECT_EQ(r.status, 503u);
  EXPECT_EQ(r.body.find("10.0.3.7"), std::string::npos) << r.body;
  // What the caller got wrong is still said.
  r = Post("/v1/fail", R"({"code":3,"message":"alias: too long"})");
  EXPECT_CONTAINS(r.body, "alias: too long");
}

// Bytes that are not UTF-8 in a request come back in the 400's message; the body stays valid
// UTF-8 JSON.
TEST_F(EdgeTest, ErrorBodiesAreValidUtf8) {
  Reply r = Post("/v1/things", std::string("{\"\xff\xfe\": 1, \"id\": \"\xc3\x28\"}"));
  EXPECT_EQ(r.status, 400u);
  EXPECT_TRUE(platform::IsValidUtf8(r.body)) << r.body;
  EXPECT_CONTAINS(r.body, "\\ufffd");
  r = Get("/v1/things/x?count=%ff%fe");
  EXPECT_EQ(r.status, 400u);
  EXPECT_TRUE(platform::IsValidUtf8(r.body)) << r.body;
}

// GET /<code>?<random 4 KB>: the query string is not part of what the redirect depends on, so the
// flood makes no cache entries, the cache stays within its bytes, and the hot link is answered
// from the cache all along.
TEST(EdgeCacheTest, JunkQueryStringsNeitherGrowTheCacheNorEvictHotLinks) {
  TestUpstream upstream;
  EdgeServerConfig config = TestConfig(upstream.port(), 0);
  config.edge.cache_entries = 1000;
  config.edge.cache_bytes = 256 << 10;
  absl::StatusOr<std::unique_ptr<EdgeServer>> server = EdgeServer::Start(config);
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->port();
  ResponseCache& cache = (*server)->edge().cache();
  ASSERT_EQ(Fetch(port, "GET", "/t/hot").status, 302u);
  ASSERT_EQ(cache.size(), 1u);
  const size_t hot_bytes = cache.bytes();
  const int calls = upstream.echo().go_calls;

  std::mt19937_64 random(42);
  HttpConnection c(port);
  for (int i = 0; i < 2000; ++i) {
    std::string junk = absl::StrCat("x", i, "=");
    while (junk.size() < 4096) {
      absl::StrAppend(&junk, absl::Hex(random()));
    }
    Reply r = c.Fetch("GET", absl::StrCat("/t/", i % 10 == 0 ? "hot" : "other", "?", junk));
    ASSERT_EQ(r.status, 302u) << r.body;
    if (i % 10 == 0) {
      ASSERT_EQ(r.Header("location"), "https://example.com/hot");
    }
  }
  // /t/hot and /t/other: two entries, whatever the query strings.
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_LE(cache.bytes(), 2 * hot_bytes + 64);
  EXPECT_EQ(upstream.echo().go_calls - calls, 1);  // only /t/other's first request
  ASSERT_EQ(Fetch(port, "GET", "/t/hot?utm_source=mail").status, 302u);
  EXPECT_EQ(upstream.echo().go_calls - calls, 1);
}

// A cached redirect goes out as bytes made once for the entry (no header map): it must say
// everything the first answer said, through the header map, and end the connection when asked.
TEST(EdgeCacheTest, ACachedRedirectSaysWhatTheFirstAnswerSaid) {
  TestUpstream upstream;
  absl::StatusOr<std::unique_ptr<EdgeServer>> server =
      EdgeServer::Start(TestConfig(upstream.port(), 0));
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->port();
  // Status line and header lines, names lower-cased, sorted; the request id's value left out.
  auto answer = [port](std::string* request_id) {
    HttpConnection c(port);
    EXPECT_TRUE(
        c.Send("GET /t/same HTTP/1.1\r\nHost: x\r\nOrigin: http://localhost:5173\r\n"
               "Connection: close\r\n\r\n"));
    std::string raw = c.ReadToEnd();  // the edge closes the connection after it
    std::vector<std::string> lines = absl::StrSplit(raw.substr(0, raw.find("\r\n\r\n")), "\r\n");
    for (size_t i = 1; i < lines.size(); ++i) {
      size_t colon = lines[i].find(':');
      std::string name = absl::AsciiStrToLower(lines[i].substr(0, colon));
      if (name == "x-request-id") {
        *request_id = lines[i].substr(colon + 2);
        lines[i] = name;
      } else {
        lines[i] = absl::StrCat(name, lines[i].substr(colon));
      }
    }
    std::sort(lines.begin() + 1, lines.end());
    return lines;
  };
  std::string first_id, cached_id;
  std::vector<std::string> first = answer(&first_id);
  const int calls = upstream.echo().go_calls;
  std::vector<std::string> cached = answer(&cached_id);
  EXPECT_EQ(upstream.echo().go_calls, calls);  // from the cache
  EXPECT_EQ(cached, first);
  EXPECT_EQ(first.front(), "HTTP/1.1 302 Found");
  EXPECT_THAT(cached, ::testing::Contains("location: https://example.com/same"));
  EXPECT_THAT(cached, ::testing::Contains("access-control-allow-origin: http://localhost:5173"));
  EXPECT_THAT(cached, ::testing::Contains("connection: close"));
  EXPECT_THAT(cached, ::testing::Contains("content-length: 0"));
  EXPECT_EQ(cached_id.size(), 32u);
  EXPECT_NE(cached_id, first_id);
}

// Past --max_connections a new connection is answered 503 and closed, and counted.
TEST(EdgeConnectionsTest, ConnectionsOverTheLimitAre503) {
  TestUpstream upstream;
  EdgeServerConfig config = TestConfig(upstream.port(), 0);
  config.http.max_connections = 2;
  absl::StatusOr<std::unique_ptr<EdgeServer>> server = EdgeServer::Start(config);
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->port();
  auto one = std::make_unique<HttpConnection>(port);
  HttpConnection two(port);
  ASSERT_EQ(one->Fetch("GET", "/healthz").status, 200u);
  ASSERT_EQ(two.Fetch("GET", "/healthz").status, 200u);
  Reply refused = Fetch(port, "GET", "/healthz");
  EXPECT_EQ(refused.status, 503u);
  EXPECT_EQ(refused.Header("retry-after"), "1");
  EXPECT_CONTAINS(refused.body, "too many connections to this server (at most 2)");
  EXPECT_EQ(Metric((*server)->registry().Render(), "kurt_edge_connections_refused_total"), 1);
  one.reset();
  Reply served;
  for (int i = 0; i < 50 && served.status != 200u; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    served = Fetch(port, "GET", "/healthz");
  }
  EXPECT_EQ(served.status, 200u);
}

// With no file descriptor left, accepting fails while the connection waits in the backlog: the
// acceptor backs off instead of spinning on it, counts it, and takes the connection once
// descriptors are free again.
TEST(EdgeConnectionsTest, OutOfFileDescriptorsTheAcceptorBacksOff) {
  TestUpstream upstream;
  EdgeServerConfig config = TestConfig(upstream.port(), 0);
  absl::StatusOr<std::unique_ptr<EdgeServer>> server = EdgeServer::Start(config);
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->port();
  ASSERT_EQ(Fetch(port, "GET", "/healthz").status, 200u);

  // The client's socket exists before the descriptors run out; connecting needs none more.
  int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(client, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  rlimit original;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &original), 0);
  rlimit low = original;
  low.rlim_cur = std::min<rlim_t>(original.rlim_cur, 4096);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  std::vector<int> hogs;
  for (;;) {
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      break;
    }
    hogs.push_back(fd);
  }
  ASSERT_FALSE(hogs.empty());
  ASSERT_EQ(connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  double errors = Metric((*server)->registry().Render(), "kurt_edge_accept_errors_total");
  for (int fd : hogs) {
    close(fd);
  }
  setrlimit(RLIMIT_NOFILE, &original);
  // Spinning would have failed thousands of times in 0.7 s; backing off from 10 ms, a handful.
  EXPECT_GE(errors, 1);
  EXPECT_LE(errors, 12);
  // Taken once descriptors are free (the next try comes within the longest backoff, 1 s).
  timeval tv{5, 0};
  setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  const std::string request = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  ASSERT_EQ(write(client, request.data(), request.size()), static_cast<ssize_t>(request.size()));
  std::string response;
  char buf[1024];
  ssize_t n;
  while ((n = read(client, buf, sizeof(buf))) > 0) {
    response.append(buf, static_cast<size_t>(n));
  }
  close(client);
  EXPECT_EQ(response.rfind("HTTP/1.1 200", 0), 0u) << response;
}

}  // namespace
}  // namespace kurt::edge::testing
