#include "services/links/link_cache.h"

#include "gtest/gtest.h"

namespace kurt::links {
namespace {

TEST(CachedLinkTest, EncodesAndDecodesLinksAndMisses) {
  CachedLink link{true, "https://example.com/a|b", absl::FromUnixMicros(1700000000123456)};
  auto back = CachedLink::Decode(link.Encode());
  ASSERT_TRUE(back.has_value());
  EXPECT_TRUE(back->exists);
  EXPECT_EQ(back->target_url, "https://example.com/a|b");
  EXPECT_EQ(back->expire_time, link.expire_time);

  CachedLink forever{true, "http://x.y", std::nullopt};
  EXPECT_FALSE(CachedLink::Decode(forever.Encode())->expire_time.has_value());
  EXPECT_FALSE(CachedLink::Decode(CachedLink{}.Encode())->exists);
  EXPECT_FALSE(CachedLink::Decode("garbage").has_value());
  EXPECT_FALSE(CachedLink::Decode("L|notanumber|http://x").has_value());
}

TEST(LinkCacheTtlTest, JittersAroundTheTtlAndNeverOutlivesExpiry) {
  LinkCacheOptions options;
  options.ttl = absl::Seconds(100);
  options.jitter = 0.2;
  RedisLinkCache cache(nullptr, options);
  absl::Time now = absl::Now();
  CachedLink link{true, "http://x.y", std::nullopt};
  absl::Duration lo = absl::InfiniteDuration(), hi = absl::ZeroDuration();
  for (int i = 0; i < 200; ++i) {
    absl::Duration ttl = cache.TtlFor(link, now);
    lo = std::min(lo, ttl);
    hi = std::max(hi, ttl);
  }
  EXPECT_GE(lo, absl::Seconds(80));
  EXPECT_LE(hi, absl::Seconds(120));
  EXPECT_GT(hi - lo, absl::Seconds(10)) << "TTLs must spread out";
  link.expire_time = now + absl::Seconds(3);
  EXPECT_LE(cache.TtlFor(link, now), absl::Seconds(3));
  EXPECT_EQ(cache.TtlFor(CachedLink{}, now), options.miss_ttl);
}

}  // namespace
}  // namespace kurt::links
