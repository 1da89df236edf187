// pg::Listener against the local PostgreSQL: a NOTIFY arrives, and when the server ends the
// listener's session (pg_terminate_backend, as a restart or a failover would) it reconnects and
// says so; and the outbox relay, which polls only once an hour here, publishes on NOTIFYs alone,
// before and after such a reconnection.
#include <algorithm>
#include <mutex>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "platform/outbox/outbox.h"
#include "platform/pg/listener.h"
#include "platform/pg/pg.h"
#include "tests/support/metric_value.h"
#include "tests/support/stack_env.h"

namespace kurt {
namespace {

using testing::MetricValue;
using testing::RandomName;

// Polls `done` every 10 ms for up to 10 s.
template <typename Predicate>
bool Eventually(Predicate done) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!done()) {
    if (absl::Now() > deadline) {
      return false;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  return true;
}

pg::PgPool Pool(const std::string& url) {
  pg::PoolOptions options;
  options.url = url;
  options.max_connections = 2;
  return pg::PgPool(options);
}

void Notify(pg::PgPool& pool, const std::string& channel, const std::string& payload) {
  ASSERT_TRUE(pool.Run([&](pqxx::connection& c) {
                    pqxx::nontransaction tx(c);
                    tx.exec_params("SELECT pg_notify($1, $2)", channel, payload);
                  })
                  .ok());
}

// The sessions of `application` on the pool's database.
int64_t Sessions(pg::PgPool& pool, const std::string& application) {
  int64_t n = -1;
  EXPECT_TRUE(pool.Run([&](pqxx::connection& c) {
                    pqxx::nontransaction tx(c);
                    n = tx.exec_params1(
                              "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                              "current_database() AND application_name = $1",
                              application)[0]
                            .as<int64_t>();
                  })
                  .ok());
  return n;
}

// Ends the sessions of `application` on the pool's database, as an administrator (or a restart)
// would; returns how many.
int64_t TerminateSessions(pg::PgPool& pool, const std::string& application) {
  int64_t ended = -1;
  EXPECT_TRUE(pool.Run([&](pqxx::connection& c) {
                    pqxx::nontransaction tx(c);
                    ended = tx.exec_params1(
                                  "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                  "WHERE datname = current_database() AND application_name = $1",
                                  application)[0]
                                .as<int64_t>();
                  })
                  .ok());
  return ended;
}

// What a listener reported.
struct Reports {
  std::mutex mu;
  std::vector<std::pair<std::string, std::string>> notifications;
  int listening = 0;

  int Listening() {
    std::lock_guard<std::mutex> lock(mu);
    return listening;
  }
  bool Got(const std::string& channel, const std::string& payload) {
    std::lock_guard<std::mutex> lock(mu);
    for (const auto& n : notifications) {
      if (n.first == channel && n.second == payload) {
        return true;
      }
    }
    return false;
  }
};

TEST(PgListenerTest, DeliversNotifyAndReconnectsAfterTheServerEndsItsSession) {
  pg::PgPool pool = Pool(testing::PgPrimaryUrl());
  const std::string name = RandomName("test");
  const std::string first = RandomName("kurt_test_a_"), second = RandomName("kurt_test_b_");
  metrics::Registry registry;
  Reports reports;
  pg::ListenerOptions options;
  options.url = testing::PgPrimaryUrl();
  options.channels = {first, second};
  options.name = name;
  options.initial_backoff = absl::Milliseconds(50);
  pg::Listener listener(
      options,
      [&](absl::string_view channel, absl::string_view payload) {
        std::lock_guard<std::mutex> lock(reports.mu);
        reports.notifications.emplace_back(channel, payload);
      },
      [&] {
        std::lock_guard<std::mutex> lock(reports.mu);
        ++reports.listening;
      },
      &registry);
  listener.Start();
  ASSERT_TRUE(Eventually([&] { return reports.Listening() == 1; }));

  Notify(pool, second, "hello");
  EXPECT_TRUE(Eventually([&] { return reports.Got(second, "hello"); }));

  const std::string session = absl::StrCat("kurt-listen-", name);
  EXPECT_EQ(TerminateSessions(pool, session), 1);
  ASSERT_TRUE(Eventually([&] { return reports.Listening() == 2; }))
      << "the listener did not report a reconnection";
  EXPECT_EQ(MetricValue(registry.Render(),
                        absl::StrCat("kurt_pg_listen_errors_total{listener=\"", name, "\"}")),
            1);

  Notify(pool, first, "again");
  EXPECT_TRUE(Eventually([&] { return reports.Got(first, "again"); }));
  listener.Stop();
  // Stopped: its session is gone.
  EXPECT_TRUE(Eventually([&] { return Sessions(pool, session) == 0; }));
}

// Records what it is asked to publish and acknowledges it at once.
class RecordingPublisher : public outbox::Publisher {
 public:
  absl::Status Publish(const outbox::OutboxMessage& message,
                       kafka::DeliveryCallback on_delivery) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      published_.push_back(message.event_id);
    }
    on_delivery(absl::OkStatus());
    return absl::OkStatus();
  }
  bool Published(const std::string& event_id) {
    std::lock_guard<std::mutex> lock(mu_);
    return std::find(published_.begin(), published_.end(), event_id) != published_.end();
  }

 private:
  std::mutex mu_;
  std::vector<std::string> published_;
};

void Enqueue(pg::PgPool& pool, const std::string& event_id) {
  ASSERT_TRUE(pool.Transact([&](pqxx::work& tx) {
                    outbox::OutboxMessage m;
                    m.topic = "kurt.test.listen.v1";
                    m.event_id = event_id;
                    m.payload = "x";
                    outbox::Enqueue(tx, "outbox", m);
                  })
                  .ok());
}

TEST(PgListenerTest, TheOutboxRelayIsWokenByNotifyAloneBeforeAndAfterAReconnection) {
  testing::ScratchDatabase db;
  pg::PgPool pool = Pool(db.primary_url());
  RecordingPublisher publisher;
  metrics::Registry registry;
  outbox::RelayOptions options;
  options.listen_url = db.primary_url();
  options.poll_interval = absl::Hours(1);
  outbox::OutboxRelay relay(options, &pool, &publisher, &registry);
  relay.Start();
  const std::string session = "kurt-listen-outbox";
  // The relay's first round runs at once; wait until its listener is in place too.
  ASSERT_TRUE(Eventually([&] { return Sessions(pool, session) == 1; }));

  Enqueue(pool, "before");
  EXPECT_TRUE(Eventually([&] { return publisher.Published("before"); }));

  EXPECT_EQ(TerminateSessions(pool, session), 1);
  // Written while nobody listens: the reconnection's wake-up finds it.
  Enqueue(pool, "while-away");
  EXPECT_TRUE(Eventually([&] { return publisher.Published("while-away"); }));
  ASSERT_TRUE(Eventually([&] {
    return MetricValue(registry.Render(), "kurt_pg_listen_errors_total{listener=\"outbox\"}") == 1;
  }));
  Enqueue(pool, "after");
  EXPECT_TRUE(Eventually([&] { return publisher.Published("after"); }));
  relay.Stop();
}

}  // namespace
}  // namespace kurt
