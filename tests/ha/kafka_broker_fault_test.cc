// Fault test 3 of the --ha stack (docs/scaling.md): one of the three Kafka brokers is SIGKILLed
// while clicks stream in, produced as kurt-links produces them (KafkaClickSink over the platform's
// idempotent acks=all producer, one caller waiting per click) and counted by the real analytics
// consumer into PostgreSQL. Every click gets a link of its own, so what PostgreSQL counted can be
// checked click by click: each acknowledged click exactly once, none at all more than once.
//
// Needs KURT_KAFKA_BROKERS naming the three brokers of `tools/stack up --ha` (it fails without
// them) and a PostgreSQL with a streaming replica (KURT_PG_PRIMARY_URL, KURT_PG_REPLICA_URL).
#include <librdkafka/rdkafka.h>

#include <atomic>
#include <cstdlib>
#include <future>
#include <iostream>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "platform/kafka/kafka.h"
#include "platform/pg/pg.h"
#include "services/analytics/analytics_module.h"
#include "services/links/click_publisher.h"
#include "tests/analytics/test_clicks.h"
#include "tests/support/stack_env.h"

namespace kurt {
namespace {

constexpr int kClicks = 24000;
constexpr int kPublishers = 32;
constexpr int kClicksPerSecond = 1200;
constexpr int kPartitions = 3;

// The topic's partition leaders and replica counts (-1 each where metadata had none).
struct TopicLayout {
  std::vector<int32_t> leaders;
  std::vector<int> replicas;
  std::vector<int> in_sync;
};

TopicLayout Layout(const std::string& topic) {
  TopicLayout out;
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", kurt::testing::KafkaBrokers().c_str(), err,
                    sizeof(err));
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
  if (rk == nullptr) {
    return out;
  }
  rd_kafka_topic_t* t = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  const rd_kafka_metadata_t* md = nullptr;
  if (rd_kafka_metadata(rk, 0, t, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    if (md->topic_cnt == 1) {
      for (int i = 0; i < md->topics[0].partition_cnt; ++i) {
        const rd_kafka_metadata_partition_t& p = md->topics[0].partitions[i];
        out.leaders.push_back(p.leader);
        out.replicas.push_back(p.replica_cnt);
        out.in_sync.push_back(p.isr_cnt);
      }
    }
    rd_kafka_metadata_destroy(md);
  }
  rd_kafka_topic_destroy(t);
  rd_kafka_destroy(rk);
  return out;
}

// Rows of the clicks table per code (the hourly counters come from analytics' own helper).
std::map<std::string, int64_t> RawPerCode(pg::PgPool& primary) {
  std::map<std::string, int64_t> out;
  absl::Status s = primary.Run([&](pqxx::connection& conn) {
    pqxx::nontransaction tx(conn);
    for (const auto& row : tx.exec("SELECT code, count(*) FROM clicks GROUP BY code")) {
      out[row[0].as<std::string>()] = row[1].as<int64_t>();
    }
  });
  EXPECT_TRUE(s.ok()) << s;
  return out;
}

class KafkaBrokerFaultTest : public ::testing::Test {
 protected:
  void TearDown() override {
    // Whatever happened, the stack is left with its three brokers.
    if (!killed_.empty()) {
      EXPECT_TRUE(kurt::testing::Stack("start", "--ha " + killed_)) << "restarting " << killed_;
    }
  }

  std::string killed_;
};

TEST_F(KafkaBrokerFaultTest, SigkillOfABrokerUnderClickLoadLosesAndDoublesNoClick) {
  const std::vector<std::string> brokers =
      absl::StrSplit(kurt::testing::KafkaBrokers(), ',', absl::SkipEmpty());
  ASSERT_GE(brokers.size(), 3u) << "KURT_KAFKA_BROKERS must name the three brokers of the --ha "
                                   "stack (tools/stack up --ha; .kurt/ha/stack.env), not '"
                                << kurt::testing::KafkaBrokers() << "'";

  kurt::testing::ScratchDatabase db;
  pg::ClusterOptions po = db.ClusterOptions();
  po.primary.max_connections = 8;
  pg::PgCluster cluster(po);
  const std::string topic = kurt::testing::RandomName("kurt.test.clicks.");
  const std::string dlq = kurt::testing::RandomName("kurt.test.clicks.dlq.");
  kurt::testing::CreateTopic(topic, kPartitions);
  kurt::testing::CreateTopic(dlq, 1);
  const TopicLayout before = Layout(topic);
  ASSERT_EQ(before.leaders.size(), static_cast<size_t>(kPartitions));
  for (int p = 0; p < kPartitions; ++p) {
    ASSERT_EQ(before.replicas[p], 3) << "partition " << p << ": the brokers' default replication "
                                     << "factor must be 3 (tools/stack.d/ha/30-kafka.sh)";
  }
  const std::vector<std::string> codes = analytics::testing::InsertLinks(
      cluster.primary(), "ha-kafka", kurt::testing::RandomName("hk"), kClicks);
  db.WaitForReplica();

  // The real analytics consumer, in this process, on this test's database, topic and group.
  auto consumer = analytics::testing::StartAnalytics(cluster, topic, dlq);
  ASSERT_NE(consumer, nullptr);

  // The clicks, produced as kurt-links produces a redirect's click: its producer settings, its
  // sink, and a caller that waits for the acknowledgement.
  kafka::ProducerOptions links_producer;
  links_producer.brokers = kurt::testing::KafkaBrokers();
  links_producer.client_id = "kurt-links";
  auto producer = std::move(*kafka::KafkaProducer::Create(links_producer));
  links::KafkaClickSink sink(producer.get(), topic, "salt", &consumer->registry);

  enum Outcome : uint8_t { kNotSent, kAcknowledged, kRefused };
  std::vector<std::atomic<uint8_t>> outcome(kClicks);
  std::atomic<int> next{0};
  std::atomic<int> acknowledged{0};
  std::mutex mu;
  absl::Time last_ack = absl::Now();
  absl::Duration longest_gap;  // between two acknowledgements while clicks were waiting
  absl::Duration slowest;      // one click, publish to acknowledgement
  const absl::Time start = absl::Now();
  std::vector<std::thread> publishers;
  publishers.reserve(kPublishers);
  for (int t = 0; t < kPublishers; ++t) {
    publishers.emplace_back([&] {
      for (int i; (i = next.fetch_add(1)) < kClicks;) {
        absl::SleepFor(start + absl::Seconds(static_cast<double>(i) / kClicksPerSecond) -
                       absl::Now());  // the load's pace
        const absl::Time sent = absl::Now();
        // As a redirect waits: PublishAsync, its answer awaited here.
        std::promise<absl::Status> answered;
        sink.PublishAsync(links::Click{codes[i], "", sent, "https://ref.example/", "HaTest/1.0",
                                       "203.0.113.9", ""},
                          sent + absl::Seconds(60),
                          [&answered](const absl::Status& s) { answered.set_value(s); });
        absl::Status s = answered.get_future().get();
        const absl::Time done = absl::Now();
        outcome[i] = s.ok() ? kAcknowledged : kRefused;
        if (s.ok()) {
          acknowledged.fetch_add(1);
        }
        std::lock_guard<std::mutex> lock(mu);
        slowest = std::max(slowest, done - sent);
        if (s.ok()) {
          longest_gap = std::max(longest_gap, done - last_ack);
          last_ack = done;
        }
      }
    });
  }

  // A third of the way in, the broker leading partition 0 goes, without a chance to hand over.
  while (acknowledged.load() < kClicks / 3 && absl::Now() - start < absl::Seconds(120)) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_GE(acknowledged.load(), kClicks / 3) << "the clicks did not flow before the fault";
  const int32_t victim = Layout(topic).leaders.at(0);
  ASSERT_GE(victim, 1);
  killed_ = absl::StrCat("kafka-", victim);
  const int acked_at_kill = acknowledged.load();
  const absl::Time killed_at = absl::Now();
  ASSERT_TRUE(kurt::testing::Stack("stop", "--ha " + killed_, "KURT_STACK_SIGNAL=KILL"))
      << "SIGKILL of " << killed_;
  std::cerr << "SIGKILL of " << killed_ << " (leader of partition 0) with " << acked_at_kill
            << " of " << kClicks << " clicks acknowledged\n";

  for (std::thread& t : publishers) {
    t.join();
  }
  const absl::Duration produce_time = absl::Now() - start;
  const TopicLayout during = Layout(topic);
  for (int p = 0; p < kPartitions; ++p) {
    EXPECT_NE(during.leaders.at(p), victim) << "partition " << p << " moved to a live broker";
  }

  int acked = 0;
  int refused = 0;
  for (int i = 0; i < kClicks; ++i) {
    acked += outcome[i] == kAcknowledged;
    refused += outcome[i] == kRefused;
  }
  EXPECT_EQ(refused, 0) << "a broker's loss must not fail a click that waits 60 s";

  // Analytics catches up: the counters reach every acknowledged click, then stay put a while
  // (a late duplicate would show up).
  pg::PgPool& primary = cluster.primary();
  const int64_t counted =
      analytics::testing::WaitForSettledHourly(primary, acked, absl::Seconds(120));
  consumer->module->Stop();

  const std::map<std::string, int64_t> hourly = analytics::testing::HourlyPerCode(primary);
  const std::map<std::string, int64_t> raw = RawPerCode(primary);
  const analytics::testing::Counts totals = analytics::testing::CountAll(primary);
  int lost = 0;
  int doubled = 0;
  int unacked_counted = 0;
  for (int i = 0; i < kClicks; ++i) {
    auto h = hourly.find(codes[i]);
    auto r = raw.find(codes[i]);
    const int64_t n = h == hourly.end() ? 0 : h->second;
    const int64_t rows = r == raw.end() ? 0 : r->second;
    if (n > 1 || rows > 1 || n != rows) {
      ++doubled;
    } else if (outcome[i] == kAcknowledged && n == 0) {
      ++lost;
    } else if (outcome[i] != kAcknowledged && n == 1) {
      ++unacked_counted;
    }
  }
  std::cerr << "clicks: " << kClicks << " sent in " << absl::FormatDuration(produce_time) << ", "
            << acked << " acknowledged, " << refused << " refused; counted " << counted
            << " (raw rows " << totals.raw << ", distinct event ids " << totals.distinct_events
            << "); lost " << lost << ", counted twice " << doubled << ", counted unacknowledged "
            << unacked_counted << "\n"
            << "producer stall after the SIGKILL: longest time without an acknowledgement "
            << absl::FormatDuration(longest_gap) << ", slowest click "
            << absl::FormatDuration(slowest) << " (killed "
            << absl::FormatDuration(killed_at - start) << " into the run)\n";
  EXPECT_EQ(lost, 0) << "acknowledged clicks missing from PostgreSQL";
  EXPECT_EQ(doubled, 0) << "clicks counted more than once";
  EXPECT_EQ(counted, acked + unacked_counted);
  EXPECT_EQ(totals.raw, counted);
  EXPECT_EQ(totals.distinct_events, counted);
  EXPECT_EQ(totals.referrers, counted);
  EXPECT_EQ(totals.agents, counted);

  // The broker comes back and catches up (tools/stack waits for three in-sync replicas of its
  // topics); so does this test's topic.
  ASSERT_TRUE(kurt::testing::Stack("start", "--ha " + killed_)) << "restarting " << killed_;
  killed_.clear();
  const absl::Time caught_up_by = absl::Now() + absl::Seconds(60);
  TopicLayout after;
  for (;;) {
    after = Layout(topic);
    bool all = after.in_sync.size() == static_cast<size_t>(kPartitions);
    for (int isr : after.in_sync) {
      all = all && isr == 3;
    }
    if (all || absl::Now() > caught_up_by) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(200));
  }
  for (int p = 0; p < kPartitions; ++p) {
    EXPECT_EQ(after.in_sync.at(p), 3) << "partition " << p << " has its three replicas in sync";
  }
}

}  // namespace
}  // namespace kurt
