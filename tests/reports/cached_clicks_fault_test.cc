// Redirects the edge answers from its cache while kurt-links is down (killed with SIGKILL) are
// still counted, once each: the edge holds their reports until links is back, links publishes
// them, and analytics writes one raw click per redirect the edge answered with a 302.
//
// Real processes on the real stack: kurt-edge (its redirect cache on), kurt-links and
// kurt-analytics, all three build dependencies of the test.
#include <signal.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "kurt/links/v1/links.pb.h"
#include "tests/reports/deployment.h"
#include "tests/support/http_client.h"
#include "tests/support/metric_value.h"

namespace kurt::testing {
namespace {

using kurt::testing::Fetch;
using kurt::testing::Reply;

// The value of one series on the edge's /metrics page.
double Metric(int http_port, const std::string& series) {
  return MetricValue(Fetch(http_port, "GET", "/metrics", {}).body, series);
}

TEST(CachedClicksFaultTest, RedirectsServedFromTheCacheWhileLinksIsKilledAreCountedOnce) {
  for (const char* binary : {"kurt-edge", "kurt-links", "kurt-analytics"}) {
    ASSERT_EQ(::access(BinaryPath(binary).c_str(), X_OK), 0)
        << BinaryPath(binary) << " is not built (a build dependency of this test)";
  }
  Deployment d;
  const std::string clicks_topic = RandomName("kurt.test.clicks.");
  CreateTopic(clicks_topic, 3);
  Service& links = d.Start("links", "kurt-links", {absl::StrCat("--clicks_topic=", clicks_topic)});
  d.Start("analytics", "kurt-analytics",
          {absl::StrCat("--clicks_topic=", clicks_topic),
           absl::StrCat("--dead_letter_topic=", RandomName("kurt.test.clicks.dlq.")),
           absl::StrCat("--consumer_group=", RandomName("kurt-test-analytics-"))});
  Service& edge =
      d.Start("edge", "kurt-edge",
              {"--edge_port={http_port}", "--dev_trust_account_header", "--io_threads=2",
               "--upstream_host=", "--cached_hits_interval=200ms",
               absl::StrCat("--upstream=kurt.links.v1.LinksService=127.0.0.1:", links.grpc_port)});
  const int port = edge.http_port;
  const std::string account = RandomName("acct-fault-");

  Reply created = Fetch(port, "POST", "/v1/links",
                        {{"X-Kurt-Account-Id", account}, {"Content-Type", "application/json"}},
                        R"({"targetUrl": "https://example.com/fault"})");
  ASSERT_EQ(created.status, 200u) << created.body << d.Logs();
  links::v1::Link link;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(created.body, &link).ok());
  const std::string counted =
      absl::StrCat("SELECT count(*) FROM clicks WHERE code = '", link.code(), "'");
  auto wait_counted = [&](int64_t want) {
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (QueryInt(d.db().primary_url(), counted) < want && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(100));
    }
    return QueryInt(d.db().primary_url(), counted);
  };
  // Redirects until `until`, or `max` of them; the number answered with the link's 302.
  auto click = [&](int max, absl::Time until) {
    int served = 0;
    for (int i = 0; i < max && absl::Now() < until; ++i) {
      Reply r = Fetch(port, "GET", absl::StrCat("/", link.code()), {{"User-Agent", "fault/1"}});
      if (r.status == 302) {
        ++served;
      }
    }
    return served;
  };

  // Everything up: the first redirect reaches links, the rest are answered from the cache.
  int served = click(40, absl::InfiniteFuture());
  ASSERT_EQ(served, 40);
  ASSERT_EQ(wait_counted(served), served) << d.Logs();

  // links dies. A cached entry (5 s, renewed here if it lapsed while analytics counted) keeps
  // answering; the reports of those answers wait.
  ASSERT_EQ(click(1, absl::InfiniteFuture()), 1);
  served += 1;
  // Nothing in flight when links dies: a report it took but did not answer would count twice
  // (at least once, docs/edge.md), and a resolve's click may still be in its producer's queue.
  ASSERT_EQ(wait_counted(served), served) << d.Logs();
  ASSERT_TRUE(links.process->Stop(SIGKILL));
  const int while_down = click(200, absl::Now() + absl::Seconds(2));
  ASSERT_GT(while_down, 0) << "the edge's cache answered nothing while links was down";
  served += while_down;
  absl::SleepFor(absl::Milliseconds(500));  // a report or two fails meanwhile
  EXPECT_LT(QueryInt(d.db().primary_url(), counted), served);

  // links is back: the held reports go, and every redirect is counted, none twice.
  ASSERT_TRUE(links.process->Start().ok());
  ASSERT_TRUE(WaitReady(links.http_port, absl::Seconds(30))) << d.Logs();
  EXPECT_EQ(wait_counted(served), served) << d.Logs();
  absl::SleepFor(absl::Seconds(1));
  EXPECT_EQ(QueryInt(d.db().primary_url(), counted), served) << "a click counted twice";
  EXPECT_EQ(Metric(port, "kurt_edge_cached_hits_total{outcome=\"dropped\"}"), 0);
  EXPECT_GE(Metric(port, "kurt_edge_cached_hits_total{outcome=\"reported\"}"), while_down);
}

}  // namespace
}  // namespace kurt::testing
