// Redirects the edge answers from its cache while kurt-links is down (killed with SIGKILL) are
// still counted, once each: the edge holds their reports until links is back, links publishes
// them, and analytics writes one raw click per redirect the edge answered with a 302; and so
// they are when the edge is SIGKILLed too before links is back (its spool).
//
// Real processes on the real stack: kurt-edge (its redirect cache on), kurt-links and
// kurt-analytics, all three build dependencies of the test.
#include <signal.h>
#include <unistd.h>

#include <cstdio>

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

// kurt-edge, kurt-links and kurt-analytics on a topic of their own, and one link on the edge.
class CachedClicksFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* binary : {"kurt-edge", "kurt-links", "kurt-analytics"}) {
      ASSERT_EQ(::access(BinaryPath(binary).c_str(), X_OK), 0)
          << BinaryPath(binary) << " is not built (a build dependency of this test)";
    }
    const std::string clicks_topic = RandomName("kurt.test.clicks.");
    CreateTopic(clicks_topic, 3);
    links_ = &d_.Start("links", "kurt-links", {absl::StrCat("--clicks_topic=", clicks_topic)});
    d_.Start("analytics", "kurt-analytics",
             {absl::StrCat("--clicks_topic=", clicks_topic),
              absl::StrCat("--dead_letter_topic=", RandomName("kurt.test.clicks.dlq.")),
              absl::StrCat("--consumer_group=", RandomName("kurt-test-analytics-"))});
    spool_ = absl::StrCat(::testing::TempDir(), "/", RandomName("kurt-hits-"), ".spool");
    edge_ = &d_.Start(
        "edge", "kurt-edge",
        {"--edge_port={http_port}", "--dev_trust_account_header", "--io_threads=2",
         "--upstream_host=", "--cached_hits_interval=200ms",
         absl::StrCat("--cached_hits_spool=", spool_),
         absl::StrCat("--upstream=kurt.links.v1.LinksService=127.0.0.1:", links_->grpc_port)});
    port_ = edge_->http_port;
    Reply created = Fetch(
        port_, "POST", "/v1/links",
        {{"X-Kurt-Account-Id", RandomName("acct-fault-")}, {"Content-Type", "application/json"}},
        R"({"targetUrl": "https://example.com/fault"})");
    ASSERT_EQ(created.status, 200u) << created.body << d_.Logs();
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(created.body, &link_).ok());
  }
  void TearDown() override { std::remove(spool_.c_str()); }

  int64_t Counted() {
    return QueryInt(d_.db().primary_url(),
                    absl::StrCat("SELECT count(*) FROM clicks WHERE code = '", link_.code(), "'"));
  }
  // Waits until `want` clicks of the link are stored (60 s at most); returns how many are.
  int64_t WaitCounted(int64_t want) {
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (Counted() < want && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(100));
    }
    return Counted();
  }
  // Redirects until `until`, or `max` of them; the number answered with the link's 302.
  int Click(int max, absl::Time until = absl::InfiniteFuture()) {
    int served = 0;
    for (int i = 0; i < max && absl::Now() < until; ++i) {
      Reply r = Fetch(port_, "GET", absl::StrCat("/", link_.code()), {{"User-Agent", "fault/1"}});
      served += r.status == 302 ? 1 : 0;
    }
    return served;
  }
  // Everything up: the first redirect reaches links, the rest are answered from the cache. Then
  // one more (a cached entry, 5 s, renewed here if it lapsed while analytics counted), all
  // counted: nothing in flight when links dies (a resolve's click may still be in its producer's
  // queue). Returns the redirects served.
  int ServeAndCountBeforeTheFault() {
    int served = Click(40);
    EXPECT_EQ(served, 40);
    EXPECT_EQ(WaitCounted(served), served) << d_.Logs();
    served += Click(1);
    EXPECT_EQ(WaitCounted(served), served) << d_.Logs();
    return served;
  }
  // links dies (SIGKILL); the cached entry goes on answering for 2 s. Returns the 302s.
  int ServeWhileLinksIsDown() {
    EXPECT_TRUE(links_->process->Stop(SIGKILL));
    const int served = Click(200, absl::Now() + absl::Seconds(2));
    EXPECT_GT(served, 0) << "the edge's cache answered nothing while links was down";
    return served;
  }
  void StartLinksAgain() {
    ASSERT_TRUE(links_->process->Start().ok());
    ASSERT_TRUE(WaitReady(links_->http_port, absl::Seconds(30))) << d_.Logs();
  }

  Deployment d_;
  Service* links_ = nullptr;
  Service* edge_ = nullptr;
  std::string spool_;
  int port_ = 0;
  links::v1::Link link_;
};

TEST_F(CachedClicksFaultTest, RedirectsServedFromTheCacheWhileLinksIsKilledAreCountedOnce) {
  int served = ServeAndCountBeforeTheFault();
  // links dies; the cached entry keeps answering, and the reports of those answers wait.
  const int while_down = ServeWhileLinksIsDown();
  served += while_down;
  absl::SleepFor(absl::Milliseconds(500));  // a report or two fails meanwhile
  EXPECT_LT(Counted(), served);

  // links is back: the held reports go, and every redirect is counted, none twice.
  StartLinksAgain();
  EXPECT_EQ(WaitCounted(served), served) << d_.Logs();
  absl::SleepFor(absl::Seconds(1));
  EXPECT_EQ(Counted(), served) << "a click counted twice";
  EXPECT_EQ(Metric(port_, "kurt_edge_cached_hits_total{outcome=\"dropped\"}"), 0);
  EXPECT_GE(Metric(port_, "kurt_edge_cached_hits_total{outcome=\"reported\"}"), while_down);
}

// While links is down the edge's 302s go out past their hold with their hits queued; the edge is
// then SIGKILLed too. Its spool kept those hits: started again, it sends them, and every redirect
// it answered is counted once. Without the spool they died with the process.
TEST_F(CachedClicksFaultTest, RedirectsServedWhileLinksIsDownSurviveTheEdgesSigkill) {
  int served = ServeAndCountBeforeTheFault();
  const int while_down = ServeWhileLinksIsDown();
  served += while_down;
  const double spooled = Metric(port_, "kurt_edge_cached_hits_spooled_total");
  EXPECT_GE(spooled, while_down);
  ASSERT_TRUE(edge_->process->Stop(SIGKILL));

  StartLinksAgain();
  ASSERT_TRUE(edge_->process->Start().ok());
  ASSERT_TRUE(WaitReady(port_, absl::Seconds(30))) << d_.Logs();
  EXPECT_EQ(WaitCounted(served), served) << d_.Logs();
  absl::SleepFor(absl::Seconds(1));
  EXPECT_EQ(Counted(), served) << "a click counted twice";
  std::printf(
      "%d redirects while links was down, %.0f of their hits spooled; after the edge's "
      "SIGKILL and restart, %lld clicks counted of %d redirects\n",
      while_down, spooled, static_cast<long long>(Counted()), served);
}

}  // namespace
}  // namespace kurt::testing
