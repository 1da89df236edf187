// The redirect's read path: Redis, then a read replica, then the primary.
//
// A code the replica does not know is looked up on the primary before anyone is told it does not
// exist (a link created a moment ago resolves while the replica lags), and only then is the miss
// cached. Concurrent misses of one code share one database read. Codes changed by this process
// in the last few seconds skip the replica, whose copy may predate the change. A load's result
// also answers misses of that code for a moment after it (kCoalesceLinger), so that a burst makes
// one read even when Redis is slow or down.
//
// ResolveAsync answers a cache hit from the thread that has Redis's answer (LinkCache::GetAsync)
// and takes the rest (misses and Redis errors, which read the database) to threads of its own
// (kLoadThreads), so that a database read never holds up the cache's other answers. Calls waiting
// for those threads are bounded (kMaxWaitingLoads: a database outage does not queue them without
// limit), wait once per code (the calls of one code share one queued read), and are answered
// DEADLINE_EXCEEDED without a read once their caller's deadline has passed. Resolve is
// ResolveAsync waited for.
//
// Lives as long as the service; Resolve and ResolveAsync are thread-safe. Destroying it answers
// the calls still waiting for a load thread UNAVAILABLE ("kurt-links is stopping") at once, on the
// destroying thread, and waits only for the loads under way and the lookups the cache still holds
// (answered on its own thread; a miss among them gets the same UNAVAILABLE).
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "platform/core/metrics.h"
#include "platform/core/singleflight.h"
#include "services/links/link_cache.h"
#include "services/links/links_store.h"

namespace kurt::links {

class Resolver {
 public:
  static constexpr absl::Duration kCoalesceLinger = absl::Milliseconds(200);
  // Threads reading the database for ResolveAsync (as many reads at once; more wait their turn).
  static constexpr int kLoadThreads = 4;
  // Calls waiting for a load thread at most; more are answered UNAVAILABLE at once.
  static constexpr size_t kMaxWaitingLoads = 10000;
  using ResolveDone = std::function<void(absl::StatusOr<CachedLink>)>;

  // Every pointer outlives the resolver. `recent_window` should exceed the replica lag bound.
  Resolver(LinksStore* store, LinkCache* cache, metrics::Registry* registry,
           absl::Duration recent_window = absl::Seconds(10));
  ~Resolver();

  // The live link with this code (whatever its expiry and limits: the caller decides); NOT_FOUND
  // when there is none; DEADLINE_EXCEEDED when it had to wait for a database read past
  // `deadline`; UNAVAILABLE when too many calls wait for one. Not from a thread that answers
  // the cache's lookups.
  absl::StatusOr<CachedLink> Resolve(const std::string& code,
                                     absl::Time deadline = absl::InfiniteFuture());
  // Resolve without waiting: `done` gets what Resolve would return, once, from the cache's thread
  // (a hit) or one of the load threads (or this one, when the cache answers at once).
  void ResolveAsync(const std::string& code, absl::Time deadline, ResolveDone done);

  // Called after a mutation of `code` committed: writes the new state through to the cache and
  // keeps the replica out of this code's reads for a while. `existed`: the code had a link
  // before (an update or a delete), which edges may have cached: they are told.
  void Changed(const std::string& code, const CachedLink& now_is, bool existed);

 private:
  struct Waiter {
    absl::Time deadline;
    ResolveDone done;
  };
  absl::StatusOr<CachedLink> Load(const std::string& code);
  // The cache had no answer: the database's, shared by concurrent misses of the code.
  absl::StatusOr<CachedLink> LoadShared(const std::string& code);
  bool RecentlyChanged(const std::string& code);
  // A miss or a cache error: waits for a load thread with the other calls of its code.
  void QueueLoad(const std::string& code, Waiter waiter);
  void RunLoads();
  // Answers the waiters of one code: those whose deadline has passed without a read.
  void LoadFor(const std::string& code, std::vector<Waiter>& waiters);
  // Every ResolveAsync ends here: `done` called, and the call no longer in flight.
  void Answer(ResolveDone& done, absl::StatusOr<CachedLink> link);

  LinksStore* store_;
  LinkCache* cache_;
  const absl::Duration recent_window_;
  platform::SingleFlight<absl::StatusOr<CachedLink>> flight_;
  std::mutex mu_;
  std::map<std::string, absl::Time> recent_;
  metrics::Counter* cache_hits_;
  metrics::Counter* cache_misses_;
  metrics::Counter* cache_errors_;
  std::mutex in_flight_mu_;
  std::condition_variable idle_;
  size_t in_flight_ = 0;  // ResolveAsyncs not yet answered
  std::mutex loads_mu_;
  std::condition_variable loads_wake_;
  std::deque<std::string> load_order_;                            // codes waiting, oldest first
  std::unordered_map<std::string, std::vector<Waiter>> waiting_;  // their calls, by code
  size_t waiting_calls_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> load_threads_;  // last: they read the members above
};

}  // namespace kurt::links
