// The analytics service against the real stack: PostgreSQL primary + streaming replica and Kafka,
// each test with its own scratch database and topics.
#include <librdkafka/rdkafkacpp.h>

#include <future>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "kurt/analytics/v1/analytics.grpc.pb.h"
#include "platform/grpc/server.h"
#include "services/analytics/analytics_module.h"
#include "services/analytics/click_store.h"
#include "tests/analytics/test_clicks.h"
#include "tests/support/stack_env.h"

namespace kurt::analytics {
namespace {

namespace v1 = kurt::analytics::v1;
using testing::CountAll;
using testing::CountHourly;

absl::Time T(const char* rfc3339) {
  absl::Time t;
  std::string err;
  EXPECT_TRUE(absl::ParseTime(absl::RFC3339_full, rfc3339, &t, &err)) << err;
  return t;
}

void SetTime(absl::Time t, google::protobuf::Timestamp* out) {
  out->set_seconds(absl::ToUnixSeconds(t));
}

kafka::Message Message(const std::string& topic, int32_t partition, int64_t offset,
                       const std::string& code, absl::Time time, const std::string& referrer = "",
                       const std::string& ua = "") {
  kafka::Message m;
  m.topic = topic;
  m.partition = partition;
  m.offset = offset;
  m.key = code;
  m.value = testing::ClickValue(absl::StrCat(topic, "-", partition, "-", offset), code, time,
                                referrer, ua);
  return m;
}

// Every message of partition 0 of a topic, from the beginning (a plain consumer: no group).
// Copied out: a librdkafka message keeps its client alive, and the client's destruction waits.
std::vector<kafka::Message> ReadAll(const std::string& topic, int expected) {
  std::string err;
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  conf->set("bootstrap.servers", kurt::testing::KafkaBrokers(), err);
  std::unique_ptr<RdKafka::Consumer> c(RdKafka::Consumer::create(conf.get(), err));
  std::unique_ptr<RdKafka::Topic> t(RdKafka::Topic::create(c.get(), topic, nullptr, err));
  c->start(t.get(), 0, RdKafka::Topic::OFFSET_BEGINNING);
  std::vector<kafka::Message> out;
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (static_cast<int>(out.size()) < expected && absl::Now() < deadline) {
    std::unique_ptr<RdKafka::Message> m(c->consume(t.get(), 0, 200));
    if (m->err() != RdKafka::ERR_NO_ERROR) {
      continue;
    }
    kafka::Message copy;
    copy.offset = m->offset();
    if (m->key()) {
      copy.key = *m->key();
    }
    copy.value.assign(static_cast<const char*>(m->payload()), m->len());
    if (RdKafka::Headers* h = m->headers()) {
      for (const auto& header : h->get_all()) {
        copy.headers.emplace_back(
            header.key(),
            std::string(static_cast<const char*>(header.value()), header.value_size()));
      }
    }
    out.push_back(std::move(copy));
  }
  c->stop(t.get(), 0);
  return out;
}

std::string HeaderOf(const kafka::Message& m, const std::string& name) {
  return std::string(m.Header(name).value_or(""));
}

class AnalyticsIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pg::ClusterOptions po = db_.ClusterOptions();
    po.primary.max_connections = 8;
    po.replicas[0].max_connections = 4;
    po.replicas[0].acquire_timeout = absl::Milliseconds(500);
    po.max_replica_lag = absl::Seconds(2);
    po.check_interval = absl::Milliseconds(100);
    cluster_ = std::make_unique<pg::PgCluster>(po);

    topic_ = kurt::testing::RandomName("kurt.test.clicks.");
    dlq_topic_ = kurt::testing::RandomName("kurt.test.clicks.dlq.");
    group_ = kurt::testing::RandomName("kurt-test-analytics-");
    kafka::ProducerOptions ko;
    ko.brokers = kurt::testing::KafkaBrokers();
    producer_ = std::move(*kafka::KafkaProducer::Create(ko));

    analytics_ = NewAnalytics(&registry_);
    processor_ = &analytics_->processor();
  }

  void TearDown() override {
    if (server_) {
      server_->Shutdown();
    }
    analytics_->Stop();
    ASSERT_TRUE(kurt::testing::PauseReplicaReplay(false).ok());
  }

  // An analytics instance on this test's database, topics and group, with small batches; its
  // metrics go to `registry`. Another instance of the same group plays another owner of the
  // partitions.
  std::unique_ptr<AnalyticsModule> NewAnalytics(metrics::Registry* registry) {
    AnalyticsConfig config;
    config.kafka_brokers = kurt::testing::KafkaBrokers();
    config.clicks_topic = topic_;
    config.dead_letter_topic = dlq_topic_;
    config.consumer_group = group_;
    config.batch_max_messages = 500;
    config.batch_wait = absl::Milliseconds(20);
    config.lag_refresh = absl::Milliseconds(200);
    config.write_parallelism = 1;
    config.now = [] { return T("2024-03-10T12:00:00Z"); };
    return AnalyticsModule::Create(config, {cluster_.get(), producer_.get(), registry});
  }

  void CreateTopics(int partitions) {
    kurt::testing::CreateTopic(topic_, partitions);
    kurt::testing::CreateTopic(dlq_topic_, 1);
  }

  void StartConsumer() { ASSERT_TRUE(analytics_->Start().ok()); }

  // Waits until click_hourly sums to n (and returns the sum it last saw).
  int64_t WaitForHourly(int64_t n, absl::Duration timeout = absl::Seconds(60)) {
    const absl::Time deadline = absl::Now() + timeout;
    int64_t seen = 0;
    while ((seen = CountHourly(cluster_->primary())) < n && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(50));
    }
    return seen;
  }

  void StartStatsServer() {
    platform::GrpcServerOptions go;
    go.name = "analytics";
    go.metrics_port = -1;
    server_ = std::make_unique<platform::GrpcServer>(go, &registry_);
    server_->AddService(analytics_->service());
    ASSERT_TRUE(server_->Start().ok());
    stub_ = v1::AnalyticsService::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", server_->grpc_port()), grpc::InsecureChannelCredentials()));
  }

  grpc::Status Stats(const std::string& account, const v1::GetLinkStatsRequest& req,
                     v1::LinkStats* out) {
    grpc::ClientContext ctx;
    if (!account.empty()) {
      ctx.AddMetadata("x-kurt-account-id", account);
    }
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return stub_->GetLinkStats(&ctx, req, out);
  }

  kurt::testing::ScratchDatabase db_;
  metrics::Registry registry_;
  metrics::Registry second_registry_;  // a second instance's
  std::unique_ptr<pg::PgCluster> cluster_;
  std::string topic_, dlq_topic_, group_;
  std::unique_ptr<kafka::KafkaProducer> producer_;
  std::unique_ptr<AnalyticsModule> analytics_;
  ClickProcessor* processor_ = nullptr;  // analytics_'s
  std::unique_ptr<platform::GrpcServer> server_;
  std::unique_ptr<v1::AnalyticsService::Stub> stub_;
};

TEST_F(AnalyticsIntegrationTest, ConsumesClicksIntoRawRowsAggregatesAndOffsets) {
  CreateTopics(3);
  auto codes = testing::InsertLinks(cluster_->primary(), "acct", "int", 20);
  auto expected = testing::PublishClicks(*producer_, topic_, codes, 3000);
  StartConsumer();
  ASSERT_EQ(WaitForHourly(3000), 3000);
  testing::Counts c = CountAll(cluster_->primary());
  EXPECT_EQ(c.raw, 3000);
  EXPECT_EQ(c.distinct_events, 3000);
  EXPECT_EQ(c.referrers, 3000);
  EXPECT_EQ(c.agents, 3000);
  EXPECT_EQ(c.offsets, 3000);  // next offsets = the ends of the three partitions
  EXPECT_EQ(testing::HourlyPerCode(cluster_->primary()), expected);

  // The lag metric reports each assigned partition, caught up.
  auto lag_series = [&](int partition) {
    return absl::StrCat("kurt_kafka_consumer_lag{topic=\"", topic_, "\",partition=\"", partition,
                        "\",group=\"", group_, "\"} 0\n");
  };
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  std::string page;
  auto caught_up = [&] {
    page = registry_.Render();
    for (int p = 0; p < 3; ++p) {
      if (page.find(lag_series(p)) == std::string::npos) {
        return false;
      }
    }
    return true;
  };
  while (!caught_up() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_TRUE(caught_up()) << page;
}

TEST_F(AnalyticsIntegrationTest, ResumesFromTheOffsetsInTheDatabase) {
  CreateTopics(3);
  auto codes = testing::InsertLinks(cluster_->primary(), "acct", "res", 5);
  testing::PublishClicks(*producer_, topic_, codes, 600);
  StartConsumer();
  ASSERT_EQ(WaitForHourly(600), 600);
  analytics_->Stop();

  // Nothing was committed to Kafka: a new member of the group starts where the database says,
  // so it reads only the new clicks (none is even seen twice).
  testing::PublishClicks(*producer_, topic_, codes, 400);
  analytics_ = NewAnalytics(&second_registry_);
  processor_ = &analytics_->processor();
  StartConsumer();
  ASSERT_EQ(WaitForHourly(1000), 1000);
  testing::Counts c = CountAll(cluster_->primary());
  EXPECT_EQ(c.raw, 1000);
  EXPECT_EQ(c.offsets, 1000);
  std::string page = second_registry_.Render();
  EXPECT_NE(page.find("kurt_analytics_clicks_total{outcome=\"stored\"} 400"), std::string::npos)
      << page;
  EXPECT_NE(page.find("kurt_analytics_clicks_total{outcome=\"duplicate\"} 0\n"), std::string::npos)
      << page;
  std::vector<int64_t> committed = kurt::testing::CommittedOffsets(group_, topic_, 3);
  for (int64_t o : committed) {
    EXPECT_LT(o, 0) << "offsets must not be committed to Kafka";
  }
}

// Links publishes a click again when it cannot tell whether the first event arrived (a retried
// resolve, a batch of cached hits reported again): the same code and event id at another offset.
// Each click counts once: recent ones by the consumer's window, old ones (hits held for an hour)
// by a lookup, and both again after a new consumer takes the partitions over.
TEST_F(AnalyticsIntegrationTest, AClickPublishedAgainCountsOnce) {
  CreateTopics(2);
  auto codes = testing::InsertLinks(cluster_->primary(), "acct", "dup", 4);
  const absl::Time now = absl::Now();
  auto publish = [&](int from, int to) {
    for (int i = from; i < to; ++i) {
      const std::string& code = codes[static_cast<size_t>(i) % codes.size()];
      ASSERT_TRUE(producer_
                      ->Produce(topic_, code,
                                testing::ClickValue(absl::StrCat("recent-", i), code,
                                                    now + absl::Milliseconds(i)))
                      .ok());
      ASSERT_TRUE(producer_
                      ->Produce(topic_, code,
                                testing::ClickValue(absl::StrCat("old-", i), code,
                                                    now - absl::Hours(1) + absl::Milliseconds(i)))
                      .ok());
    }
    ASSERT_TRUE(producer_->Flush(absl::Seconds(10)).ok());
  };
  // Every click twice, the second events after all the first ones.
  publish(0, 100);
  publish(0, 100);
  StartConsumer();
  auto wait_offsets = [&](int64_t n) {
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (CountAll(cluster_->primary()).offsets < n && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(50));
    }
    return CountAll(cluster_->primary()).offsets;
  };
  ASSERT_EQ(wait_offsets(400), 400);
  testing::Counts c = CountAll(cluster_->primary());
  EXPECT_EQ(c.raw, 200);
  EXPECT_EQ(c.distinct_events, 200);
  EXPECT_EQ(CountHourly(cluster_->primary()), 200);
  std::string page = registry_.Render();
  EXPECT_NE(page.find("kurt_analytics_clicks_total{outcome=\"repeated\"} 200"), std::string::npos)
      << page;

  // A new consumer: the recent clicks from its window's seed, the old ones by lookup.
  analytics_->Stop();
  analytics_ = NewAnalytics(&second_registry_);
  processor_ = &analytics_->processor();
  publish(0, 100);
  publish(100, 110);
  StartConsumer();
  ASSERT_EQ(wait_offsets(620), 620);
  c = CountAll(cluster_->primary());
  EXPECT_EQ(c.raw, 220);
  EXPECT_EQ(CountHourly(cluster_->primary()), 220);
  page = second_registry_.Render();
  EXPECT_NE(page.find("kurt_analytics_clicks_total{outcome=\"repeated\"} 200"), std::string::npos)
      << page;
}

TEST_F(AnalyticsIntegrationTest, BadEventsGoToTheDeadLetterTopicAndConsumptionGoesOn) {
  CreateTopics(1);
  auto codes = testing::InsertLinks(cluster_->primary(), "acct", "dlq", 1);
  const absl::Time now = absl::Now();
  ASSERT_TRUE(producer_
                  ->Produce(topic_, codes[0], testing::ClickValue("ok-1", codes[0], now),
                            {{"event-id", "ok-1"}})
                  .ok());
  ASSERT_TRUE(
      producer_->Produce(topic_, "garbage", "\xff\xff\xff not a protobuf", {{"event-id", "bad-1"}})
          .ok());
  ASSERT_TRUE(producer_
                  ->Produce(topic_, "ghost", testing::ClickValue("ghost-1", "ghost", now),
                            {{"event-id", "ghost-1"}})
                  .ok());
  ASSERT_TRUE(producer_
                  ->Produce(topic_, codes[0], testing::ClickValue("ok-2", codes[0], now),
                            {{"event-id", "ok-2"}})
                  .ok());
  ASSERT_TRUE(producer_->Flush(absl::Seconds(10)).ok());
  StartConsumer();
  ASSERT_EQ(WaitForHourly(2), 2);
  testing::Counts c = CountAll(cluster_->primary());
  EXPECT_EQ(c.raw, 2);
  EXPECT_EQ(c.offsets, 4) << "the consumer moves on past the bad events";

  auto letters = ReadAll(dlq_topic_, 2);
  ASSERT_EQ(letters.size(), 2u);
  EXPECT_EQ(HeaderOf(letters[0], "dlq-reason"), "bad-protobuf");
  EXPECT_EQ(HeaderOf(letters[0], "event-id"), "bad-1");
  EXPECT_EQ(HeaderOf(letters[0], "dlq-topic"), topic_);
  EXPECT_EQ(HeaderOf(letters[0], "dlq-partition"), "0");
  EXPECT_EQ(HeaderOf(letters[0], "dlq-offset"), "1");
  EXPECT_EQ(letters[0].value, "\xff\xff\xff not a protobuf");
  EXPECT_EQ(HeaderOf(letters[1], "dlq-reason"), "unknown-code");
  EXPECT_EQ(HeaderOf(letters[1], "dlq-offset"), "2");
  EXPECT_EQ(letters[1].key, "ghost");

  // More clicks keep flowing after the bad ones.
  ASSERT_TRUE(
      producer_->Produce(topic_, codes[0], testing::ClickValue("ok-3", codes[0], now)).ok());
  ASSERT_TRUE(producer_->Flush(absl::Seconds(10)).ok());
  EXPECT_EQ(WaitForHourly(3), 3);
}

TEST_F(AnalyticsIntegrationTest, RawRowsKeepEveryFieldExactly) {
  auto codes = testing::InsertLinks(cluster_->primary(), "acct", "raw", 1);
  const std::string referrer = "https://r.example/a\tb\\c\nd\re \\N \xc3\xa9\xe2\x82\xac";
  const std::string ua = "Mozilla/5.0 \"quoted\" \\. \t end";
  const absl::Time t = absl::FromUnixMicros(int64_t{1709635500123456});
  kafka::Message m = Message("t", 2, 77, codes[0], t, referrer, ua);
  ASSERT_TRUE(processor_->Handle({m}).ok());
  ASSERT_TRUE(cluster_->primary()
                  .Run([&](pqxx::connection& c) {
                    pqxx::nontransaction tx(c);
                    pqxx::row r = tx.exec1(
                        "SELECT code, (extract(epoch FROM click_time) * 1000000)::bigint, "
                        "event_id, referrer, user_agent, client_hash, kafka_partition, "
                        "kafka_offset, tableoid::regclass::text FROM clicks");
                    EXPECT_EQ(r[0].as<std::string>(), codes[0]);
                    EXPECT_EQ(r[1].as<int64_t>(), 1709635500123456);
                    EXPECT_EQ(r[2].as<std::string>(), "t-2-77");
                    EXPECT_EQ(r[3].as<std::string>(), referrer);
                    EXPECT_EQ(r[4].as<std::string>(), ua);
                    EXPECT_EQ(r[5].as<std::string>(), "0123456789abcdef");
                    EXPECT_EQ(r[6].as<int>(), 2);
                    EXPECT_EQ(r[7].as<int64_t>(), 77);
                    // 5 March 2024 has no partition here: the default one holds it.
                    EXPECT_EQ(r[8].as<std::string>(), "clicks_default");
                  })
                  .ok());
  // The day's partition, created later, takes the row out of the default partition.
  ASSERT_TRUE(PgClickStore(&cluster_->primary()).EnsurePartitions(t, 1).ok());
  ASSERT_TRUE(
      cluster_->primary()
          .Run([&](pqxx::connection& c) {
            pqxx::nontransaction tx(c);
            EXPECT_EQ(tx.exec1("SELECT tableoid::regclass::text FROM clicks")[0].as<std::string>(),
                      "clicks_y2024m03d05");
          })
          .ok());
}

TEST_F(AnalyticsIntegrationTest, ARefusedCopyCountsNothingAndTheBatchCountsOnceWhenItComesAgain) {
  auto codes = testing::InsertLinks(cluster_->primary(), "acct", "cpy", 2);
  const absl::Time now = absl::Now();
  std::vector<kafka::Message> batch;
  for (int64_t o = 0; o < 500; ++o) {
    batch.push_back(Message("t", 0, o, codes[o % 2], now,
                            o == 321 ? "https://refused.example/" : "https://ok.example/"));
  }
  auto exec = [&](const std::string& sql) {
    ASSERT_TRUE(cluster_->primary()
                    .Run([&](pqxx::connection& c) { pqxx::nontransaction(c).exec(sql); })
                    .ok());
  };
  // The database refuses one row in the middle of the COPY.
  exec(
      "ALTER TABLE clicks ADD CONSTRAINT refuse_one "
      "CHECK (referrer <> 'https://refused.example/')");
  absl::Status s = processor_->Handle(batch);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_NE(s.message().find("refuse_one"), std::string::npos) << s;
  testing::Counts c = CountAll(cluster_->primary());
  EXPECT_EQ(c.raw, 0);
  EXPECT_EQ(c.hourly, 0);
  EXPECT_EQ(c.offsets, 0);

  // The same connections serve the batch when it comes again.
  exec("ALTER TABLE clicks DROP CONSTRAINT refuse_one");
  ASSERT_TRUE(processor_->Handle(batch).ok());
  c = CountAll(cluster_->primary());
  EXPECT_EQ(c.raw, 500);
  EXPECT_EQ(c.distinct_events, 500);
  EXPECT_EQ(c.hourly, 500);
  EXPECT_EQ(c.referrers, 500);
  EXPECT_EQ(c.offsets, 500);
}

TEST_F(AnalyticsIntegrationTest, AFormerOwnerWaitsForTheOffsetLockAndSkipsWhatWasCounted) {
  auto codes = testing::InsertLinks(cluster_->primary(), "acct", "fen", 3);
  const absl::Time now = absl::Now();
  auto range = [&](int64_t from, int64_t to) {
    std::vector<kafka::Message> batch;
    for (int64_t o = from; o < to; ++o) {
      batch.push_back(Message(topic_, 0, o, codes[o % codes.size()], now));
    }
    return batch;
  };
  ASSERT_TRUE(processor_->Handle(range(0, 100)).ok());

  // Another owner holds the partition's offset row (mid-transaction) …
  pg::PoolOptions o;
  o.url = db_.primary_url();
  o.max_connections = 1;
  pg::PgPool other(o);
  std::promise<void> locked, release;
  std::thread owner([&] {
    absl::Status s = other.Transact([&](pqxx::work& tx) {
      tx.exec_params("SELECT 1 FROM analytics_consumer_offsets WHERE group_id = $1 FOR UPDATE",
                     group_);
      locked.set_value();
      release.get_future().wait();
    });
    EXPECT_TRUE(s.ok()) << s;
  });
  locked.get_future().wait();
  // … so a batch overlapping its work waits for it …
  std::unique_ptr<AnalyticsModule> former_owner = NewAnalytics(&second_registry_);
  ClickProcessor& former = former_owner->processor();
  auto handled = std::async(std::launch::async, [&] { return former.Handle(range(50, 150)); });
  EXPECT_EQ(handled.wait_for(std::chrono::milliseconds(500)), std::future_status::timeout);
  release.set_value();
  owner.join();
  // … and then counts only the messages past the stored offset.
  ASSERT_TRUE(handled.get().ok());
  EXPECT_EQ(CountHourly(cluster_->primary()), 150);
  // A stale batch of a former owner changes nothing.
  ASSERT_TRUE(former.Handle(range(0, 120)).ok());
  testing::Counts c = CountAll(cluster_->primary());
  EXPECT_EQ(c.hourly, 150);
  EXPECT_EQ(c.raw, 150);
  EXPECT_EQ(c.distinct_events, 150);
  EXPECT_EQ(c.offsets, 150);
}

TEST_F(AnalyticsIntegrationTest, ConcurrentOwnersOfOnePartitionCountEachClickOnce) {
  auto codes = testing::InsertLinks(cluster_->primary(), "acct", "cc", 7);
  const absl::Time now = absl::Now();
  const int64_t n = 3000;
  std::vector<kafka::Message> all;
  for (int64_t o = 0; o < n; ++o) {
    all.push_back(Message(topic_, 0, o, codes[o % 7], now));
  }
  // Two consumers that both believe they own partition 0, with different batch sizes.
  auto run = [&](ClickProcessor* p, int64_t step) {
    for (int64_t from = 0; from < n; from += step) {
      std::vector<kafka::Message> batch(all.begin() + from, all.begin() + std::min(n, from + step));
      absl::Status s;
      do {
        s = p->Handle(batch);
      } while (absl::IsAborted(s));  // a deadlock victim retries, as the consumer would
      ASSERT_TRUE(s.ok()) << s;
    }
  };
  std::unique_ptr<AnalyticsModule> other_owner = NewAnalytics(&second_registry_);
  std::thread a([&] { run(processor_, 170); });
  std::thread b([&] { run(&other_owner->processor(), 230); });
  a.join();
  b.join();
  testing::Counts c = CountAll(cluster_->primary());
  EXPECT_EQ(c.hourly, n);
  EXPECT_EQ(c.raw, n);
  EXPECT_EQ(c.distinct_events, n);
  EXPECT_EQ(c.offsets, n);
}

TEST_F(AnalyticsIntegrationTest, StatsTotalsSeriesTopsAndOwnership) {
  auto mine = testing::InsertLinks(cluster_->primary(), "alice", "st", 2);
  auto theirs = testing::InsertLinks(cluster_->primary(), "bob", "bobs", 1);
  const std::string ff = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0";
  std::vector<kafka::Message> batch;
  int64_t offset = 0;
  auto add = [&](const std::string& code, const char* when, const std::string& ref,
                 const std::string& ua, int times) {
    for (int i = 0; i < times; ++i) {
      batch.push_back(Message("t", 0, offset++, code, T(when), ref, ua));
    }
  };
  add(mine[0], "2024-03-05T10:15:00Z", "https://news.example/a", ff, 3);
  add(mine[0], "2024-03-05T10:59:59Z", "", "curl/8.0", 2);
  add(mine[0], "2024-03-05T13:00:00Z", "https://search.example/?q", ff, 1);
  add(mine[0], "2024-03-07T01:00:00Z", "https://news.example/b", "Googlebot/2.1", 4);
  add(mine[0], "2024-01-01T00:00:00Z", "https://old.example/", ff, 50);  // outside the range
  add(mine[1], "2024-03-05T10:15:00Z", "", ff, 9);
  add(theirs[0], "2024-03-05T10:15:00Z", "", ff, 5);
  ASSERT_TRUE(processor_->Handle(batch).ok());
  db_.WaitForReplica();
  StartStatsServer();

  v1::GetLinkStatsRequest req;
  req.set_code(mine[0]);
  SetTime(T("2024-03-05T09:30:00Z"), req.mutable_start_time());
  SetTime(T("2024-03-05T13:30:00Z"), req.mutable_end_time());
  req.set_interval(v1::HOUR);
  v1::LinkStats stats;
  grpc::Status s = Stats("alice", req, &stats);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(stats.total_clicks(), 6);
  EXPECT_EQ(stats.start_time().seconds(), absl::ToUnixSeconds(T("2024-03-05T09:00:00Z")));
  EXPECT_EQ(stats.end_time().seconds(), absl::ToUnixSeconds(T("2024-03-05T14:00:00Z")));
  ASSERT_EQ(stats.series_size(), 5);  // 09, 10, 11, 12, 13
  std::vector<int64_t> counts;
  for (const auto& b : stats.series()) {
    counts.push_back(b.clicks());
  }
  EXPECT_EQ(counts, (std::vector<int64_t>{0, 5, 0, 0, 1}));
  EXPECT_EQ(stats.series(1).start_time().seconds(), absl::ToUnixSeconds(T("2024-03-05T10:00:00Z")));
  ASSERT_EQ(stats.top_referrers_size(), 3);
  EXPECT_EQ(stats.top_referrers(0).value(), "news.example");
  EXPECT_EQ(stats.top_referrers(0).clicks(), 3);
  EXPECT_EQ(stats.top_referrers(1).value(), "(direct)");
  EXPECT_EQ(stats.top_referrers(2).value(), "search.example");
  ASSERT_EQ(stats.top_agents_size(), 2);
  EXPECT_EQ(stats.top_agents(0).value(), "Firefox");
  EXPECT_EQ(stats.top_agents(0).clicks(), 4);
  EXPECT_EQ(stats.top_agents(1).value(), "HTTP library");

  // Days, with a limit on the top lists.
  req.set_interval(v1::DAY);
  SetTime(T("2024-03-04T00:00:00Z"), req.mutable_start_time());
  SetTime(T("2024-03-08T00:00:00Z"), req.mutable_end_time());
  req.set_limit(1);
  stats.Clear();
  ASSERT_TRUE(Stats("alice", req, &stats).ok());
  EXPECT_EQ(stats.total_clicks(), 10);
  counts.clear();
  for (const auto& b : stats.series()) {
    counts.push_back(b.clicks());
  }
  EXPECT_EQ(counts, (std::vector<int64_t>{0, 6, 0, 4}));
  ASSERT_EQ(stats.top_referrers_size(), 1);
  EXPECT_EQ(stats.top_referrers(0).value(), "news.example");
  EXPECT_EQ(stats.top_referrers(0).clicks(), 7);
  ASSERT_EQ(stats.top_agents_size(), 1);

  // Defaults: DAY over the 30 days before "now" (2024-03-10T12:00Z).
  v1::GetLinkStatsRequest defaults;
  defaults.set_code(mine[0]);
  stats.Clear();
  ASSERT_TRUE(Stats("alice", defaults, &stats).ok());
  EXPECT_EQ(stats.interval(), v1::DAY);
  EXPECT_EQ(stats.series_size(), 31);
  EXPECT_EQ(stats.total_clicks(), 10);

  // Someone else's link and an unknown one look the same.
  v1::GetLinkStatsRequest other = req;
  other.set_code(theirs[0]);
  grpc::Status not_owned = Stats("alice", other, &stats);
  EXPECT_EQ(not_owned.error_code(), grpc::StatusCode::NOT_FOUND);
  other.set_code("nosuchcode");
  grpc::Status unknown = Stats("alice", other, &stats);
  EXPECT_EQ(unknown.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(not_owned.error_message(), absl::StrCat("no link with code '", theirs[0], "'"));
  EXPECT_EQ(unknown.error_message(), "no link with code 'nosuchcode'");
  other.set_code(theirs[0]);
  stats.Clear();
  ASSERT_TRUE(Stats("bob", other, &stats).ok());
  EXPECT_EQ(stats.total_clicks(), 5);

  // No caller.
  EXPECT_EQ(Stats("", req, &stats).error_code(), grpc::StatusCode::UNAUTHENTICATED);

  // Bad requests name the field.
  v1::GetLinkStatsRequest bad = req;
  SetTime(T("2024-03-01T00:00:00Z"), bad.mutable_end_time());
  grpc::Status backwards = Stats("alice", bad, &stats);
  EXPECT_EQ(backwards.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(backwards.error_message(), "end_time: must be after start_time");
  bad = req;
  bad.set_interval(v1::HOUR);
  SetTime(T("2024-01-01T00:00:00Z"), bad.mutable_start_time());
  grpc::Status too_long = Stats("alice", bad, &stats);
  EXPECT_EQ(too_long.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(too_long.error_message(),
            "end_time: the range may span at most 31 days with interval HOUR");
  bad = req;
  bad.set_limit(1000);
  EXPECT_EQ(Stats("alice", bad, &stats).error_message().substr(0, 6), "limit:");
  bad = req;
  bad.set_code("x");
  EXPECT_EQ(Stats("alice", bad, &stats).error_message().substr(0, 5), "code:");
  bad = req;
  bad.mutable_start_time()->set_nanos(-1);
  EXPECT_EQ(Stats("alice", bad, &stats).error_message(), "start_time: not a valid timestamp");
  bad = req;
  bad.set_interval(static_cast<v1::Interval>(7));
  EXPECT_EQ(Stats("alice", bad, &stats).error_message(), "interval: must be HOUR or DAY");

  // A deleted link has no stats any more.
  ASSERT_TRUE(cluster_->primary()
                  .Transact([&](pqxx::work& tx) {
                    tx.exec_params("UPDATE links SET deleted_at = now() WHERE code = $1", mine[1]);
                  })
                  .ok());
  db_.WaitForReplica();
  v1::GetLinkStatsRequest deleted = req;
  deleted.set_code(mine[1]);
  EXPECT_EQ(Stats("alice", deleted, &stats).error_code(), grpc::StatusCode::NOT_FOUND);
}

// Bots (uap-core's Spider through the module's real regexes file, a preview agent, HEAD) and
// countries through Kafka, the consumer and PostgreSQL, read back by the stats RPC and in the
// raw rows.
TEST_F(AnalyticsIntegrationTest, StatsCountBotsApartAndClicksPerCountry) {
  CreateTopics(1);
  auto codes = testing::InsertLinks(cluster_->primary(), "dave", "bots", 1);
  const std::string chrome =
      "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/120.0.0.0 Safari/537.36";
  struct Sent {
    std::string agent;
    bool head;
    std::string country;
    int times;
  };
  const std::vector<Sent> sent = {
      {chrome, false, "DE", 4},
      {chrome, false, "", 1},
      {chrome, true, "DE", 2},
      {"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", false, "US", 3},
      {"Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)", false, "FR", 1},
  };
  int n = 0;
  for (const Sent& c : sent) {
    for (int i = 0; i < c.times; ++i, ++n) {
      events::v1::ClickEvent e;
      e.set_event_id(absl::StrCat("bots-", n));
      e.set_code(codes[0]);
      SetTime(T("2024-03-10T09:30:00Z") + absl::Seconds(n), e.mutable_time());
      e.set_user_agent(c.agent);
      e.set_head(c.head);
      e.set_country(c.country);
      ASSERT_TRUE(producer_->Produce(topic_, codes[0], e.SerializeAsString(), {}, nullptr).ok());
    }
  }
  ASSERT_TRUE(producer_->Flush(absl::Seconds(10)).ok());
  StartConsumer();
  ASSERT_EQ(WaitForHourly(n), n);
  db_.WaitForReplica();
  StartStatsServer();

  v1::GetLinkStatsRequest req;
  req.set_code(codes[0]);
  req.set_interval(v1::HOUR);
  v1::LinkStats stats;
  grpc::Status s = Stats("dave", req, &stats);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(stats.total_clicks(), 11);
  EXPECT_EQ(stats.bot_clicks(), 6);  // 2 HEAD, 3 Googlebot, 1 Discordbot
  EXPECT_EQ(stats.human_clicks(), 5);
  int64_t bucket_bots = 0;
  for (const auto& b : stats.series()) {
    bucket_bots += b.bot_clicks();
    EXPECT_LE(b.bot_clicks(), b.clicks());
  }
  EXPECT_EQ(bucket_bots, 6);
  ASSERT_EQ(stats.top_countries_size(), 4);
  EXPECT_EQ(stats.top_countries(0).value(), "DE");
  EXPECT_EQ(stats.top_countries(0).clicks(), 6);
  EXPECT_EQ(stats.top_countries(1).value(), "US");
  EXPECT_EQ(stats.top_countries(1).clicks(), 3);
  EXPECT_EQ(stats.top_countries(2).value(), "FR");
  EXPECT_EQ(stats.top_countries(3).value(), "ZZ");
  EXPECT_EQ(stats.top_countries(3).clicks(), 1);
  ASSERT_EQ(stats.top_agents_size(), 2);
  EXPECT_EQ(stats.top_agents(0).value(), "Bot");
  EXPECT_EQ(stats.top_agents(0).clicks(), 6);
  EXPECT_EQ(stats.top_agents(1).value(), "Chrome");
  EXPECT_EQ(stats.top_agents(1).clicks(), 5);

  // The raw rows say the same, click by click.
  int64_t bots = 0, german = 0;
  ASSERT_TRUE(cluster_->primary()
                  .Run([&](pqxx::connection& c) {
                    pqxx::nontransaction tx(c);
                    pqxx::row r = tx.exec1(
                        "SELECT count(*) FILTER (WHERE bot), count(*) FILTER (WHERE country = "
                        "'DE') FROM clicks WHERE code = " +
                        tx.quote(codes[0]));
                    bots = r[0].as<int64_t>();
                    german = r[1].as<int64_t>();
                  })
                  .ok());
  EXPECT_EQ(bots, 6);
  EXPECT_EQ(german, 6);
}

TEST_F(AnalyticsIntegrationTest, StatsOfALinkTheReplicaHasNotSeenComeFromThePrimary) {
  StartStatsServer();
  cluster_->CheckReplicasNow();
  ASSERT_TRUE(cluster_->ReplicaAvailable());
  ASSERT_TRUE(kurt::testing::PauseReplicaReplay(true).ok());
  auto codes = testing::InsertLinks(cluster_->primary(), "carol", "fresh", 1);
  ASSERT_TRUE(processor_->Handle({Message("t", 0, 0, codes[0], T("2024-03-09T10:00:00Z"))}).ok());
  v1::GetLinkStatsRequest req;
  req.set_code(codes[0]);
  v1::LinkStats stats;
  grpc::Status s = Stats("carol", req, &stats);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(stats.total_clicks(), 1);
  ASSERT_TRUE(kurt::testing::PauseReplicaReplay(false).ok());
}

}  // namespace
}  // namespace kurt::analytics
