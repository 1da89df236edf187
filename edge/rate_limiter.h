// Rate limits at the edge: token buckets (per account, per client address), shared by every edge
// replica through Redis (one atomic Lua script per check), falling back to this process's own
// buckets while Redis is down, so that limits still hold per replica.
//
// LocalBuckets and TakeToken are pure and thread-safe; RedisRateLimiter runs its Redis calls on a
// small pool of its own threads so that the edge's I/O threads never wait on Redis. Both live as
// long as the EdgeServer using them.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "platform/redis/redis.h"

namespace kurt::edge {

struct RateLimit {
  double per_second = 10;  // refill rate
  double burst = 20;       // bucket size
};

struct RateDecision {
  bool allowed = true;
  absl::Duration retry_after = absl::ZeroDuration();  // when not allowed
  // Not allowed because the limiter itself is overloaded (its queue is full), not because of the
  // bucket: the caller answers 503, not 429.
  bool overloaded = false;
};

struct BucketState {
  double tokens = 0;
  absl::Time updated;
};

// Refills `state` up to `now` and takes one token if there is one. A fresh bucket starts full.
RateDecision TakeToken(BucketState* state, bool fresh, absl::Time now, const RateLimit& limit);

// In-memory buckets; idle ones are dropped when the map grows past `max_buckets`.
class LocalBuckets {
 public:
  explicit LocalBuckets(size_t max_buckets = 100000) : max_buckets_(max_buckets) {}
  RateDecision Take(const std::string& key, const RateLimit& limit, absl::Time now);

 private:
  const size_t max_buckets_;
  std::mutex mu_;
  absl::flat_hash_map<std::string, BucketState> buckets_;
};

class RateLimiter {
 public:
  virtual ~RateLimiter() = default;
  // Calls `done` exactly once, on any thread.
  virtual void Take(std::string key, RateLimit limit, std::function<void(RateDecision)> done) = 0;
};

class RedisRateLimiter : public RateLimiter {
 public:
  // `redis` outlives the limiter. Keys are stored under `key_prefix`. At most `max_queue` checks
  // wait for a thread (each holds its request in memory); more are answered at once with
  // `overloaded`.
  explicit RedisRateLimiter(redis::RedisClient* redis, int threads = 2,
                            std::string key_prefix = "kurt:rl:", size_t max_queue = 10000);
  ~RedisRateLimiter() override;

  void Take(std::string key, RateLimit limit, std::function<void(RateDecision)> done) override;

  // The Lua script (exposed for tests).
  static const char* Script();

 private:
  struct Job {
    std::string key;
    RateLimit limit;
    std::function<void(RateDecision)> done;
  };
  void Work();
  RateDecision Evaluate(const Job& job);

  redis::RedisClient* redis_;
  const std::string key_prefix_;
  const size_t max_queue_;
  LocalBuckets local_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace kurt::edge
