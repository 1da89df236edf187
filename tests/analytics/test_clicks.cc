#include "tests/analytics/test_clicks.h"

#include <atomic>
#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "kurt/events/v1/click.pb.h"
#include "services/analytics/click_store.h"
#include "tests/support/stack_env.h"

namespace kurt::analytics::testing {
namespace {

void Check(const absl::Status& s, const std::string& what) {
  if (!s.ok()) {
    throw std::runtime_error(absl::StrCat(what, ": ", s.ToString()));
  }
}

const char* const kReferrers[] = {"", "https://news.example/a", "https://search.example/?q=1",
                                  "not a url"};
const char* const kAgents[] = {
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0", "curl/8.4.0",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"};

}  // namespace

std::vector<std::string> InsertLinks(pg::PgPool& primary, const std::string& account,
                                     const std::string& prefix, int n) {
  std::vector<std::string> codes;
  codes.reserve(n);
  for (int i = 0; i < n; ++i) {
    codes.push_back(absl::StrCat(prefix, i));
  }
  Check(primary.Transact([&](pqxx::work& tx) {
    tx.exec_params(
        "INSERT INTO links (code, account_id, target_url) "
        "SELECT c, $2, 'https://target.example/' || c FROM unnest($1::text[]) AS c",
        pg::TextArrayLiteral(codes), account);
  }),
        "inserting links");
  return codes;
}

std::string ClickValue(const std::string& event_id, const std::string& code, absl::Time time,
                       const std::string& referrer, const std::string& user_agent) {
  events::v1::ClickEvent e;
  e.set_event_id(event_id);
  e.set_code(code);
  const int64_t micros = absl::ToUnixMicros(time);
  e.mutable_time()->set_seconds(micros / 1000000);
  e.mutable_time()->set_nanos(static_cast<int32_t>(micros % 1000000) * 1000);
  e.set_referrer(referrer);
  e.set_user_agent(user_agent);
  e.set_client_hash("0123456789abcdef");
  return e.SerializeAsString();
}

std::map<std::string, int64_t> PublishClicks(kafka::KafkaProducer& producer,
                                             const std::string& topic,
                                             const std::vector<std::string>& codes, int64_t count,
                                             int64_t per_second) {
  std::map<std::string, int64_t> expected;
  auto failed = std::make_shared<std::atomic<int64_t>>(0);
  const absl::Time start = absl::Now();
  const std::string run = absl::StrCat(absl::ToUnixNanos(start));
  for (int64_t i = 0; i < count; ++i) {
    if (per_second > 0 && i % 500 == 0) {
      absl::Time due =
          start + absl::Seconds(static_cast<double>(i) / static_cast<double>(per_second));
      if (due > absl::Now()) {
        absl::SleepFor(due - absl::Now());
      }
    }
    const std::string& code = codes[i % codes.size()];
    std::string id = absl::StrCat(run, "-", i);
    std::string value = ClickValue(id, code, absl::Now(), kReferrers[i % std::size(kReferrers)],
                                   kAgents[i % std::size(kAgents)]);
    for (;;) {
      absl::Status s = producer.Produce(topic, code, value, {{"event-id", id}},
                                        [failed](const absl::Status& st) {
                                          if (!st.ok()) {
                                            ++*failed;
                                          }
                                        });
      if (s.ok()) {
        break;
      }
      if (!absl::IsResourceExhausted(s)) {
        Check(s, "producing a click");
      }
      absl::SleepFor(absl::Milliseconds(2));
    }
    ++expected[code];
  }
  Check(producer.Flush(absl::Seconds(60)), "flushing clicks");
  if (*failed > 0) {
    throw std::runtime_error(absl::StrCat(failed->load(), " clicks not delivered"));
  }
  return expected;
}

Counts CountAll(pg::PgPool& primary) {
  Counts c;
  Check(primary.Run([&](pqxx::connection& conn) {
    pqxx::nontransaction tx(conn);
    pqxx::row r = tx.exec1(
        "SELECT (SELECT COALESCE(sum(clicks), 0) FROM click_hourly)::bigint, "
        "(SELECT COALESCE(sum(clicks), 0) FROM click_referrers_hourly)::bigint, "
        "(SELECT COALESCE(sum(clicks), 0) FROM click_agents_hourly)::bigint, "
        "(SELECT count(*) FROM clicks), "
        "(SELECT count(DISTINCT event_id) FROM clicks), "
        "(SELECT COALESCE(sum(next_offset), 0) FROM analytics_consumer_offsets)::bigint");
    c.hourly = r[0].as<int64_t>();
    c.referrers = r[1].as<int64_t>();
    c.agents = r[2].as<int64_t>();
    c.raw = r[3].as<int64_t>();
    c.distinct_events = r[4].as<int64_t>();
    c.offsets = r[5].as<int64_t>();
  }),
        "counting clicks");
  return c;
}

int64_t CountHourly(pg::PgPool& primary) {
  int64_t n = 0;
  Check(primary.Run([&](pqxx::connection& conn) {
    pqxx::nontransaction tx(conn);
    n = tx.exec1("SELECT COALESCE(sum(clicks), 0)::bigint FROM click_hourly")[0].as<int64_t>();
  }),
        "counting clicks");
  return n;
}

int64_t WaitForSettledHourly(pg::PgPool& primary, int64_t at_least, absl::Duration timeout) {
  const absl::Time give_up = absl::Now() + timeout;
  int64_t counted = 0;
  absl::Time stable_since = absl::Now();
  for (int64_t last = -1; absl::Now() < give_up; absl::SleepFor(absl::Milliseconds(200))) {
    counted = CountHourly(primary);
    if (counted != last) {
      last = counted;
      stable_since = absl::Now();
    }
    if (counted >= at_least && absl::Now() - stable_since > absl::Seconds(3)) {
      break;
    }
  }
  return counted;
}

std::unique_ptr<InProcessAnalytics> StartAnalytics(pg::PgCluster& cluster, const std::string& topic,
                                                   const std::string& dead_letter_topic) {
  auto a = std::make_unique<InProcessAnalytics>();
  kafka::ProducerOptions dead_letters;
  dead_letters.brokers = kurt::testing::KafkaBrokers();
  a->dead_letters = std::move(*kafka::KafkaProducer::Create(dead_letters));
  AnalyticsConfig config;
  config.kafka_brokers = kurt::testing::KafkaBrokers();
  config.clicks_topic = topic;
  config.dead_letter_topic = dead_letter_topic;
  config.consumer_group = kurt::testing::RandomName("kurt-test-analytics-");
  config.batch_max_messages = 2000;
  config.batch_wait = absl::Milliseconds(50);
  config.lag_refresh = absl::Seconds(1);
  a->module = AnalyticsModule::Create(config, {&cluster, a->dead_letters.get(), &a->registry});
  if (a->module == nullptr || !a->module->Start().ok()) {
    ADD_FAILURE() << "the analytics consumer did not start";
    return nullptr;
  }
  return a;
}

std::map<std::string, int64_t> HourlyPerCode(pg::PgPool& primary) {
  std::map<std::string, int64_t> out;
  Check(primary.Run([&](pqxx::connection& conn) {
    pqxx::nontransaction tx(conn);
    for (const auto& row :
         tx.exec("SELECT code, sum(clicks)::bigint FROM click_hourly GROUP BY code")) {
      out[row[0].as<std::string>()] = row[1].as<int64_t>();
    }
  }),
        "counting clicks per code");
  return out;
}

}  // namespace kurt::analytics::testing
