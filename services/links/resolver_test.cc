#include "services/links/resolver.h"

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "services/links/fake_link_cache.h"

namespace kurt::links {
namespace {

// In-memory store: a primary and a (possibly lagging) replica copy.
class FakeStore : public LinksStore {
 public:
  std::map<std::string, ResolveRecord> primary, replica;
  std::atomic<int> replica_reads{0}, primary_reads{0};
  absl::Duration delay = absl::ZeroDuration();
  bool replica_down = false;

  absl::StatusOr<LinkRecord> Insert(const LinkRecord&) override {
    return absl::UnimplementedError("");
  }
  absl::StatusOr<BatchInsertResult> InsertBatch(const std::string&, const std::string&,
                                                const std::string&, std::vector<BatchLink>,
                                                const std::function<std::string()>&,
                                                const BatchRecorder&) override {
    return absl::UnimplementedError("");
  }
  absl::StatusOr<LinkRecord> Get(const std::string&, const std::string&) override {
    return absl::UnimplementedError("");
  }
  absl::StatusOr<std::vector<LinkRecord>> List(const std::string&, int,
                                               const std::optional<ListCursor>&,
                                               const ListFilter&) override {
    return absl::UnimplementedError("");
  }
  absl::StatusOr<LinkRecord> Update(const std::string&, const std::string&,
                                    const LinkUpdate&) override {
    return absl::UnimplementedError("");
  }
  absl::Status Delete(const std::string&, const std::string&) override {
    return absl::UnimplementedError("");
  }
  absl::StatusOr<std::optional<ResolveRecord>> LookUp(const std::string& code,
                                                      ReadFrom from) override {
    absl::SleepFor(delay);
    auto& db = from == ReadFrom::kReplica ? replica : primary;
    (from == ReadFrom::kReplica ? replica_reads : primary_reads)++;
    if (from == ReadFrom::kReplica && replica_down) {
      return absl::UnavailableError("down");
    }
    auto it = db.find(code);
    if (it == db.end()) {
      return std::optional<ResolveRecord>();
    }
    return std::optional<ResolveRecord>(it->second);
  }
  absl::StatusOr<std::optional<std::string>> PasswordHash(const std::string&) override {
    return absl::UnimplementedError("");
  }
  absl::StatusOr<bool> CountClick(const std::string&) override {
    return absl::UnimplementedError("");
  }
  absl::Status UncountClick(const std::string&) override { return absl::UnimplementedError(""); }
};

class ResolverTest : public ::testing::Test {
 protected:
  FakeStore store_;
  FakeLinkCache cache_;
  metrics::Registry registry_;
  Resolver resolver_{&store_, &cache_, &registry_, absl::Seconds(10)};
  absl::Time now_ = absl::Now();
};

TEST_F(ResolverTest, ReplicaHitIsCachedAndServedFromCacheAfterwards) {
  store_.replica["abc"] = store_.primary["abc"] = {"http://t", std::nullopt, {}};
  EXPECT_EQ(resolver_.Resolve("abc").value().target_url, "http://t");
  EXPECT_EQ(resolver_.Resolve("abc").value().target_url, "http://t");
  EXPECT_EQ(store_.replica_reads, 1);
  EXPECT_EQ(store_.primary_reads, 0);
}

TEST_F(ResolverTest, ReplicaMissIsConfirmedOnPrimaryBeforeNotFound) {
  store_.primary["new"] = {"http://fresh", std::nullopt, {}};  // the replica lags
  EXPECT_EQ(resolver_.Resolve("new").value().target_url, "http://fresh");
  EXPECT_EQ(resolver_.Resolve("nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_.primary_reads, 2);
  ASSERT_TRUE(cache_.entries.count("nope"));
  EXPECT_FALSE(cache_.entries["nope"].exists) << "the confirmed miss is cached";
  EXPECT_EQ(resolver_.Resolve("nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_.primary_reads, 2) << "the cached miss needs no database";
}

TEST_F(ResolverTest, ExpiryAndLimitsComeBackFromTheDatabaseAndTheCache) {
  // Resolve answers the link as it is; LinksRpcs decides what its expiry and limits mean.
  ResolveRecord record{"http://t", now_ + absl::Seconds(1), {}};
  record.limits.max_clicks = 3;
  record.limits.fallback_url = "http://fallback";
  store_.replica["old"] = record;
  for (int i = 0; i < 2; ++i) {  // from the database, then from the cache
    absl::StatusOr<CachedLink> link = resolver_.Resolve("old");
    ASSERT_TRUE(link.ok());
    EXPECT_EQ(link->expire_time, now_ + absl::Seconds(1));
    EXPECT_EQ(link->limits.max_clicks, 3);
    EXPECT_EQ(link->limits.fallback_url, "http://fallback");
  }
  EXPECT_EQ(store_.replica_reads, 1);
}

TEST_F(ResolverTest, ConcurrentMissesOfOneCodeShareOneRead) {
  store_.replica["hot"] = {"http://hot", std::nullopt, {}};
  store_.delay = absl::Milliseconds(100);
  std::vector<std::thread> threads;
  threads.reserve(200);
  std::atomic<int> ok{0};
  for (int i = 0; i < 200; ++i) {
    threads.emplace_back([&] { ok += resolver_.Resolve("hot").ok(); });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(ok, 200);
  EXPECT_EQ(store_.replica_reads, 1);
}

TEST_F(ResolverTest, RecentlyChangedCodesSkipTheReplica) {
  store_.replica["x1"] = {"http://stale", std::nullopt, {}};
  store_.primary["x1"] = {"http://new", std::nullopt, {}};
  resolver_.Changed("x1", CachedLink{true, "http://new", std::nullopt, {}}, /*existed=*/true);
  cache_.entries.clear();  // as if Redis lost the write
  EXPECT_EQ(resolver_.Resolve("x1").value().target_url, "http://new");
  EXPECT_EQ(store_.replica_reads, 0);
}

TEST_F(ResolverTest, CacheDownMeansDatabaseReadsNotErrors) {
  cache_.down = true;
  store_.replica["abc"] = store_.primary["abc"] = {"http://t", std::nullopt, {}};
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(resolver_.Resolve("abc").value().target_url, "http://t");
  }
  EXPECT_EQ(store_.replica_reads, 1) << "calls close together share one read";
  absl::SleepFor(Resolver::kCoalesceLinger + absl::Milliseconds(50));
  EXPECT_EQ(resolver_.Resolve("abc").value().target_url, "http://t");
  EXPECT_EQ(store_.replica_reads, 2) << "later calls read the database again";
}

TEST_F(ResolverTest, ReplicaDownFallsToPrimary) {
  store_.replica_down = true;
  store_.primary["abc"] = {"http://t", std::nullopt, {}};
  EXPECT_EQ(resolver_.Resolve("abc").value().target_url, "http://t");
}

// Four slow reads take the four load threads; what comes after them waits in the queue.
class BusyLoadsTest : public ResolverTest {
 protected:
  void SetUp() override {
    store_.delay = absl::Seconds(1);
    for (int i = 0; i < Resolver::kLoadThreads; ++i) {
      const std::string code = absl::StrCat("busy", i);
      store_.replica[code] = {"http://busy", std::nullopt, {}};
      resolver_.ResolveAsync(code, absl::InfiniteFuture(), [](const absl::StatusOr<CachedLink>& l) {
        EXPECT_TRUE(l.ok()) << l.status();
      });
    }
    absl::SleepFor(absl::Milliseconds(100));  // each load thread has taken its read
  }
};

TEST_F(BusyLoadsTest, ACallWhoseDeadlinePassedWhileItWaitedIsAnsweredWithoutARead) {
  std::mutex mu;
  std::condition_variable answered;
  std::optional<absl::Status> late;
  resolver_.ResolveAsync("late", absl::Now() + absl::Milliseconds(50),
                         [&](const absl::StatusOr<CachedLink>& l) {
                           std::lock_guard<std::mutex> lock(mu);
                           late = l.status();
                           answered.notify_one();
                         });
  std::unique_lock<std::mutex> lock(mu);
  answered.wait(lock, [&] { return late.has_value(); });
  EXPECT_EQ(late->code(), absl::StatusCode::kDeadlineExceeded) << *late;
  absl::SleepFor(absl::Milliseconds(100));  // the other busy reads have counted themselves
  EXPECT_EQ(store_.replica_reads, Resolver::kLoadThreads) << "only the busy codes were read";
  EXPECT_EQ(store_.primary_reads, 0);
}

TEST_F(BusyLoadsTest, TheCallsWaitingForAReadAreBoundedAndACodeWaitsOnce) {
  std::atomic<int> not_found{0};
  for (size_t i = 0; i < Resolver::kMaxWaitingLoads; ++i) {
    resolver_.ResolveAsync(
        "queued", absl::InfiniteFuture(),
        [&](const absl::StatusOr<CachedLink>& l) { not_found += absl::IsNotFound(l.status()); });
  }
  std::optional<absl::Status> refused;
  resolver_.ResolveAsync("onemore", absl::InfiniteFuture(),
                         [&](const absl::StatusOr<CachedLink>& l) { refused = l.status(); });
  ASSERT_TRUE(refused.has_value()) << "refused at once, on the calling thread";
  EXPECT_EQ(refused->code(), absl::StatusCode::kUnavailable) << *refused;
  // The queued calls of one code share one read (replica, then primary for the miss).
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (not_found < static_cast<int>(Resolver::kMaxWaitingLoads) && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(not_found, static_cast<int>(Resolver::kMaxWaitingLoads));
  EXPECT_EQ(store_.replica_reads, Resolver::kLoadThreads + 1);
  EXPECT_EQ(store_.primary_reads, 1);
}

// A cache that answers lookups later, on a thread of its own, as Redis's batcher does.
class HeldLinkCache : public FakeLinkCache {
 public:
  void GetAsync(const std::string&, GetDone done) override {
    std::lock_guard<std::mutex> lock(held_mu);
    held.push_back(std::move(done));
  }
  std::mutex held_mu;
  std::vector<GetDone> held;
};

TEST(ResolverLifetimeTest, DestroyingTheResolverWaitsForTheLookupsTheCacheHolds) {
  FakeStore store;
  HeldLinkCache cache;
  metrics::Registry registry;
  auto resolver = std::make_unique<Resolver>(&store, &cache, &registry);
  std::atomic<bool> answered{false};
  resolver->ResolveAsync("held", absl::InfiniteFuture(), [&](absl::StatusOr<CachedLink> link) {
    EXPECT_EQ(link.value().target_url, "http://held");
    answered = true;
  });
  std::atomic<bool> destroyed{false};
  std::thread destroyer([&] {
    resolver.reset();
    destroyed = true;
  });
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_FALSE(destroyed) << "the resolver went while the cache held one of its lookups";
  {
    std::lock_guard<std::mutex> lock(cache.held_mu);
    ASSERT_EQ(cache.held.size(), 1u);
    cache.held[0](std::optional<CachedLink>(CachedLink{true, "http://held", std::nullopt, {}}));
  }
  destroyer.join();
  EXPECT_TRUE(answered);
  EXPECT_TRUE(destroyed);
}

}  // namespace
}  // namespace kurt::links
