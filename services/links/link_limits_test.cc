#include "services/links/link_limits.h"

#include "gtest/gtest.h"

namespace kurt::links {
namespace {

TEST(MergeQueryTest, AddsTheRequestsParametersAndTheyWinOnAName) {
  EXPECT_EQ(MergeQuery("https://t.example/p", "utm_source=x&utm_medium=y"),
            "https://t.example/p?utm_source=x&utm_medium=y");
  // The target's own are kept, before the request's; a name in both takes the request's value.
  EXPECT_EQ(MergeQuery("https://t.example/p?a=1&utm_source=old&b=2", "utm_source=new"),
            "https://t.example/p?a=1&b=2&utm_source=new");
  // Repeated names of the request are all kept, in order; the target's of that name all go.
  EXPECT_EQ(MergeQuery("https://t.example/?k=0&k=9", "k=1&k=2"), "https://t.example/?k=1&k=2");
  // The fragment stays at the end.
  EXPECT_EQ(MergeQuery("https://t.example/p?a=1#frag", "b=2"), "https://t.example/p?a=1&b=2#frag");
  EXPECT_EQ(MergeQuery("https://t.example/p#frag", "b=2"), "https://t.example/p?b=2#frag");
}

TEST(MergeQueryTest, KeepsPercentEncodingAsGivenAndEncodesWhatAUrlCannotHold) {
  EXPECT_EQ(MergeQuery("https://t.example/", "q=a%20b%26c&x=%2F"),
            "https://t.example/?q=a%20b%26c&x=%2F");
  // Names compare as sent: %61 is not "a".
  EXPECT_EQ(MergeQuery("https://t.example/?a=1", "%61=2"), "https://t.example/?a=1&%61=2");
  EXPECT_EQ(MergeQuery("https://t.example/", "q=a b"), "https://t.example/?q=a%20b");
  EXPECT_EQ(MergeQuery("https://t.example/", "q=\xc3\xa9"), "https://t.example/?q=%C3%A9");
  // A flag without '=' is a parameter named by itself.
  EXPECT_EQ(MergeQuery("https://t.example/?debug&x=1", "debug"), "https://t.example/?x=1&debug");
}

TEST(MergeQueryTest, EmptyPiecesAndFragmentsOfTheRequestAreDropped) {
  EXPECT_EQ(MergeQuery("https://t.example/?a=1", ""), "https://t.example/?a=1");
  EXPECT_EQ(MergeQuery("https://t.example/?a=1", "&&"), "https://t.example/?a=1");
  EXPECT_EQ(MergeQuery("https://t.example/", "a=1&&b=2"), "https://t.example/?a=1&b=2");
  EXPECT_EQ(MergeQuery("https://t.example/#f", "a=1#x&b=2"), "https://t.example/?a=1#f");
}

TEST(LinkLimitsTest, WindowIsFromValidSinceToExpiry) {
  const absl::Time now = absl::FromUnixSeconds(1000000);
  LinkLimits limits;
  EXPECT_TRUE(WithinWindow(limits, std::nullopt, now));
  limits.valid_since = now + absl::Seconds(1);
  EXPECT_FALSE(WithinWindow(limits, std::nullopt, now));
  limits.valid_since = now;
  EXPECT_TRUE(WithinWindow(limits, std::nullopt, now));
  EXPECT_FALSE(WithinWindow(limits, now, now));  // expired at its expiry
  EXPECT_TRUE(WithinWindow(limits, now + absl::Milliseconds(1), now));
}

TEST(LinkLimitsTest, CacheMaxAgeEndsAtTheNextChangeAndIsZeroForCountedOrForwardingLinks) {
  const absl::Time now = absl::FromUnixSeconds(1000000);
  LinkLimits limits;
  EXPECT_EQ(CacheMaxAge(limits, std::nullopt, false, now), std::nullopt);
  EXPECT_EQ(CacheMaxAge(limits, now + absl::Milliseconds(2500), false, now), 2);
  EXPECT_EQ(CacheMaxAge(limits, now + absl::Milliseconds(900), false, now), 0);
  // Before valid_since (a fallback answer): until valid_since, not the expiry after it.
  limits.valid_since = now + absl::Seconds(3);
  EXPECT_EQ(CacheMaxAge(limits, now + absl::Hours(1), true, now), 3);
  // Past its expiry with a fallback: nothing changes any more (but an update, announced).
  limits.valid_since.reset();
  EXPECT_EQ(CacheMaxAge(limits, now - absl::Seconds(1), true, now), std::nullopt);
  limits.forward_query = true;
  EXPECT_EQ(CacheMaxAge(limits, std::nullopt, false, now), 0);
  EXPECT_EQ(CacheMaxAge(limits, std::nullopt, true, now), std::nullopt);
  limits.forward_query = false;
  limits.max_clicks = 5;
  EXPECT_EQ(CacheMaxAge(limits, std::nullopt, false, now), 0);
  EXPECT_EQ(CacheMaxAge(limits, std::nullopt, true, now), 0);
}

}  // namespace
}  // namespace kurt::links
