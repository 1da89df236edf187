// platform/outbox against the real stack: several relays on one table publish each row, and mark
// it published, once.
#include <map>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "platform/outbox/outbox.h"
#include "tests/reports/report_test_support.h"

namespace kurt::testing {
namespace {

TEST(OutboxRelayTest, SeveralRelaysPublishEachRowOnceWithItsHeaders) {
  ScratchDatabase db;
  const std::string topic = RandomName("kurt.test.outbox.");
  CreateTopic(topic, 3);
  pg::PoolOptions po;
  po.url = db.primary_url();
  po.max_connections = 8;
  pg::PgPool pool(po);
  constexpr int kRows = 600;
  // Written while the relays run, in small transactions, as services do.
  std::thread writer([&] {
    for (int i = 0; i < kRows; i += 20) {
      ASSERT_TRUE(pool.Transact([&](pqxx::work& tx) {
                        for (int j = i; j < i + 20; ++j) {
                          outbox::OutboxMessage m;
                          m.topic = topic;
                          m.key = absl::StrCat("k", j % 7);
                          m.payload = absl::StrCat("payload-", j, std::string(1, '\0'), "end");
                          m.event_id = absl::StrCat("event-", j);
                          m.headers = {{"traceparent", absl::StrCat("tp-", j)}};
                          EXPECT_TRUE(outbox::Enqueue(tx, "outbox", m));
                          // The same event id again is not a second row.
                          EXPECT_FALSE(outbox::Enqueue(tx, "outbox", m));
                        }
                      })
                      .ok());
      absl::SleepFor(absl::Milliseconds(5));
    }
  });

  kafka::ProducerOptions ko;
  ko.brokers = KafkaBrokers();
  auto producer = std::move(*kafka::KafkaProducer::Create(ko));
  outbox::KafkaPublisher publisher(producer.get());
  std::vector<std::unique_ptr<metrics::Registry>> registries;
  std::vector<std::unique_ptr<outbox::OutboxRelay>> relays;
  for (int i = 0; i < 3; ++i) {
    outbox::RelayOptions ro;
    ro.batch_size = 25;
    ro.poll_interval = absl::Milliseconds(50);
    if (i == 0) {
      ro.listen_url = db.primary_url();  // one listens, the others poll
    }
    registries.push_back(std::make_unique<metrics::Registry>());
    relays.push_back(
        std::make_unique<outbox::OutboxRelay>(ro, &pool, &publisher, registries.back().get()));
    relays.back()->Start();
  }
  TopicReader reader(topic);
  writer.join();
  ASSERT_TRUE(reader.WaitFor(kRows, absl::Seconds(60)));
  absl::SleepFor(absl::Seconds(1));  // would any duplicate still come?
  for (auto& r : relays) {
    r->Stop();
  }

  std::map<std::string, int> seen;
  for (const kafka::Message& m : reader.Messages()) {
    auto id = m.Header("event-id");
    ASSERT_TRUE(id.has_value());
    ++seen[std::string(*id)];
    int j = std::stoi(std::string(id->substr(6)));
    EXPECT_EQ(m.value, absl::StrCat("payload-", j, std::string(1, '\0'), "end"));
    EXPECT_EQ(m.key, absl::StrCat("k", j % 7));
    EXPECT_EQ(m.Header("traceparent").value_or(""), absl::StrCat("tp-", j));
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(kRows));
  for (const auto& [id, n] : seen) {
    EXPECT_EQ(n, 1) << id << " published " << n << " times";
  }
  EXPECT_EQ(QueryInt(db.primary_url(), "SELECT count(*) FROM outbox WHERE published_time IS NULL"),
            0);
  int relays_that_worked = 0;
  for (auto& r : registries) {
    std::string text = r->Render();
    if (text.find("kurt_outbox_published_total{table=\"outbox\"} 0") == std::string::npos) {
      ++relays_that_worked;
    }
  }
  EXPECT_GE(relays_that_worked, 2) << "the relays shared the work";
}

TEST(OutboxRelayTest, PublishedRowsAreDeletedAfterTheRetention) {
  ScratchDatabase db;
  pg::PoolOptions po;
  po.url = db.primary_url();
  pg::PgPool pool(po);
  Exec(db.primary_url(),
       "INSERT INTO outbox (topic, payload, event_id, published_time) VALUES "
       "('t', 'x', 'old', now() - interval '2 days'), ('t', 'x', 'new', now()), "
       "('t', 'x', 'unpublished', NULL)");
  class NoPublisher : public outbox::Publisher {
    absl::Status Publish(const outbox::OutboxMessage&, kafka::DeliveryCallback) override {
      return absl::UnavailableError("no");
    }
  } publisher;
  metrics::Registry registry;
  outbox::OutboxRelay relay(outbox::RelayOptions{}, &pool, &publisher, &registry);
  auto deleted = relay.DeletePublished();
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(*deleted, 1);
  EXPECT_EQ(
      QueryValue(db.primary_url(), "SELECT string_agg(event_id, ',' ORDER BY id) FROM outbox"),
      "new,unpublished");
  // A publisher that refuses leaves the row unpublished, for the next round.
  EXPECT_FALSE(relay.RelayOnce().ok());
  EXPECT_EQ(QueryInt(db.primary_url(), "SELECT count(*) FROM outbox WHERE published_time IS NULL"),
            1);
}

}  // namespace
}  // namespace kurt::testing
