// End to end over real HTTP: every error the edge answers, and the limits it enforces.
#include <chrono>
#include <thread>

#include "tests/edge/edge_fixture.h"

namespace kurt::edge::testing {
namespace {

TEST_F(EdgeTest, UnknownRouteIs404) {
  Reply r = Get("/v2/nothing/here");
  EXPECT_EQ(r.status, 404u);
  EXPECT_EQ(r.Header("content-type"), "application/json");
  EXPECT_EQ(r.body, R"({"code":5,"message":"no route for GET /v2/nothing/here","details":[]})");
}

TEST_F(EdgeTest, WrongMethodIs405WithAllow) {
  Reply r = Fetch(port(), "PUT", "/v1/links/abc", {}, "{}");
  EXPECT_EQ(r.status, 405u);
  EXPECT_EQ(r.Header("allow"), "DELETE, GET, PATCH");
  EXPECT_CONTAINS(r.body, "\"code\":12");
  EXPECT_EQ(Fetch(port(), "DELETE", "/healthz").status, 405u);
}

TEST_F(EdgeTest, BadQueryValueIs400NamingTheParameter) {
  Reply r = Get("/v1/things/x?count=many");
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(r.body,
            R"({"code":3,"message":"query parameter \"count\": invalid value \"many\" for int32 )"
            R"(field count","details":[]})");
  EXPECT_CONTAINS(Get("/v1/things/x?inner.nope=1").body, R"(query parameter \"inner.nope\")");
  EXPECT_CONTAINS(Get("/v1/things/x?color=PURPLE").body, "color");
  EXPECT_CONTAINS(Get("/v1/things/x?when=yesterday").body, "when");
  EXPECT_EQ(Get("/v1/things/x?count=%zz").status, 400u);
}

TEST_F(EdgeTest, BadJsonIs400NamingTheField) {
  Reply r = Post("/v1/things", R"({"nope":1})");
  EXPECT_EQ(r.status, 400u);
  EXPECT_CONTAINS(r.body, "nope");
  r = Post("/v1/things", R"({"count":"abc"})");
  EXPECT_EQ(r.status, 400u);
  EXPECT_CONTAINS(r.body, "count");
  r = Post("/v1/things", R"({"id":)");
  EXPECT_EQ(r.status, 400u);
  EXPECT_CONTAINS(r.body, "invalid JSON body");
  r = Fetch(port(), "PATCH", "/v1/things/t", {{"Content-Type", "application/json"}},
            R"({"inner":{"values":["x"]}})");
  EXPECT_EQ(r.status, 400u);
  EXPECT_CONTAINS(r.body, "values");
}

TEST_F(EdgeTest, GrpcStatusesMapToHttpWithDetails) {
  struct Case {
    int grpc;
    unsigned http;
  } cases[] = {{3, 400},  {5, 404},  {6, 409},  {7, 403},  {16, 401}, {8, 429},  {9, 400},
               {10, 409}, {12, 501}, {13, 500}, {14, 503}, {4, 504},  {15, 500}, {2, 500}};
  for (const Case& c : cases) {
    Reply r = Post("/v1/fail", absl::StrCat(R"({"code":)", c.grpc, R"(,"message":"m"})"));
    EXPECT_EQ(r.status, c.http) << c.grpc;
    if (c.grpc == 13 || c.grpc == 14 || c.grpc == 15 || c.grpc == 2) {
      // Server-side failures: the edge's own message with the request id (the upstream's text
      // goes to the log).
      EXPECT_CONTAINS(r.body, absl::StrCat(R"({"code":)", c.grpc, R"(,"message":")"));
      EXPECT_CONTAINS(r.body, r.Header("x-request-id"));
      EXPECT_CONTAINS(r.body, "kurt.testing.v1.EchoService");
    } else {
      EXPECT_EQ(r.body, absl::StrCat(R"({"code":)", c.grpc, R"(,"message":"m","details":[]})"));
    }
  }
  Reply r = Post("/v1/fail", R"({"code":3,"message":"bad url","badField":"target_url"})");
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(r.body, R"({"code":3,"message":"bad url","details":[{"@type":)"
                    R"("type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":)"
                    R"("target_url","description":"is wrong"}]}]})");
}

TEST_F(EdgeTest, OversizedBodyIs413) {
  Reply r = Post("/v1/things", std::string(100 << 10, ' '));
  EXPECT_EQ(r.status, 413u);
  EXPECT_CONTAINS(r.body, "too large");
  // Chunked, without a Content-Length: cut off while reading.
  HttpConnection c(port());
  std::string chunk(40 << 10, ' ');
  std::string head =
      "POST /v1/things HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
      "Content-Type: application/json\r\n\r\n";
  std::string size = absl::StrCat(absl::Hex(chunk.size()), "\r\n");
  ASSERT_TRUE(c.Send(head + size + chunk + "\r\n" + size + chunk + "\r\n0\r\n\r\n"));
  EXPECT_EQ(c.Read().status, 413u);
}

TEST_F(EdgeTest, OversizedOrTooManyHeadersAre431) {
  Reply r = Get("/v1/things/x", {{"X-Big", std::string(9000, 'a')}});
  EXPECT_EQ(r.status, 431u);
  std::vector<std::pair<std::string, std::string>> many;
  many.reserve(40);
  for (int i = 0; i < 40; ++i) {
    many.emplace_back(absl::StrCat("X-H", i), "v");
  }
  r = Get("/v1/things/x", many);
  EXPECT_EQ(r.status, 431u);
  EXPECT_CONTAINS(r.body, "too many header fields");
}

TEST_F(EdgeTest, MalformedRequestIs400) {
  HttpConnection c(port());
  ASSERT_TRUE(c.Send("GET /x HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n"));
  EXPECT_EQ(c.Read().status, 400u);
}

TEST_F(EdgeTest, SlowClientIsCutOff) {
  HttpConnection c(port());
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(c.Send("GET /v1/things/x HTTP/1.1\r\nHost: x\r\n"));  // never finishes the header
  Reply r = c.Read();
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.status, 408u);
  EXPECT_LT(took, std::chrono::seconds(3));
  EXPECT_EQ(c.ReadToEnd(), "");  // and closed
}

// The read timeout counts from the next request's first byte, also after the connection sat idle
// for longer than the read timeout (the deadline then comes before the idle one would have).
TEST_F(EdgeTest, ASlowRequestAfterAnIdleWhileIsCutOffByTheReadTimeout) {
  HttpConnection c(port());
  ASSERT_EQ(c.Fetch("GET", "/healthz").status, 200u);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // read timeout 1 s, idle 5 s
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(c.Send("GET /v1/things/x HTTP/1.1\r\nHost: x\r\n"));  // never finishes the header
  Reply r = c.Read();
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.status, 408u);
  EXPECT_GT(took, std::chrono::milliseconds(900));
  EXPECT_LT(took, std::chrono::milliseconds(2500));
  EXPECT_EQ(c.ReadToEnd(), "");
}

TEST_F(EdgeTest, IdleKeepAliveConnectionIsClosed) {
  HttpConnection c(port());
  ASSERT_EQ(c.Fetch("GET", "/healthz").status, 200u);
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(c.ReadToEnd(), "");  // the 5 s idle timeout of the fixture closes it
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(8));
}

TEST_F(EdgeTest, UpstreamDownIs503Fast) {
  for (int i = 0; i < 3; ++i) {
    auto start = std::chrono::steady_clock::now();
    Reply r = Get("/v1/down");
    auto took = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(r.status, 503u) << r.body;
    EXPECT_CONTAINS(r.body, "\"code\":14");
    EXPECT_LT(took, std::chrono::milliseconds(1500)) << i;
  }
  EXPECT_CONTAINS(Get("/metrics").body,
                  "kurt_edge_upstream_errors_total{service=\"kurt.testing.v1.DownService\"}");
}

TEST_F(EdgeTest, DeadlineFromHeadersIs504) {
  auto start = std::chrono::steady_clock::now();
  Reply r = Get("/v1/sleep?duration=5s", {{"X-Request-Timeout", "200ms"}});
  EXPECT_EQ(r.status, 504u);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  r = Get("/v1/sleep?duration=5s", {{"grpc-timeout", "150m"}});
  EXPECT_EQ(r.status, 504u);
}

TEST_F(EdgeTest, DeadlinesReachTheUpstream) {
  Reply r = Get("/v1/sleep", {{"X-Request-Timeout", "3s"}});
  ASSERT_EQ(r.status, 200u) << r.body;
  int64_t ms = 0;
  std::string body = r.body;  // {"deadlineMs":"2999"}
  ASSERT_TRUE(absl::SimpleAtoi(body.substr(15, body.size() - 17), &ms)) << body;
  EXPECT_GT(ms, 2000);
  EXPECT_LE(ms, 3100);  // the wire format rounds the timeout up
  // Without a header: the route default (10 s).
  r = Get("/v1/sleep");
  ASSERT_TRUE(absl::SimpleAtoi(r.body.substr(15, r.body.size() - 17), &ms)) << r.body;
  EXPECT_GT(ms, 9000);
}

}  // namespace
}  // namespace kurt::edge::testing
