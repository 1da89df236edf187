// redis::GetBatcher against the stack's Redis: concurrent callers' GETs, sent together as MGETs,
// each answered with its own key's value (or none); against a
// port where no Redis listens, every caller hears UNAVAILABLE, and none is left waiting.
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "platform/redis/get_batcher.h"
#include "platform/redis/redis.h"
#include "tests/support/free_port.h"
#include "tests/support/stack_env.h"

namespace kurt {
namespace {

TEST(RedisGetBatcherTest, ConcurrentGetsEachGetTheirOwnKeysValue) {
  auto options = redis::Options::FromUrl(testing::RedisUrl());
  ASSERT_TRUE(options.ok()) << options.status();
  redis::RedisClient client(*options);
  const std::string prefix = testing::RandomName("kurt:test:batcher:");
  constexpr int kThreads = 8;
  constexpr int kPerThread = 250;
  // Even keys hold a value of their own; odd keys hold none.
  for (int i = 0; i < kThreads * kPerThread; i += 2) {
    ASSERT_TRUE(
        client.Set(absl::StrCat(prefix, i), absl::StrCat("value-", i), absl::Minutes(1)).ok());
  }
  std::atomic<int> wrong{0};
  std::atomic<int> failed{0};
  {
    redis::GetBatcher batcher(&client);
    absl::BlockingCounter answered(kThreads * kPerThread);
    std::vector<std::thread> threads;
    threads.reserve(kThreads);
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int k = 0; k < kPerThread; ++k) {
          const int i = t * kPerThread + k;
          batcher.Get(
              absl::StrCat(prefix, i), [&, i](absl::StatusOr<std::optional<std::string>> value) {
                if (!value.ok()) {
                  failed.fetch_add(1);
                } else if (*value != (i % 2 == 0
                                          ? std::optional<std::string>(absl::StrCat("value-", i))
                                          : std::nullopt)) {
                  wrong.fetch_add(1);
                }
                answered.DecrementCount();
              });
        }
      });
    }
    for (std::thread& t : threads) {
      t.join();
    }
    answered.Wait();
  }
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(wrong.load(), 0);
}

TEST(RedisGetBatcherTest, WithoutRedisEveryCallerHearsUnavailable) {
  redis::Options options;
  options.port = testing::FreePort();  // nothing listens there
  redis::RedisClient client(options);
  std::atomic<int> unavailable{0};
  const absl::Time start = absl::Now();
  {
    redis::GetBatcher batcher(&client);
    absl::BlockingCounter answered(100);
    for (int i = 0; i < 100; ++i) {
      batcher.Get(absl::StrCat("kurt:test:nowhere:", i),
                  [&](const absl::StatusOr<std::optional<std::string>>& value) {
                    if (absl::IsUnavailable(value.status())) {
                      unavailable.fetch_add(1);
                    }
                    answered.DecrementCount();
                  });
    }
    answered.Wait();
  }
  EXPECT_EQ(unavailable.load(), 100);
  EXPECT_LT(absl::Now() - start, absl::Seconds(2)) << "a dead Redis fails fast";
}

}  // namespace
}  // namespace kurt
