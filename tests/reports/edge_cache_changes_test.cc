// A changed or deleted link stops redirecting from every edge's cache within a second: kurt-links
// announces updates and deletes on a Redis channel and each edge drops the entry (before, the old
// redirect went on for as long as it was cached, up to --cache_ttl_cap). And an edge whose
// subscription was lost drops its whole cache once it is back, since it may have missed changes.
//
// Real processes on the real stack: kurt-links and two kurt-edge, on a channel of the test's own,
// their redirect caches on and long-lived (60 s), so that only an announcement can drop an entry
// within the test.
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "kurt/links/v1/links.pb.h"
#include "platform/redis/redis.h"
#include "tests/reports/deployment.h"
#include "tests/support/http_client.h"
#include "tests/support/metric_value.h"
#include "tests/support/stack_env.h"

namespace kurt::testing {
namespace {

class EdgeCacheChangesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* binary : {"kurt-edge", "kurt-links"}) {
      ASSERT_EQ(::access(BinaryPath(binary).c_str(), X_OK), 0)
          << BinaryPath(binary) << " is not built (a build dependency of this test)";
    }
    channel_ = RandomName("kurt-test-redirect-changes-");
    const std::string channel_flag = absl::StrCat("--redirect_changes_channel=", channel_);
    links_ = &d_.Start("links", "kurt-links", {channel_flag});
    for (const char* name : {"edge-1", "edge-2"}) {
      edges_.push_back(
          d_.Start(name, "kurt-edge",
                   {"--edge_port={http_port}", "--dev_trust_account_header", "--io_threads=1",
                    "--upstream_host=", "--cache_ttl_cap=60s", channel_flag,
                    absl::StrCat("--upstream=kurt.links.v1.LinksService=127.0.0.1:",
                                 links_->grpc_port)})
              .http_port);
    }
    for (int port : edges_) {
      ASSERT_TRUE(WaitSubscribed(port)) << d_.Logs();
    }
    Reply created = Fetch(edges_[0], "POST", "/v1/links", Headers(),
                          R"({"targetUrl": "https://example.com/before"})");
    ASSERT_EQ(created.status, 200u) << created.body << d_.Logs();
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(created.body, &link_).ok());
  }

  std::vector<std::pair<std::string, std::string>> Headers() const {
    return {{"X-Kurt-Account-Id", account_}, {"Content-Type", "application/json"}};
  }
  // An edge has subscribed once it has cleared its (empty) cache for the first time.
  bool WaitSubscribed(int port) {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (CacheDrops(port, "all") < 1) {
      if (absl::Now() > deadline) {
        return false;
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    return true;
  }
  double CacheDrops(int port, const std::string& reason) {
    return MetricValue(Fetch(port, "GET", "/metrics", {}).body,
                       absl::StrCat("kurt_edge_cache_drops_total{reason=\"", reason, "\"}"));
  }
  double CacheHits(int port) {
    return MetricValue(Fetch(port, "GET", "/metrics", {}).body, "kurt_edge_cache_hits_total");
  }
  Reply Redirect(int port) { return Fetch(port, "GET", absl::StrCat("/", link_.code()), {}); }
  // Follows the link at every edge until the second answer comes from the edge's cache.
  void CacheEverywhere() {
    for (int port : edges_) {
      const double hits = CacheHits(port);
      for (int i = 0; i < 2; ++i) {
        Reply r = Redirect(port);
        ASSERT_EQ(r.status, 302u) << r.body;
      }
      ASSERT_EQ(CacheHits(port), hits + 1) << "the edge on port " << port << " did not cache";
    }
  }
  // How long until every edge answers as `done` says, polling each every 10 ms; fails the test
  // past `within`.
  template <typename Done>
  absl::Duration UntilEveryEdge(Done done, absl::Duration within, absl::Time since) {
    absl::Duration slowest;
    for (int port : edges_) {
      for (;;) {
        Reply r = Redirect(port);
        if (done(r)) {
          break;
        }
        if (absl::Now() - since > within) {
          ADD_FAILURE() << "the edge on port " << port << " still answers " << r.status << " "
                        << r.Header("location") << " after " << absl::Now() - since;
          return absl::Now() - since;
        }
        absl::SleepFor(absl::Milliseconds(10));
      }
      slowest = std::max(slowest, absl::Now() - since);
    }
    return slowest;
  }

  Deployment d_;
  Service* links_ = nullptr;
  std::vector<int> edges_;
  std::string channel_;
  std::string account_ = RandomName("acct-changes-");
  links::v1::Link link_;
};

TEST_F(EdgeCacheChangesTest, ADeletedLinkAnswers404AtEveryEdgeWithinASecond) {
  CacheEverywhere();
  const absl::Time deleted = absl::Now();
  Reply r = Fetch(edges_[0], "DELETE", absl::StrCat("/v1/links/", link_.code()), Headers());
  ASSERT_EQ(r.status, 200u) << r.body;
  const absl::Duration took =
      UntilEveryEdge([](const Reply& r) { return r.status == 404; }, absl::Seconds(1), deleted);
  std::printf("deleted link: 404 at every edge %s after the DELETE was sent\n",
              absl::FormatDuration(took).c_str());
  for (int port : edges_) {
    EXPECT_GE(CacheDrops(port, "changed"), 1) << port;
  }
}

TEST_F(EdgeCacheChangesTest, AChangedTargetIsServedByEveryEdgeWithinASecond) {
  CacheEverywhere();
  const absl::Time changed = absl::Now();
  Reply r = Fetch(edges_[1], "PATCH", absl::StrCat("/v1/links/", link_.code()), Headers(),
                  R"({"targetUrl": "https://example.com/after"})");
  ASSERT_EQ(r.status, 200u) << r.body;
  const absl::Duration took = UntilEveryEdge(
      [](const Reply& r) {
        return r.status == 302 && r.Header("location") == "https://example.com/after";
      },
      absl::Seconds(1), changed);
  std::printf("changed link: new target at every edge %s after the PATCH was sent\n",
              absl::FormatDuration(took).c_str());
  // The new answer is cached again (the drop did not switch the cache off).
  for (int port : edges_) {
    const double hits = CacheHits(port);
    ASSERT_EQ(Redirect(port).status, 302u);
    EXPECT_EQ(CacheHits(port), hits + 1) << port;
  }
}

// What an edge cannot have heard it must not keep: an announcement made while its subscription
// was down is lost, so on subscribing again the edge drops its whole cache. Here Redis itself
// cuts the edges' subscriptions (CLIENT KILL TYPE pubsub, as a restart or a failover would); once
// they are back, the next redirect at each edge goes to links instead of the cache.
TEST_F(EdgeCacheChangesTest, AnEdgeThatLostItsSubscriptionDropsItsCacheWhenItIsBack) {
  CacheEverywhere();
  auto options = redis::Options::FromUrl(RedisUrl());
  ASSERT_TRUE(options.ok()) << options.status();
  redis::RedisClient redis(*options);
  std::vector<double> clears;
  for (int port : edges_) {
    clears.push_back(CacheDrops(port, "all"));
  }
  auto killed = redis.Command({"CLIENT", "KILL", "TYPE", "pubsub"});
  ASSERT_TRUE(killed.ok()) << killed.status();
  ASSERT_GE(killed->integer, 2) << "both edges' subscriptions";
  for (size_t i = 0; i < edges_.size(); ++i) {
    const int port = edges_[i];
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (CacheDrops(port, "all") < clears[i] + 1 && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(20));
    }
    ASSERT_EQ(CacheDrops(port, "all"), clears[i] + 1) << "edge " << i << d_.Logs();
    const double hits = CacheHits(port);
    ASSERT_EQ(Redirect(port).status, 302u);
    EXPECT_EQ(CacheHits(port), hits) << "edge " << i << " answered from a cache it kept";
  }
}

}  // namespace
}  // namespace kurt::testing
