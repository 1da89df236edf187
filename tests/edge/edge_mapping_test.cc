// End to end over real HTTP: every google.api.http mapping rule the edge implements.
#include <chrono>
#include <future>

#include "platform/grpc/handler.h"
#include "platform/grpc/pagination.h"
#include "platform/grpc/timestamps.h"
#include "tests/edge/edge_fixture.h"

namespace kurt::edge::testing {
namespace {

TEST_F(EdgeTest, PathVariableAndQueryIntoNestedRepeatedAndWellKnownFields) {
  Reply r =
      Get("/v1/things/t%201?count=3&big=-9000000000000000000&ubig=18446744073709551615"
          "&inner.name=n&inner.values=1&inner.values=2&tags=a&tags=b&colors=RED&colors=2"
          "&inner.child.color=GREEN&when=2024-01-01T00:00:00Z&ttl=2.5s&mask=title,inner.name"
          "&maybeBig=5&maybe_name=x&title=T&flag=true&blob=aGk%3D&score=0.5&ratio=-1e3");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.Header("content-type"), "application/json");
  EXPECT_EQ(r.body,
            R"({"id":"t 1","count":3,"big":"-9000000000000000000","ubig":"18446744073709551615",)"
            R"("flag":true,"ratio":-1000,"score":0.5,"blob":"aGk=","inner":{"name":"n",)"
            R"("values":[1,2],"child":{"color":"GREEN"}},"tags":["a","b"],)"
            R"("colors":["RED","GREEN"],"when":"2024-01-01T00:00:00Z","ttl":"2.500s",)"
            R"("mask":"title,inner.name","maybeBig":"5","maybeName":"x","title":"T"})");
}

TEST_F(EdgeTest, AdditionalBinding) {
  Reply r = Get("/v1/items/i9");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.body, R"({"id":"i9"})");
}

TEST_F(EdgeTest, LiteralSegmentsWinOverVariables) {
  // GET /{code} (the links redirect) does not swallow /v1/links or /healthz.
  Reply list = Get("/v1/links?pageSize=7");
  ASSERT_EQ(list.status, 200u) << list.body;
  EXPECT_EQ(list.body, R"({"nextPageToken":"page-size-7"})");
  EXPECT_EQ(Get("/healthz").body, "ok\n");
  Reply redirect = Get("/abc123");
  EXPECT_EQ(redirect.status, 302u);
  EXPECT_EQ(redirect.Header("location"), "https://links.example/abc123");
}

TEST_F(EdgeTest, BodyStarInBothSpellings) {
  Reply r =
      Post("/v1/things", R"({"id":"a","display_name":"snake","big":"123","color":"RED",)"
                         R"("when":"2024-01-01T00:00:00.5Z","maybeFlag":false,"labels":{"k":"v"},)"
                         R"("extra":{"x":[1,"y",null]},"choiceNumber":4,"inners":[{"name":"i"}]})");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.Header("cache-control"), "no-store");
  EXPECT_EQ(r.body,
            R"({"id":"a","big":"123","color":"RED","when":"2024-01-01T00:00:00.500Z",)"
            R"("maybeFlag":false,"title":"snake","labels":{"k":"v"},"inners":[{"name":"i"}],)"
            R"("extra":{"x":[1,"y",null]},"choiceNumber":4})");
  r = Post("/v1/things", R"({"title":"json name"})");
  EXPECT_EQ(r.body, R"({"title":"json name"})");
}

TEST_F(EdgeTest, BodyFieldWithNestedPathVariableAndQuery) {
  Reply r = Fetch(port(), "PATCH", "/v1/things/t9?updateMask=title,count",
                  {{"Content-Type", "application/json"}}, R"({"id":"ignored","count":2})");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.body, R"({"id":"t9","count":2,"mask":"title,count"})");
}

TEST_F(EdgeTest, VariableWithSubTemplate) {
  Reply r = Get("/v1/shelves/s1");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.body, R"({"name":"shelves/s1"})");
  EXPECT_EQ(Get("/v1/shelves").status, 404u);
}

TEST_F(EdgeTest, MultiSegmentVariable) {
  Reply r = Get("/v1/files/a/b/c.txt");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.body, R"({"path":"a/b/c.txt"})");
}

TEST_F(EdgeTest, CustomVerb) {
  Reply r = Post("/v1/things/x1:cancel", R"({"reason":"done"})");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.body, R"({"id":"x1","title":"cancelled: done"})");
  // The verb route takes POST only; GET on the same path is the plain variable route.
  EXPECT_EQ(Get("/v1/things/x1:cancel").body, R"({"id":"x1:cancel"})");
}

TEST_F(EdgeTest, ResponseBodyField) {
  Reply r = Get("/v1/things/x2/inner");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.body, R"({"name":"inner of x2"})");
}

TEST_F(EdgeTest, HttpBodyIn) {
  std::string data("\x89PNG\r\n\0raw", 10);
  Reply r = Fetch(port(), "POST", "/v1/uploads/pic", {{"Content-Type", "image/png"}}, data);
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.body,
            R"({"name":"pic","contentType":"image/png","size":"10","data":"iVBORw0KAHJhdw=="})");
}

TEST_F(EdgeTest, HttpBodyOut) {
  Reply r = Get("/v1/downloads/report");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.Header("content-type"), "text/csv");
  EXPECT_EQ(r.body, "name,value\nreport,1\n");
  EXPECT_FALSE(r.Header("etag").empty());
  EXPECT_EQ(Get("/v1/downloads/missing").status, 404u);
}

TEST_F(EdgeTest, HttpBodyServerStreamIsChunkedRawContent) {
  Reply r = Get("/v1/downloads/d:stream?chunks=3");
  ASSERT_EQ(r.status, 200u) << r.error;
  EXPECT_EQ(r.Header("content-type"), "text/plain");
  EXPECT_EQ(r.Header("transfer-encoding"), "chunked");
  EXPECT_EQ(r.body, "chunk 0\nchunk 1\nchunk 2\n");
}

TEST_F(EdgeTest, ServerStreamAsServerSentEvents) {
  Reply r = Get("/v1/events:watch?count=3", {{"Last-Event-ID", "e7"}});
  ASSERT_EQ(r.status, 200u) << r.error;
  EXPECT_EQ(r.Header("content-type"), "text/event-stream");
  EXPECT_EQ(r.Header("cache-control"), "no-cache");
  EXPECT_EQ(r.body,
            "id: e1\ndata: {\"eventId\":\"e1\",\"seq\":\"1\",\"resumedFrom\":\"e7\"}\n\n"
            "id: e2\ndata: {\"eventId\":\"e2\",\"seq\":\"2\",\"resumedFrom\":\"e7\"}\n\n"
            "id: e3\ndata: {\"eventId\":\"e3\",\"seq\":\"3\",\"resumedFrom\":\"e7\"}\n\n");
}

TEST_F(EdgeTest, ServerStreamErrorAfterEventsIsAnErrorEvent) {
  Reply r = Get("/v1/events:watch?count=1&failCode=14");
  ASSERT_EQ(r.status, 200u) << r.error;
  // UNAVAILABLE is a server-side failure: the edge's own message, with the request id.
  EXPECT_EQ(r.body, absl::StrCat("id: e1\ndata: {\"eventId\":\"e1\",\"seq\":\"1\"}\n\n"
                                 "event: error\ndata: {\"code\":14,\"message\":\"kurt.testing.v1."
                                 "EchoService is unavailable right now; retry later (request id ",
                                 r.Header("x-request-id"), ")\",\"details\":[]}\n\n"));
}

TEST_F(EdgeTest, ServerStreamErrorBeforeEventsIsAnHttpError) {
  Reply r = Get("/v1/events:watch?count=0&failCode=5");
  EXPECT_EQ(r.status, 404u);
  EXPECT_EQ(r.body, R"({"code":5,"message":"the watch failed","details":[]})");
}

TEST_F(EdgeTest, QuietServerStreamSendsHeadersThenKeepalives) {
  HttpConnection c(port());
  ASSERT_TRUE(c.Send("GET /v1/events:watch?count=1&interval=1s HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::string raw = c.ReadToEnd();
  EXPECT_CONTAINS(raw, "HTTP/1.1 200 OK");
  EXPECT_CONTAINS(raw, ": keepalive");
  EXPECT_CONTAINS(raw, "id: e1");
}

TEST_F(EdgeTest, ClientLeavingAStreamCancelsTheUpstream) {
  upstream_->echo().watch_cancelled = false;
  {
    HttpConnection c(port());
    ASSERT_TRUE(c.Send("GET /v1/events:watch?count=-1&interval=0.05s HTTP/1.1\r\nHost: x\r\n\r\n"));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    c.Close();
  }
  for (int i = 0; i < 100 && !upstream_->echo().watch_cancelled; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(upstream_->echo().watch_cancelled);
}

TEST_F(EdgeTest, AStreamEndsAtItsDeadlineWithAnErrorEvent) {
  HttpConnection c(port());
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(
      c.Send("GET /v1/events:watch?count=-1&interval=0.05s HTTP/1.1\r\nHost: x\r\n"
             "X-Request-Timeout: 0.4\r\n\r\n"));
  std::string raw = c.ReadToEnd();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  EXPECT_CONTAINS(raw, "HTTP/1.1 200 OK");
  EXPECT_CONTAINS(raw, "id: e1");
  EXPECT_CONTAINS(raw, "event: error\ndata: {\"code\":4,");
}

TEST_F(EdgeTest, UnaryCallsAreAnsweredWhileStreamsAreOpen) {
  std::vector<std::unique_ptr<HttpConnection>> streams;
  for (int i = 0; i < 3; ++i) {
    streams.push_back(std::make_unique<HttpConnection>(port()));
    ASSERT_TRUE(streams.back()->Send(
        "GET /v1/events:watch?count=-1&interval=0.02s HTTP/1.1\r\nHost: x\r\n\r\n"));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  for (int i = 0; i < 50; ++i) {
    Reply r = Get(absl::StrCat("/v1/things/t", i));
    ASSERT_EQ(r.status, 200u) << r.body;
    EXPECT_CONTAINS(r.body, absl::StrCat("\"t", i, "\""));
  }
  // The streams went on meanwhile, each on its own connection.
  for (auto& s : streams) {
    s->Close();
  }
}

TEST_F(EdgeTest, Redirect) {
  Reply r = Get("/t/abc");
  ASSERT_EQ(r.status, 302u) << r.body;
  EXPECT_EQ(r.Header("location"), "https://example.com/abc");
  EXPECT_EQ(r.Header("cache-control"), "public, max-age=60");
  EXPECT_EQ(Get("/t/missing").status, 404u);
  EXPECT_EQ(Get("/t/empty").status, 500u);
  // Unknown query parameters (tracking) do not fail a redirect.
  EXPECT_EQ(Get("/t/abc?utm_source=mail").status, 302u);
}

TEST_F(EdgeTest, HotRedirectsAreServedFromTheEdgeCache) {
  int before = upstream_->echo().go_calls;
  for (int i = 0; i < 5; ++i) {
    Reply r = Get("/t/hot");
    ASSERT_EQ(r.status, 302u);
    EXPECT_EQ(r.Header("location"), "https://example.com/hot");
    EXPECT_EQ(r.Header("cache-control"), "public, max-age=60");
    EXPECT_FALSE(r.Header("x-request-id").empty());
  }
  EXPECT_EQ(upstream_->echo().go_calls - before, 1);
  Reply metrics = Get("/metrics");
  EXPECT_CONTAINS(metrics.body, "kurt_edge_cache_hits_total");
  EXPECT_EQ(metrics.body.find("kurt_edge_cache_hits_total 0\n"), std::string::npos);
}

// Only the first of these redirects reaches links; the others are answered from the edge's cache
// and reported to links afterwards, so that links counts every one as a click.
TEST_F(EdgeTest, RedirectsAnsweredFromTheCacheAreReportedToTheirService) {
  const absl::Time start = absl::Now();
  const int before = upstream_->links().resolve_calls;
  server_->edge().FlushCachedHits();
  const size_t reported_before = upstream_->links().CachedHits().size();
  std::vector<std::string> request_ids;
  for (int i = 0; i < 4; ++i) {
    Reply r = Get("/reportedhit?utm_source=mail",
                  {{"User-Agent", absl::StrCat("Agent/", i)},
                   {"Referer", "https://ref.example/page"},
                   {"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}});
    ASSERT_EQ(r.status, 302u) << r.body;
    EXPECT_EQ(r.Header("location"), "https://links.example/reportedhit");
    // A CDN could not report what it answers: only the browser and the edge may keep it.
    EXPECT_EQ(r.Header("cache-control"), "private, max-age=5");
    request_ids.push_back(r.Header("x-request-id"));
  }
  EXPECT_EQ(upstream_->links().resolve_calls - before, 1);

  server_->edge().FlushCachedHits();
  std::vector<kurt::api::v1::CachedRedirects::Hit> hits = upstream_->links().CachedHits();
  ASSERT_EQ(hits.size() - reported_before, 3u);
  for (size_t i = 0; i < 3; ++i) {
    const kurt::api::v1::CachedRedirects::Hit& hit = hits[reported_before + i];
    kurt::links::v1::ResolveRequest resolve;
    ASSERT_TRUE(resolve.ParseFromString(hit.request()));
    EXPECT_EQ(resolve.code(), "reportedhit");
    EXPECT_EQ(hit.metadata().at("x-kurt-user-agent"), absl::StrCat("Agent/", i + 1));
    EXPECT_EQ(hit.metadata().at("x-kurt-referer"), "https://ref.example/page");
    EXPECT_EQ(hit.metadata().at("x-kurt-client-ip"), "127.0.0.1");
    EXPECT_EQ(hit.metadata().at("traceparent"),
              "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    EXPECT_EQ(hit.metadata().at("x-request-id"), request_ids[i + 1]);
    absl::Time when = platform::FromTimestamp(hit.time());
    EXPECT_GE(when, start - absl::Seconds(1));
    EXPECT_LE(when, absl::Now());
  }
  Reply metrics = Get("/metrics");
  EXPECT_CONTAINS(metrics.body, "kurt_edge_cached_hits_total{outcome=\"reported\"}");
}

// A cached hit's report carries the request's headers as the upstream call would: control
// characters dropped, each value cut at its bound, the click id the request id the edge made.
TEST_F(EdgeTest, ACachedHitsReportCarriesItsHeadersMadeSafe) {
  ASSERT_EQ(Get("/safehit").status, 302u);  // cached from now on
  server_->edge().FlushCachedHits();
  const size_t reported_before = upstream_->links().CachedHits().size();
  const std::string long_referer = "https://ref.example/" + std::string(2000, 'r');
  Reply r = Get("/safehit", {{"User-Agent", "Agent\t/7"}, {"Referer", long_referer}});
  ASSERT_EQ(r.status, 302u) << r.body;
  server_->edge().FlushCachedHits();
  std::vector<kurt::api::v1::CachedRedirects::Hit> hits = upstream_->links().CachedHits();
  ASSERT_EQ(hits.size() - reported_before, 1u);
  const kurt::api::v1::CachedRedirects::Hit& hit = hits.back();
  EXPECT_EQ(hit.metadata().at("x-kurt-user-agent"), "Agent/7");
  EXPECT_EQ(hit.metadata().at("x-kurt-referer"), long_referer.substr(0, 1024));
  EXPECT_EQ(hit.metadata().at("x-kurt-client-ip"), "127.0.0.1");
  EXPECT_EQ(hit.metadata().at("x-request-id"), r.Header("x-request-id"));
  EXPECT_EQ(hit.metadata().at("x-kurt-click-id"), r.Header("x-request-id"));
  EXPECT_EQ(hit.metadata().count("traceparent"), 0u);
}

// A redirect answered from the cache goes out only once links has its click: while links does
// not take it the answer waits (a killed edge would lose no counted redirect) and goes out once
// links takes it. Links down for longer than the hold does not take the redirects down: the
// answer goes out after the hold, later ones at once, and their clicks are reported once links
// is back.
TEST_F(EdgeTest, ACachedRedirectGoesOutOnceItsServiceHasItsClickOrIsDown) {
  ASSERT_EQ(Get("/waitinghit").status, 302u);  // cached from now on
  server_->edge().FlushCachedHits();
  const size_t reported_before = upstream_->links().CachedHits().size();

  upstream_->links().refuse_cached_hits = true;
  std::future<Reply> held = std::async(std::launch::async, [this] { return Get("/waitinghit"); });
  EXPECT_EQ(held.wait_for(std::chrono::milliseconds(300)), std::future_status::timeout)
      << "answered before links had its click";
  upstream_->links().refuse_cached_hits = false;
  Reply r = held.get();
  EXPECT_EQ(r.status, 302u) << r.body;
  EXPECT_EQ(upstream_->links().CachedHits().size() - reported_before, 1u);

  upstream_->links().refuse_cached_hits = true;
  const absl::Time start = absl::Now();
  EXPECT_EQ(Get("/waitinghit").status, 302u);
  EXPECT_GE(absl::Now() - start, absl::Seconds(1));  // the fixture's hold timeout
  const absl::Time next = absl::Now();
  EXPECT_EQ(Get("/waitinghit").status, 302u);
  EXPECT_LT(absl::Now() - next, absl::Milliseconds(500)) << "held while links is down";
  upstream_->links().refuse_cached_hits = false;
  server_->edge().FlushCachedHits();
  EXPECT_EQ(upstream_->links().CachedHits().size() - reported_before, 3u);
  Reply metrics = Get("/metrics");
  EXPECT_CONTAINS(metrics.body, "kurt_edge_cached_hits_total{outcome=\"dropped\"} 0");
}

TEST_F(EdgeTest, KeepAliveServesManyRequestsOnOneConnection) {
  HttpConnection c(port());
  for (int i = 0; i < 3; ++i) {
    Reply r = c.Fetch("GET", absl::StrCat("/v1/things/k", i));
    ASSERT_EQ(r.status, 200u) << r.error;
    EXPECT_EQ(r.body, absl::StrCat(R"({"id":"k)", i, R"("})"));
  }
}

// Requests sent back to back in one write (pipelined; the next one waits in the connection's
// buffer while the first is answered upstream) are answered in order, each once.
TEST_F(EdgeTest, PipelinedRequestsAreAnsweredInOrder) {
  HttpConnection c(port());
  ASSERT_TRUE(
      c.Send("GET /v1/things/p0 HTTP/1.1\r\nHost: x\r\n\r\n"
             "GET /v1/things/p1 HTTP/1.1\r\nHost: x\r\n\r\n"
             "GET /v1/things/p2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  for (int i = 0; i < 3; ++i) {
    Reply r = c.Read();
    ASSERT_EQ(r.status, 200u) << i << " " << r.error;
    EXPECT_EQ(r.body, absl::StrCat(R"({"id":"p)", i, R"("})"));
  }
  EXPECT_EQ(c.ReadToEnd(), "");
}

}  // namespace
}  // namespace kurt::edge::testing
