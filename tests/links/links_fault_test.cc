// The real kurt-links binary, SIGKILLed under a stream of uncached redirects (gRPC Resolve calls,
// each of a link of its own, so every one misses the cache and every click can be told apart),
// with the real analytics consumer counting the clicks into PostgreSQL: every redirect that was
// answered OK is counted exactly once. Issue 16, fault test 4: when Resolve answered before Kafka
// had the click, the clicks still in the killed process's producer queue were lost.
#include <signal.h>

#include <atomic>
#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "kurt/links/v1/links.grpc.pb.h"
#include "platform/kafka/kafka.h"
#include "platform/pg/pg.h"
#include "services/analytics/analytics_module.h"
#include "tests/analytics/test_clicks.h"
#include "tests/support/child_process.h"
#include "tests/support/free_port.h"
#include "tests/support/http_client.h"
#include "tests/support/stack_env.h"

namespace kurt::links {
namespace {

namespace v1 = kurt::links::v1;
using kurt::testing::ChildProcess;

constexpr int kRedirects = 20000;
constexpr int kCallers = 32;

TEST(LinksFaultTest, SigkillUnderRedirectLoadLosesNoClickOfAnAnsweredRedirect) {
  kurt::testing::ScratchDatabase db;
  pg::ClusterOptions po = db.ClusterOptions();
  po.primary.max_connections = 8;
  pg::PgCluster cluster(po);
  const std::string topic = kurt::testing::RandomName("kurt.test.clicks.");
  const std::string dlq = kurt::testing::RandomName("kurt.test.clicks.dlq.");
  kurt::testing::CreateTopic(topic, 3);
  kurt::testing::CreateTopic(dlq, 1);
  const std::vector<std::string> codes = analytics::testing::InsertLinks(
      cluster.primary(), "links-fault", kurt::testing::RandomName("lf"), kRedirects);
  db.WaitForReplica();

  const int grpc_port = kurt::testing::FreePort();
  const int metrics_port = kurt::testing::FreePort();
  const std::string log = absl::StrCat(::testing::TempDir(), "/", topic, "-links.log");
  ChildProcess links(
      KURT_LINKS_BINARY,
      {absl::StrCat("--pg_primary_url=", db.primary_url()),
       absl::StrCat("--pg_replica_url=", db.replica_url()),
       absl::StrCat("--redis_url=", kurt::testing::RedisUrl()),
       absl::StrCat("--kafka_brokers=", kurt::testing::KafkaBrokers()),
       absl::StrCat("--clicks_topic=", topic), absl::StrCat("--grpc_port=", grpc_port),
       absl::StrCat("--metrics_port=", metrics_port), "--edge_secret=links-fault-test-secret",
       "--redis_record_secret=links-fault-test-seal", "--log_level=warn"},
      log);
  ASSERT_TRUE(links.Start().ok()) << KURT_LINKS_BINARY;
  ASSERT_TRUE(kurt::testing::WaitReady(metrics_port, absl::Seconds(30)))
      << "kurt-links did not become ready: " << links.LogTail();

  // The real analytics consumer, in this process.
  auto consumer = analytics::testing::StartAnalytics(cluster, topic, dlq);
  ASSERT_NE(consumer, nullptr);

  // Redirects, as the edge asks for them, each code once; kurt-links dies a third of the way in.
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", grpc_port),
                                     grpc::InsecureChannelCredentials());
  std::vector<std::atomic<bool>> answered(kRedirects);
  std::atomic<int> next{0};
  std::atomic<int> ok{0};
  std::atomic<int> failed{0};
  const absl::Time start = absl::Now();
  std::vector<std::thread> callers;
  callers.reserve(kCallers);
  for (int t = 0; t < kCallers; ++t) {
    callers.emplace_back([&] {
      auto stub = v1::LinksService::NewStub(channel);
      for (int i; (i = next.fetch_add(1)) < kRedirects;) {
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
        v1::ResolveRequest request;
        request.set_code(codes[i]);
        v1::ResolveResponse response;
        const grpc::Status s = stub->Resolve(&ctx, request, &response);
        if (s.ok() && !response.target_url().empty()) {
          answered[i] = true;
          ok.fetch_add(1);
        } else {
          failed.fetch_add(1);
        }
      }
    });
  }
  while (ok.load() < kRedirects / 3 && failed.load() == 0 &&
         absl::Now() - start < absl::Seconds(120)) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  const int ok_at_kill = ok.load();
  const absl::Duration before_kill = absl::Now() - start;
  links.Signal(SIGKILL);
  ASSERT_EQ(links.Wait(absl::Seconds(10)), 128 + SIGKILL);
  for (std::thread& t : callers) {
    t.join();
  }
  ASSERT_GE(ok_at_kill, kRedirects / 3)
      << "redirects did not flow before the SIGKILL (log: " << log << ")";
  const int answered_ok = ok.load();

  // Analytics catches up: its counters reach every answered redirect, then stay put a while.
  pg::PgPool& primary = cluster.primary();
  const int64_t counted =
      analytics::testing::WaitForSettledHourly(primary, answered_ok, absl::Seconds(90));
  consumer->module->Stop();

  const std::map<std::string, int64_t> per_code = analytics::testing::HourlyPerCode(primary);
  int lost = 0;
  int twice = 0;
  int refused_but_counted = 0;
  for (int i = 0; i < kRedirects; ++i) {
    auto it = per_code.find(codes[i]);
    const int64_t n = it == per_code.end() ? 0 : it->second;
    if (n > 1) {
      ++twice;
    } else if (answered[i] && n == 0) {
      ++lost;
    } else if (!answered[i] && n == 1) {
      ++refused_but_counted;
    }
  }
  std::cerr << "redirects: " << answered_ok << " answered OK (" << ok_at_kill << " in "
            << absl::FormatDuration(before_kill) << " before the SIGKILL), " << failed.load()
            << " failed; clicks counted " << counted << ": " << lost
            << " answered redirects not counted, " << twice << " counted twice, "
            << refused_but_counted << " counted of redirects that got no answer\n";
  EXPECT_EQ(lost, 0) << "clicks of redirects that went out were lost with the process";
  EXPECT_EQ(twice, 0);
  EXPECT_EQ(counted, answered_ok + refused_but_counted);
}

}  // namespace
}  // namespace kurt::links
