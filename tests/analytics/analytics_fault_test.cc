// Exactly-once counting under faults, with the real kurt-analytics binary as a child process:
// SIGKILLed mid-stream and restarted, and a second instance joining the group mid-stream. Each
// test has its own scratch database, topic and consumer group.
#include <signal.h>

#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "platform/kafka/kafka.h"
#include "platform/pg/pg.h"
#include "pqxx/pqxx"
#include "tests/analytics/test_clicks.h"
#include "tests/support/child_process.h"
#include "tests/support/free_port.h"
#include "tests/support/http_client.h"
#include "tests/support/stack_env.h"

namespace kurt::analytics {
namespace {

using kurt::testing::ChildProcess;
using testing::CountHourly;

class AnalyticsFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pg::PoolOptions o;
    o.url = db_.primary_url();
    o.max_connections = 2;
    primary_ = std::make_unique<pg::PgPool>(o);
    topic_ = kurt::testing::RandomName("kurt.test.clicks.");
    dlq_topic_ = kurt::testing::RandomName("kurt.test.clicks.dlq.");
    group_ = kurt::testing::RandomName("kurt-test-analytics-");
    kafka::ProducerOptions ko;
    ko.brokers = kurt::testing::KafkaBrokers();
    producer_ = std::move(*kafka::KafkaProducer::Create(ko));
    codes_ = testing::InsertLinks(*primary_, "fault", "flt", 300);
  }

  // A kurt-analytics process on this test's database, topic and group; small batches (many
  // transactions to be killed in) unless `default_batches`.
  std::unique_ptr<ChildProcess> Analytics(const std::string& name, int metrics_port,
                                          bool default_batches = false) {
    std::string log = absl::StrCat(::testing::TempDir(), "/", group_, "-", name, ".log");
    child_logs_.push_back(log);
    std::vector<std::string> args = {
        absl::StrCat("--pg_primary_url=", db_.primary_url()),
        absl::StrCat("--pg_replica_url=", db_.replica_url()),
        absl::StrCat("--kafka_brokers=", kurt::testing::KafkaBrokers()),
        absl::StrCat("--clicks_topic=", topic_),
        absl::StrCat("--dead_letter_topic=", dlq_topic_),
        absl::StrCat("--consumer_group=", group_),
        "--edge_secret=analytics-fault-test",
        "--grpc_port=0",
        absl::StrCat("--metrics_port=", metrics_port),
        "--batch_wait=50ms",
        "--lag_refresh=1s"};
    if (!default_batches) {
      args.push_back("--batch_max_messages=2000");
    }
    return std::make_unique<ChildProcess>(KURT_ANALYTICS_BINARY, std::move(args), log);
  }

  // Waits until the aggregates reach `n` clicks; returns the count last seen.
  int64_t WaitForHourly(int64_t n, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    int64_t seen = 0;
    while ((seen = CountHourly(*primary_)) < n && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(10));
    }
    return seen;
  }

  // Everything counted exactly once: aggregates, raw rows, per link, and the stored offsets.
  void ExpectExactly(int64_t n, const std::map<std::string, int64_t>& expected) {
    testing::Counts c = testing::CountAll(*primary_);
    EXPECT_EQ(c.hourly, n);
    EXPECT_EQ(c.referrers, n);
    EXPECT_EQ(c.agents, n);
    EXPECT_EQ(c.raw, n);
    EXPECT_EQ(c.distinct_events, n);
    EXPECT_EQ(c.offsets, n);
    EXPECT_EQ(testing::HourlyPerCode(*primary_), expected);
  }

  void TearDown() override {
    if (HasFailure()) {
      for (const std::string& log : child_logs_) {
        std::cerr << "child log: " << log << "\n";
      }
    }
  }

  std::vector<std::string> child_logs_;
  kurt::testing::ScratchDatabase db_;
  std::unique_ptr<pg::PgPool> primary_;
  std::string topic_, dlq_topic_, group_;
  std::unique_ptr<kafka::KafkaProducer> producer_;
  std::vector<std::string> codes_;
};

TEST_F(AnalyticsFaultTest, SigkilledMidStreamTwiceStillCountsEachClickOnce) {
  constexpr int64_t kClicks = 120000;
  kurt::testing::CreateTopic(topic_, 3);
  kurt::testing::CreateTopic(dlq_topic_, 1);
  // Clicks keep arriving while the consumer is killed and restarted.
  std::map<std::string, int64_t> expected;
  std::thread publisher(
      [&] { expected = testing::PublishClicks(*producer_, topic_, codes_, kClicks, 15000); });

  auto analytics = Analytics("a", kurt::testing::FreePort());
  ASSERT_TRUE(analytics->Start().ok());
  for (int64_t kill_at : {kClicks / 5, kClicks / 2}) {
    int64_t seen = WaitForHourly(kill_at, absl::Seconds(90));
    ASSERT_GE(seen, kill_at) << "the consumer made no progress";
    analytics->Signal(SIGKILL);
    ASSERT_EQ(analytics->Wait(absl::Seconds(10)), 128 + SIGKILL);
    int64_t at_kill = CountHourly(*primary_);
    EXPECT_LT(at_kill, kClicks) << "killed after the stream was consumed, not in the middle";
    std::cerr << "SIGKILL with " << at_kill << " of " << kClicks << " clicks counted\n";
    ASSERT_TRUE(analytics->Start().ok());
  }
  publisher.join();
  EXPECT_EQ(WaitForHourly(kClicks, absl::Seconds(90)), kClicks);
  // Let a late duplicate show up if there were one.
  absl::SleepFor(absl::Seconds(1));
  ExpectExactly(kClicks, expected);
  analytics->Signal(SIGTERM);
  EXPECT_EQ(analytics->Wait(absl::Seconds(30)), 0) << "SIGTERM must end the process cleanly";
}

TEST_F(AnalyticsFaultTest, ASecondInstanceJoiningMidStreamSharesThePartitions) {
  constexpr int64_t kClicks = 100000;
  kurt::testing::CreateTopic(topic_, 6);
  kurt::testing::CreateTopic(dlq_topic_, 1);
  std::map<std::string, int64_t> expected;
  std::thread publisher(
      [&] { expected = testing::PublishClicks(*producer_, topic_, codes_, kClicks, 15000); });
  const int port_a = kurt::testing::FreePort();
  auto a = Analytics("a", port_a);
  ASSERT_TRUE(a->Start().ok());
  ASSERT_GE(WaitForHourly(kClicks / 4, absl::Seconds(90)), kClicks / 4);
  const int port_b = kurt::testing::FreePort();
  auto b = Analytics("b", port_b);
  ASSERT_TRUE(b->Start().ok());
  publisher.join();
  EXPECT_EQ(WaitForHourly(kClicks, absl::Seconds(90)), kClicks);
  absl::SleepFor(absl::Seconds(1));
  ExpectExactly(kClicks, expected);

  // Both did part of the work, and each reports lag for the partitions it holds.
  std::string page_a = kurt::testing::Get(port_a, "/metrics").body;
  std::string page_b = kurt::testing::Get(port_b, "/metrics").body;
  const std::string stored = "kurt_analytics_clicks_total{outcome=\"stored\"}";
  double by_a = testing::MetricValue(page_a, stored), by_b = testing::MetricValue(page_b, stored);
  EXPECT_GT(by_a, 0);
  EXPECT_GT(by_b, 0) << page_b;
  EXPECT_EQ(by_a + by_b, kClicks);
  EXPECT_NE(page_b.find(absl::StrCat("kurt_kafka_consumer_lag{topic=\"", topic_)),
            std::string::npos)
      << page_b;

  // SIGTERM: B finishes its batch and leaves; A takes its partitions over and goes on counting.
  b->Signal(SIGTERM);
  EXPECT_EQ(b->Wait(absl::Seconds(30)), 0);
  auto more = testing::PublishClicks(*producer_, topic_, codes_, 6000);
  for (const auto& [code, n] : more) {
    expected[code] += n;
  }
  EXPECT_EQ(WaitForHourly(kClicks + 6000, absl::Seconds(60)), kClicks + 6000);
  ExpectExactly(kClicks + 6000, expected);
  a->Signal(SIGTERM);
  EXPECT_EQ(a->Wait(absl::Seconds(30)), 0);
}

// Resident memory of a process in MB (from /proc), -1 when unknown.
double ResidentMb(pid_t pid) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      return std::stod(line.substr(6)) / 1024;
    }
  }
  return -1;
}

TEST_F(AnalyticsFaultTest, AStalledDatabaseHoldsConsumptionBackInBoundedMemoryAndLosesNothing) {
  // About 100 MB of events waiting, three times librdkafka's prefetch bound (32 MB).
  constexpr int64_t kBacklog = 500000;
  kurt::testing::CreateTopic(topic_, 3);
  kurt::testing::CreateTopic(dlq_topic_, 1);
  const int port = kurt::testing::FreePort();
  // The batch size the service runs with, so that the bound below is the one in production.
  auto analytics = Analytics("a", port, /*default_batches=*/true);
  ASSERT_TRUE(analytics->Start().ok());
  std::map<std::string, int64_t> expected =
      testing::PublishClicks(*producer_, topic_, codes_, 2000);
  ASSERT_EQ(WaitForHourly(2000, absl::Seconds(60)), 2000);

  // Another session takes the raw clicks table: the consumer's writes wait (reads do not).
  pqxx::connection blocker(db_.primary_url());
  pqxx::work stall(blocker);
  stall.exec("LOCK TABLE clicks IN EXCLUSIVE MODE");
  for (const auto& [code, n] : testing::PublishClicks(*producer_, topic_, codes_, kBacklog)) {
    expected[code] += n;
  }
  double peak_mb = 0;
  double lag = 0;
  for (int i = 0; i < 30; ++i) {  // 6 s with the database stalled
    absl::SleepFor(absl::Milliseconds(200));
    peak_mb = std::max(peak_mb, ResidentMb(analytics->pid()));
    std::string page = kurt::testing::Get(port, "/metrics").body;
    lag = 0;
    for (int partition = 0; partition < 3; ++partition) {
      lag += testing::MetricValue(
          page, absl::StrCat("kurt_kafka_consumer_lag{topic=\"", topic_, "\",partition=\"",
                             partition, "\",group=\"", group_, "\"}"));
    }
  }
  EXPECT_EQ(CountHourly(*primary_), 2000) << "nothing is counted while the database is stalled";
  EXPECT_GT(lag, kBacklog / 2) << "the backlog waits in Kafka, and the lag metric shows it";
  EXPECT_GT(peak_mb, 0);
  EXPECT_LT(peak_mb, 150) << "memory is bounded, not proportional to the backlog";
  std::cerr << "stalled: peak RSS " << peak_mb << " MB, lag " << lag << "\n";

  stall.abort();
  EXPECT_EQ(WaitForHourly(kBacklog + 2000, absl::Seconds(120)), kBacklog + 2000);
  absl::SleepFor(absl::Seconds(1));
  ExpectExactly(kBacklog + 2000, expected);
  analytics->Signal(SIGTERM);
  EXPECT_EQ(analytics->Wait(absl::Seconds(30)), 0);
}

}  // namespace
}  // namespace kurt::analytics
