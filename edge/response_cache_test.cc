#include "edge/response_cache.h"

#include "absl/strings/str_cat.h"
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

TEST(ResponseCacheTest, EraseDropsOneEntryAndClearAll) {
  // One shard: with the default 16, ten entries make shards of one, and "/b" may evict "/a".
  ResponseCache cache(10, 1 << 20, /*shards=*/1);
  absl::Time now = absl::Now();
  absl::Time later = now + absl::Hours(1);
  cache.Put("/a", Redirect("a"), later);
  cache.Put("/b", Redirect("b"), later);
  EXPECT_TRUE(cache.Erase("/a"));
  EXPECT_FALSE(cache.Erase("/a"));
  EXPECT_EQ(cache.Get("/a", now), nullptr);
  EXPECT_NE(cache.Get("/b", now), nullptr);
  cache.Clear();
  EXPECT_EQ(cache.Get("/b", now), nullptr);
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_EQ(cache.bytes(), 0u);
}

// An answer asked for before a drop may predate the change that caused it: it is not kept. One
// asked for after the drop is.
TEST(ResponseCacheTest, AnAnswerFromBeforeADropIsNotCached) {
  ResponseCache cache(10, 1 << 20, /*shards=*/1);
  absl::Time now = absl::Now();
  absl::Time later = now + absl::Hours(1);
  const uint64_t asked = cache.generation();
  cache.Erase("/a");  // the link changed while its old answer was on the way
  cache.Put("/a", Redirect("old"), later, asked);
  EXPECT_EQ(cache.Get("/a", now), nullptr);
  const uint64_t asked_again = cache.generation();
  cache.Put("/a", Redirect("new"), later, asked_again);
  ASSERT_NE(cache.Get("/a", now), nullptr);
  EXPECT_EQ(cache.Get("/a", now)->headers[0].second, "new");
  const uint64_t before_clear = cache.generation();
  cache.Clear();
  cache.Put("/b", Redirect("old"), later, before_clear);
  EXPECT_EQ(cache.Get("/b", now), nullptr);
}

TEST(ResponseCacheTest, EvictsLeastRecentlyUsed) {
  ResponseCache cache(2, /*max_bytes=*/1 << 20, /*shards=*/1);
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

// Large entries cannot grow the cache past its byte budget: the least recently used go first, and
// an entry larger than the whole budget is not kept at all.
TEST(ResponseCacheTest, BoundedInBytes) {
  const size_t budget = 64 << 10;
  ResponseCache cache(1000, budget, /*shards=*/1);
  absl::Time now = absl::Now();
  absl::Time later = now + absl::Hours(1);
  cache.Put("/hot", Redirect("hot"), later);
  std::string big(4096, 'x');
  for (int i = 0; i < 200; ++i) {
    ASSERT_NE(cache.Get("/hot", now), nullptr) << i;  // used between the others: stays
    cache.Put(absl::StrCat("/junk", i, "?", big), Redirect("junk"), later);
    EXPECT_LE(cache.bytes(), budget);
  }
  EXPECT_NE(cache.Get("/hot", now), nullptr);
  EXPECT_LT(cache.size(), 20u);
  cache.Put(std::string(budget, 'k'), Redirect("huge"), later);
  EXPECT_EQ(cache.Get(std::string(budget, 'k'), now), nullptr);
  EXPECT_NE(cache.Get("/hot", now), nullptr);
}

TEST(ResponseCacheTest, ReplacingAnEntryKeepsTheByteCount) {
  ResponseCache cache(10, 1 << 20, /*shards=*/1);
  absl::Time later = absl::Now() + absl::Hours(1);
  cache.Put("/a", Redirect("a"), later);
  size_t one = cache.bytes();
  cache.Put("/a", Redirect("a"), later);
  EXPECT_EQ(cache.bytes(), one);
  EXPECT_EQ(one, ResponseCache::EntryBytes("/a", *Redirect("a")));
}

}  // namespace
}  // namespace kurt::edge
