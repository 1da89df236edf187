// KafkaClickSink's PublishAsync with the real producer (librdkafka) and no broker behind it (a
// loopback port nothing listens on): a redirect's click must be answered exactly once, by its
// deadline when Kafka stays silent, or by the producer's report when that comes first. With a
// broker, the links integration tests resolve through the same sink.
#include "services/links/click_publisher.h"

#include <atomic>
#include <mutex>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/support/free_port.h"
#include "tests/support/metric_value.h"

namespace kurt::links {
namespace {

// What a PublishAsync answered, and when.
struct Answers {
  std::mutex mu;
  std::vector<absl::Status> statuses;
  std::vector<absl::Time> times;
  absl::Notification first;

  std::function<void(const absl::Status&)> Recorder() {
    return [this](const absl::Status& s) {
      std::lock_guard<std::mutex> lock(mu);
      statuses.push_back(s);
      times.push_back(absl::Now());
      if (statuses.size() == 1) {
        first.Notify();
      }
    };
  }
  size_t count() {
    std::lock_guard<std::mutex> lock(mu);
    return statuses.size();
  }
};

class ClickSinkWithoutBrokerTest : public ::testing::Test {
 protected:
  // A producer whose broker never answers; it gives a message up after `message_timeout`.
  void StartProducer(absl::Duration message_timeout) {
    kafka::ProducerOptions options;
    options.brokers = absl::StrCat("127.0.0.1:", kurt::testing::FreePort());
    options.security = kafka::ClientSecurity{};
    options.extra = {
        {"message.timeout.ms", absl::StrCat(absl::ToInt64Milliseconds(message_timeout))},
        {"log_level", "0"}};
    absl::StatusOr<std::unique_ptr<kafka::KafkaProducer>> producer =
        kafka::KafkaProducer::Create(options);
    ASSERT_TRUE(producer.ok()) << producer.status();
    producer_ = *std::move(producer);
    sink_ =
        std::make_unique<KafkaClickSink>(producer_.get(), "kurt.test.clicks", "salt", &registry_);
  }

  static Click AClick(int i) {
    return Click{absl::StrCat("code", i), "", absl::Now(), "", "Test/1.0", "203.0.113.7", ""};
  }

  metrics::Registry registry_;
  std::unique_ptr<kafka::KafkaProducer> producer_;
  std::unique_ptr<KafkaClickSink> sink_;
};

TEST_F(ClickSinkWithoutBrokerTest, AClickKafkaDoesNotTakeIsUnavailableAtItsDeadlineAndOnlyThen) {
  StartProducer(absl::Seconds(1));
  // Deadlines out of order: each is answered at its own, not at another's.
  const absl::Time start = absl::Now();
  const absl::Duration waits[] = {absl::Milliseconds(600), absl::Milliseconds(200),
                                  absl::Milliseconds(400)};
  Answers answers[3];
  for (int i = 0; i < 3; ++i) {
    sink_->PublishAsync(AClick(i), start + waits[i], answers[i].Recorder());
  }
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(answers[i].first.WaitForNotificationWithTimeout(absl::Seconds(5))) << i;
    std::lock_guard<std::mutex> lock(answers[i].mu);
    EXPECT_EQ(answers[i].statuses[0].code(), absl::StatusCode::kUnavailable) << i;
    EXPECT_EQ(answers[i].statuses[0].message(), "1 of 1 clicks not yet in Kafka") << i;
    EXPECT_GE(answers[i].times[0], start + waits[i]) << i << ": never before its deadline";
    EXPECT_LE(answers[i].times[0], start + waits[i] + absl::Milliseconds(300))
        << i << ": answered late";
  }
  // The producer gives the clicks up later (message.timeout.ms): no second answer.
  producer_->Flush(absl::Seconds(3)).IgnoreError();
  absl::SleepFor(absl::Milliseconds(100));
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(answers[i].count(), 1u) << i;
  }
}

TEST_F(ClickSinkWithoutBrokerTest, TheProducersReportAnswersBeforeTheDeadlineAndOnlyOnce) {
  StartProducer(absl::Milliseconds(300));
  const absl::Time start = absl::Now();
  Answers answers;
  sink_->PublishAsync(AClick(1), start + absl::Milliseconds(1500), answers.Recorder());
  ASSERT_TRUE(answers.first.WaitForNotificationWithTimeout(absl::Seconds(5)));
  {
    std::lock_guard<std::mutex> lock(answers.mu);
    EXPECT_EQ(answers.statuses[0].code(), absl::StatusCode::kUnavailable);
    EXPECT_TRUE(absl::StartsWith(answers.statuses[0].message(), "not delivered: "))
        << answers.statuses[0];
    EXPECT_LT(answers.times[0], start + absl::Milliseconds(1500));
  }
  // Past the deadline, which must not answer again.
  absl::SleepFor(start + absl::Milliseconds(1700) - absl::Now());
  EXPECT_EQ(answers.count(), 1u);
}

// The clicks of one PublishAll (a batch of the edge's cached redirects) go to the producer
// together, in one wave: not the first alone and the others once Kafka has acknowledged it, which
// made a batch that found no wave on its way wait for two round trips to Kafka instead of one.
TEST_F(ClickSinkWithoutBrokerTest, TheClicksOfABatchGoToTheProducerTogether) {
  StartProducer(absl::Seconds(1));  // longer than the call's deadline
  const absl::Status s =
      sink_->PublishAll({AClick(1), AClick(2), AClick(3)}, absl::Now() + absl::Milliseconds(200),
                        ClickWait::kRedirectWaits);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(s.message(), "3 of 3 clicks not yet in Kafka");
  EXPECT_EQ(
      testing::MetricValue(registry_.Render(), "kurt_links_click_events_total{outcome=\"queued\"}"),
      3)
      << "all three handed to the producer before any was acknowledged";
}

}  // namespace
}  // namespace kurt::links
