#include "services/common/failure_throttle.h"

#include "gtest/gtest.h"

namespace kurt {
namespace {

TEST(LocalFailureThrottleTest, RefusesAtTheLimitUntilItsWindowEnds) {
  absl::Time now = absl::FromUnixSeconds(1000);
  LocalFailureThrottle throttle([&now] { return now; });
  const std::vector<FailureLimit> limits = {{"link:abc:client:1.2.3.4", 2, absl::Minutes(15)},
                                            {"link:abc", 3, absl::Minutes(15)}};
  EXPECT_EQ(throttle.Wait(limits), absl::ZeroDuration());
  throttle.Failed(limits);
  now += absl::Minutes(5);
  EXPECT_EQ(throttle.Wait(limits), absl::ZeroDuration());
  throttle.Failed(limits);
  // The client's key is at its limit: its window started at the first failure.
  EXPECT_EQ(throttle.Wait(limits), absl::Minutes(10));
  // Another client is not, until the link's own ceiling.
  const std::vector<FailureLimit> other = {{"link:abc:client:5.6.7.8", 2, absl::Minutes(15)},
                                           {"link:abc", 3, absl::Minutes(15)}};
  EXPECT_EQ(throttle.Wait(other), absl::ZeroDuration());
  throttle.Failed(other);
  EXPECT_EQ(throttle.Wait(other), absl::Minutes(10));
  now += absl::Minutes(10);
  EXPECT_EQ(throttle.Wait(limits), absl::ZeroDuration());
}

TEST(LocalFailureThrottleTest, ClearForgetsOneKey) {
  absl::Time now = absl::FromUnixSeconds(1000);
  LocalFailureThrottle throttle([&now] { return now; });
  const std::vector<FailureLimit> limits = {{"a", 1, absl::Minutes(1)}, {"b", 1, absl::Hours(1)}};
  throttle.Failed(limits);
  EXPECT_EQ(throttle.Wait(limits), absl::Hours(1));
  throttle.Clear("b");
  EXPECT_EQ(throttle.Wait(limits), absl::Minutes(1));
}

}  // namespace
}  // namespace kurt
