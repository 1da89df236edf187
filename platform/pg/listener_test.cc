// The listener without a server: its backoff, and how it behaves when nothing answers
// (tests/platform/pg_listener_test.cc runs it against the local PostgreSQL).
#include "platform/pg/listener.h"

#include <atomic>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/support/metric_value.h"

namespace kurt::pg {
namespace {

TEST(ReconnectBackoffTest, DoublesUpToTheBoundAndStartsOverAfterASuccess) {
  ReconnectBackoff backoff(absl::Milliseconds(200), absl::Seconds(1));
  EXPECT_EQ(backoff.Next(), absl::Milliseconds(200));
  EXPECT_EQ(backoff.Next(), absl::Milliseconds(400));
  EXPECT_EQ(backoff.Next(), absl::Milliseconds(800));
  EXPECT_EQ(backoff.Next(), absl::Seconds(1));
  EXPECT_EQ(backoff.Next(), absl::Seconds(1));
  backoff.Reset();
  EXPECT_EQ(backoff.Next(), absl::Milliseconds(200));
}

double Errors(const metrics::Registry& registry) {
  return testing::MetricValue(registry.Render(), "kurt_pg_listen_errors_total{listener=\"test\"}");
}

// Waits (up to 10 s) until the listener failed `n` times; false if it did not.
bool WaitForErrors(const metrics::Registry& registry, double n) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (Errors(registry) < n) {
    if (absl::Now() > deadline) {
      return false;
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

ListenerOptions Unreachable() {
  ListenerOptions options;
  options.url = "postgresql://kurt@127.0.0.1:1/kurt";
  options.channels = {"things"};
  options.name = "test";
  options.connect_timeout = absl::Seconds(1);
  return options;
}

TEST(ListenerTest, KeepsRetryingAnUnreachableServerAndCountsEachFailure) {
  metrics::Registry registry;
  ListenerOptions options = Unreachable();
  options.initial_backoff = absl::Milliseconds(10);
  options.max_backoff = absl::Milliseconds(20);
  std::atomic<int> listening{0}, notified{0};
  Listener listener(
      options, [&](absl::string_view, absl::string_view) { ++notified; }, [&] { ++listening; },
      &registry);
  listener.Start();
  EXPECT_TRUE(WaitForErrors(registry, 3)) << registry.Render();
  listener.Stop();
  EXPECT_EQ(listening, 0);
  EXPECT_EQ(notified, 0);
}

TEST(ListenerTest, StopEndsAWaitBetweenAttemptsAtOnce) {
  metrics::Registry registry;
  ListenerOptions options = Unreachable();
  options.initial_backoff = absl::Hours(1);
  options.max_backoff = absl::Hours(1);
  Listener listener(options, nullptr, nullptr, &registry);
  listener.Start();
  // The first attempt failed and the hour-long wait began.
  ASSERT_TRUE(WaitForErrors(registry, 1));
  const absl::Time start = absl::Now();
  listener.Stop();
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
}

TEST(ListenerTest, CanBeStoppedWithoutStartingAndStartedAgain) {
  metrics::Registry registry;
  Listener listener(Unreachable(), nullptr, nullptr, &registry);
  listener.Stop();
  listener.Start();
  listener.Stop();
  listener.Start();
}  // the destructor stops it

}  // namespace
}  // namespace kurt::pg
