#include "edge/response_cache.h"

#include "gtest/gtest.h"

namespace kurt::edge {
namespace {

std::shared_ptr<const CachedResponse> Redirect(const char* location) {
  auto r = std::make_shared<CachedResponse>();
  r->status = 302;
  r->headers.emplace_back("Location", location);
  return r;
}

TEST(ResponseCacheTest, HitsUntilExpiry) {
  ResponseCache cache(10);
  absl::Time now = absl::Now();
  cache.Put("/a", Redirect("x"), now + absl::Seconds(5));
  ASSERT_NE(cache.Get("/a", now), nullptr);
  EXPECT_EQ(cache.Get("/a", now)->headers[0].second, "x");
  EXPECT_EQ(cache.Get("/b", now), nullptr);
  EXPECT_EQ(cache.Get("/a", now + absl::Seconds(5)), nullptr);
  EXPECT_EQ(cache.size(), 0u);
}

TEST(ResponseCacheTest, EvictsLeastRecentlyUsed) {
  ResponseCache cache(2, /*shards=*/1);
  absl::Time now = absl::Now();
  absl::Time later = now + absl::Hours(1);
  cache.Put("/a", Redirect("a"), later);
  cache.Put("/b", Redirect("b"), later);
  ASSERT_NE(cache.Get("/a", now), nullptr);  // /b is now the least recently used
  cache.Put("/c", Redirect("c"), later);
  EXPECT_NE(cache.Get("/a", now), nullptr);
  EXPECT_EQ(cache.Get("/b", now), nullptr);
  EXPECT_NE(cache.Get("/c", now), nullptr);
  EXPECT_EQ(cache.size(), 2u);
}

TEST(ResponseCacheTest, DisabledWithZeroEntries) {
  ResponseCache cache(0);
  cache.Put("/a", Redirect("a"), absl::InfiniteFuture());
  EXPECT_EQ(cache.Get("/a", absl::Now()), nullptr);
  EXPECT_FALSE(cache.enabled());
}

}  // namespace
}  // namespace kurt::edge
