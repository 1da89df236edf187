#include "platform/core/singleflight.h"

#include <atomic>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace kurt::platform {
namespace {

TEST(SingleFlightTest, ConcurrentCallsForOneKeyRunTheWorkOnce) {
  SingleFlight<int> flight;
  std::atomic<int> runs{0};
  std::vector<std::thread> threads;
  std::vector<int> results(64);
  threads.reserve(64);
  for (int i = 0; i < 64; ++i) {
    threads.emplace_back([&, i] {
      results[i] = flight.Do("k", [&] {
        runs++;
        absl::SleepFor(absl::Milliseconds(100));
        return 7;
      });
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(runs.load(), 1);
  for (int r : results) {
    EXPECT_EQ(r, 7);
  }
}

TEST(SingleFlightTest, DifferentKeysAndLaterCallsRunAgain) {
  SingleFlight<int> flight;
  int runs = 0;
  EXPECT_EQ(flight.Do("a", [&] { return ++runs; }), 1);
  EXPECT_EQ(flight.Do("a", [&] { return ++runs; }), 2);
  EXPECT_EQ(flight.Do("b", [&] { return ++runs; }), 3);
}

TEST(SingleFlightTest, LingeringResultAnswersLateCallersUntilForgotten) {
  SingleFlight<int> flight(absl::Seconds(60));
  int runs = 0;
  EXPECT_EQ(flight.Do("a", [&] { return ++runs; }), 1);
  EXPECT_EQ(flight.Do("a", [&] { return ++runs; }), 1) << "within the linger: no new run";
  flight.Forget("a");
  EXPECT_EQ(flight.Do("a", [&] { return ++runs; }), 2);
}

}  // namespace
}  // namespace kurt::platform
