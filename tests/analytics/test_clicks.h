// Helpers shared by the analytics integration and fault tests: links to click on, click events
// published like the links service does, and what the database counted.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "platform/core/metrics.h"
#include "platform/kafka/kafka.h"
#include "platform/pg/pg.h"
#include "services/analytics/analytics_module.h"
#include "tests/support/metric_value.h"

namespace kurt::analytics::testing {

// Inserts links <prefix>0 … <prefix><n-1> owned by `account`; returns their codes.
std::vector<std::string> InsertLinks(pg::PgPool& primary, const std::string& account,
                                     const std::string& prefix, int n);

// A serialized ClickEvent.
std::string ClickValue(const std::string& event_id, const std::string& code, absl::Time time,
                       const std::string& referrer = "", const std::string& user_agent = "");

// Publishes `count` clicks spread over `codes` (round robin), `per_second` at most (0: no limit),
// and waits for every acknowledgement. Returns the clicks per code.
std::map<std::string, int64_t> PublishClicks(kafka::KafkaProducer& producer,
                                             const std::string& topic,
                                             const std::vector<std::string>& codes, int64_t count,
                                             int64_t per_second = 0);

struct Counts {
  int64_t hourly = 0;     // sum of click_hourly
  int64_t referrers = 0;  // sum of click_referrers_hourly
  int64_t agents = 0;     // sum of click_agents_hourly
  int64_t raw = 0;        // rows of clicks
  int64_t distinct_events = 0;
  int64_t offsets = 0;  // sum of next_offset in analytics_consumer_offsets
};
Counts CountAll(pg::PgPool& primary);
// sum(click_hourly) only: cheap enough to poll.
int64_t CountHourly(pg::PgPool& primary);
// Polls CountHourly until it reaches `at_least` and then stays put for 3 s (a late duplicate
// would show), or `timeout` passes; returns the count last seen.
int64_t WaitForSettledHourly(pg::PgPool& primary, int64_t at_least, absl::Duration timeout);
std::map<std::string, int64_t> HourlyPerCode(pg::PgPool& primary);

using kurt::testing::MetricValue;

// The real analytics consumer, in this process, on `cluster`, reading `topic` (dead letters to
// `dead_letter_topic`) with a consumer group of its own, in small batches (many transactions for a
// fault to fall in). Declared in this order so that the module goes before its clients.
struct InProcessAnalytics {
  metrics::Registry registry;
  std::unique_ptr<kafka::KafkaProducer> dead_letters;
  std::unique_ptr<AnalyticsModule> module;
};
// Started; nullptr (with the test failed) when it could not be.
std::unique_ptr<InProcessAnalytics> StartAnalytics(pg::PgCluster& cluster, const std::string& topic,
                                                   const std::string& dead_letter_topic);

}  // namespace kurt::analytics::testing
