// Proves the local stack is made of real, working servers: streaming replication, Redis, and a
// Kafka broker with consumer groups and committed offsets, through Kurt's platform clients.
#include <atomic>
#include <map>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "platform/kafka/kafka.h"
#include "platform/pg/pg.h"
#include "platform/redis/redis.h"
#include "tests/support/stack_env.h"

namespace kurt {
namespace {

using testing::ScratchDatabase;

pg::PoolOptions Pool(const std::string& url, const std::string& name) {
  pg::PoolOptions o;
  o.url = url;
  o.name = name;
  o.max_connections = 2;
  return o;
}

TEST(StackTest, RowWrittenOnPrimaryIsReadFromStreamingReplica) {
  ScratchDatabase db;
  pg::PgPool primary(Pool(db.primary_url(), "primary"));
  pg::PgPool replica(Pool(db.replica_url(), "replica"));

  const std::string value = testing::RandomName("v");
  ASSERT_TRUE(primary
                  .Transact([&](pqxx::work& tx) {
                    tx.exec("CREATE TABLE replication_probe (v text)");
                    tx.exec_params("INSERT INTO replication_probe VALUES ($1)", value);
                  })
                  .ok());

  bool in_recovery = false;
  std::string seen;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (seen.empty() && absl::Now() < deadline) {
    absl::Status s = replica.Run([&](pqxx::connection& c) {
      pqxx::nontransaction tx(c);
      in_recovery = tx.exec1("SELECT pg_is_in_recovery()")[0].as<bool>();
      auto r = tx.exec("SELECT v FROM replication_probe");
      if (!r.empty()) {
        seen = r[0][0].as<std::string>();
      }
    });
    if (seen.empty()) {
      absl::SleepFor(absl::Milliseconds(20));
    }
    (void)s;  // the table may not have been replayed yet
  }
  EXPECT_TRUE(in_recovery) << "the replica must be a hot standby, not a second primary";
  EXPECT_EQ(seen, value);

  // Writes are refused on the replica: it really is read-only. (UNAVAILABLE: a write that
  // reaches a standby is one to retry on the primary.)
  absl::Status write = replica.Transact(
      [&](pqxx::work& tx) { tx.exec("INSERT INTO replication_probe VALUES ('x')"); });
  EXPECT_EQ(write.code(), absl::StatusCode::kUnavailable) << write;
  EXPECT_NE(write.message().find("read-only"), std::string::npos) << write;

  int streaming = 0;
  ASSERT_TRUE(primary
                  .Run([&](pqxx::connection& c) {
                    pqxx::nontransaction tx(c);
                    streaming = tx.exec1(
                                      "SELECT count(*) FROM pg_stat_replication "
                                      "WHERE state = 'streaming'")[0]
                                    .as<int>();
                  })
                  .ok());
  EXPECT_GE(streaming, 1);
}

TEST(StackTest, ClusterReadsFromReplicaAndFallsBackToPrimary) {
  ScratchDatabase db;
  pg::ClusterOptions o;
  o.primary = Pool(db.primary_url(), "primary");
  o.replicas = {Pool(db.replica_url(), "replica0")};
  pg::PgCluster cluster(o);
  EXPECT_TRUE(cluster.ReplicaAvailable());
  EXPECT_NE(&cluster.ReadPool(), &cluster.primary());
  bool recovery = false;
  ASSERT_TRUE(cluster
                  .RunRead([&](pqxx::connection& c) {
                    pqxx::nontransaction tx(c);
                    recovery = tx.exec1("SELECT pg_is_in_recovery()")[0].as<bool>();
                  })
                  .ok());
  EXPECT_TRUE(recovery);

  // A replica that cannot be reached is never chosen; reads go to the primary.
  pg::ClusterOptions down = o;
  down.replicas = {Pool("postgresql://kurt@127.0.0.1:1/kurt", "dead")};
  down.replicas[0].connect_timeout = absl::Seconds(1);
  pg::PgCluster degraded(down);
  EXPECT_FALSE(degraded.ReplicaAvailable());
  EXPECT_EQ(&degraded.ReadPool(), &degraded.primary());
  EXPECT_TRUE(degraded
                  .RunRead([](pqxx::connection& c) {
                    pqxx::nontransaction tx(c);
                    tx.exec("SELECT 1");
                  })
                  .ok());
}

// tests/support's AllRowsAsText, which the tests that a secret is stored nowhere rely on, sees
// every table of every schema.
TEST(StackTest, AllRowsAsTextHoldsEveryRowOfEveryTable) {
  ScratchDatabase db(/*apply_migrations=*/false);
  pg::PgPool primary(Pool(db.primary_url(), "primary"));
  ASSERT_TRUE(primary
                  .Transact([&](pqxx::work& tx) {
                    tx.exec("CREATE TABLE one (v text, n int)");
                    tx.exec("CREATE SCHEMA other");
                    tx.exec("CREATE TABLE other.two (v text)");
                    tx.exec("INSERT INTO one VALUES ('first', 1), ('second', 2)");
                    tx.exec("INSERT INTO other.two VALUES ('third')");
                  })
                  .ok());
  const std::string all = testing::AllRowsAsText(db.primary_url());
  for (const char* row : {"(first,1)\n", "(second,2)\n", "(third)\n"}) {
    EXPECT_NE(all.find(row), std::string::npos) << row << " is not in " << all;
  }
  EXPECT_EQ(all.size(), std::string("(first,1)\n(second,2)\n(third)\n").size()) << all;
}

TEST(StackTest, RedisKeyRoundTripsAndExpires) {
  auto options = redis::Options::FromUrl(testing::RedisUrl());
  ASSERT_TRUE(options.ok());
  redis::RedisClient client(*options);
  const std::string key = testing::RandomName("kurt:test:");
  ASSERT_TRUE(client.Set(key, "value\0with-nul", absl::Milliseconds(300)).ok());
  auto got = client.Get(key);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(**got, "value\0with-nul");
  absl::SleepFor(absl::Milliseconds(400));
  got = client.Get(key);
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->has_value()) << "the TTL must have expired the key";
  auto reply = client.Command({"INCRBY", key, "5"});
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->integer, 5);
  EXPECT_TRUE(client.Del({key}).ok());
}

// Parameter: whether the consumer fetches the next batch while the handler works (pipelined).
class KafkaStackTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    topic_ = testing::RandomName("kurt.test.");
    group_ = testing::RandomName("kurt-test-");
    testing::CreateTopic(topic_, 3);
    kafka::ProducerOptions po;
    po.brokers = testing::KafkaBrokers();
    auto p = kafka::KafkaProducer::Create(po);
    ASSERT_TRUE(p.ok()) << p.status();
    producer_ = std::move(*p);
  }

  // Produces n messages and waits until the broker acknowledged each.
  void ProduceAcknowledged(int first, int n) {
    std::atomic<int> acked{0}, failed{0};
    for (int i = first; i < first + n; ++i) {
      ASSERT_TRUE(producer_
                      ->Produce(topic_, absl::StrCat("key", i % 7), absl::StrCat("m", i),
                                {{"event-id", absl::StrCat("e", i)}},
                                [&](const absl::Status& s) { (s.ok() ? acked : failed)++; })
                      .ok());
    }
    ASSERT_TRUE(producer_->Flush(absl::Seconds(30)).ok());
    EXPECT_EQ(acked.load(), n);
    EXPECT_EQ(failed.load(), 0);
  }

  // Runs a consumer of the group until it has seen `want` distinct messages (or 30 s pass).
  // With `handler_delay`, each call takes that long (outside the lock), and the test checks that
  // calls never overlap and that each partition's messages come in offset order.
  std::map<std::string, int> Consume(size_t want, int fail_first_calls = 0,
                                     absl::Duration handler_delay = absl::ZeroDuration(),
                                     int max_batch = 500) {
    std::map<std::string, int> seen;
    std::map<int32_t, int64_t> last_offset;
    std::mutex mu;
    int calls = 0;
    std::atomic<int> running{0};
    kafka::ConsumerOptions co;
    co.brokers = testing::KafkaBrokers();
    co.group_id = group_;
    co.topics = {topic_};
    co.retry_backoff = absl::Milliseconds(10);
    co.pipelined = GetParam();
    co.max_batch = max_batch;
    std::unique_ptr<kafka::KafkaConsumer> consumer;
    auto c = kafka::KafkaConsumer::Create(co, [&](const std::vector<kafka::Message>& batch) {
      EXPECT_EQ(running.fetch_add(1), 0) << "two batches in the handler at once";
      absl::SleepFor(handler_delay);
      std::lock_guard<std::mutex> l(mu);
      running.fetch_sub(1);
      bool fail = ++calls <= fail_first_calls;
      for (const auto& m : batch) {
        EXPECT_EQ(m.Header("event-id").value(), "e" + m.value.substr(1));
        seen[m.value]++;
        if (!fail) {
          auto [it, first] = last_offset.try_emplace(m.partition, m.offset);
          if (!first) {
            EXPECT_EQ(m.offset, it->second + 1) << "partition " << m.partition << " out of order";
            it->second = m.offset;
          }
        }
      }
      if (fail) {
        return absl::UnavailableError("simulated failure");
      }
      return absl::OkStatus();
    });
    EXPECT_TRUE(c.ok()) << c.status();
    consumer = std::move(*c);
    std::thread runner([&] { consumer->Run(); });
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    for (;;) {
      {
        std::lock_guard<std::mutex> l(mu);
        if (seen.size() >= want || absl::Now() > deadline) {
          break;
        }
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    absl::SleepFor(absl::Milliseconds(300));  // let the last commit happen
    consumer->Stop();
    runner.join();
    consumer.reset();
    return seen;
  }

  std::string topic_, group_;
  std::unique_ptr<kafka::KafkaProducer> producer_;
};

TEST_P(KafkaStackTest, GroupConsumesEverythingAndCommitsOffsets) {
  ProduceAcknowledged(0, 300);
  auto seen = Consume(300);
  EXPECT_EQ(seen.size(), 300u);
  std::vector<int64_t> committed = testing::CommittedOffsets(group_, topic_, 3);
  int64_t total = 0;
  for (int64_t o : committed) {
    total += std::max<int64_t>(0, o);
  }
  EXPECT_EQ(total, 300) << "every consumed message's offset is committed";

  // A new member of the group resumes after the committed offsets: only new messages come.
  ProduceAcknowledged(300, 20);
  auto more = Consume(20);
  EXPECT_EQ(more.size(), 20u);
  for (const auto& [value, count] : more) {
    EXPECT_GE(std::stoi(value.substr(1)), 300) << value << " was already committed";
  }
}

TEST_P(KafkaStackTest, FailedBatchIsRedeliveredAndNotCommittedUntilItSucceeds) {
  ProduceAcknowledged(0, 50);
  auto seen = Consume(50, /*fail_first_calls=*/2);
  EXPECT_EQ(seen.size(), 50u);
  int redelivered = 0;
  for (const auto& [value, count] : seen) {
    redelivered += count > 1;
  }
  EXPECT_GT(redelivered, 0) << "the failed batch must come again";
  int64_t total = 0;
  for (int64_t o : testing::CommittedOffsets(group_, topic_, 3)) {
    total += std::max<int64_t>(0, o);
  }
  EXPECT_EQ(total, 50);
}

TEST_P(KafkaStackTest, SlowHandlerGetsBatchesOneAtATimeInOrderAndAllIsCommitted) {
  ProduceAcknowledged(0, 400);
  auto seen = Consume(400, /*fail_first_calls=*/0, absl::Milliseconds(30), /*max_batch=*/40);
  EXPECT_EQ(seen.size(), 400u);
  for (const auto& [value, count] : seen) {
    EXPECT_EQ(count, 1) << value;
  }
  int64_t total = 0;
  for (int64_t o : testing::CommittedOffsets(group_, topic_, 3)) {
    total += std::max<int64_t>(0, o);
  }
  EXPECT_EQ(total, 400);
}

INSTANTIATE_TEST_SUITE_P(Modes, KafkaStackTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Pipelined" : "OneBatchAtATime";
                         });

}  // namespace
}  // namespace kurt
