#include "edge/rate_limiter.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace kurt::edge {

RateDecision TakeToken(BucketState* state, bool fresh, absl::Time now, const RateLimit& limit) {
  if (fresh) {
    state->tokens = limit.burst;
    state->updated = now;
  }
  double elapsed = std::max(0.0, absl::ToDoubleSeconds(now - state->updated));
  state->tokens = std::min(limit.burst, state->tokens + elapsed * limit.per_second);
  state->updated = now;
  RateDecision d;
  if (state->tokens >= 1) {
    state->tokens -= 1;
    return d;
  }
  d.allowed = false;
  double wait = limit.per_second > 0 ? (1 - state->tokens) / limit.per_second : 3600;
  d.retry_after = absl::Milliseconds(std::ceil(wait * 1000));
  return d;
}

RateDecision LocalBuckets::Take(const std::string& key, const RateLimit& limit, absl::Time now) {
  std::lock_guard lock(mu_);
  if (buckets_.size() >= max_buckets_ && !buckets_.contains(key)) {
    // Drop buckets idle long enough to be full again; they would start full anyway.
    absl::erase_if(buckets_, [&](const auto& kv) {
      return now - kv.second.updated >
             absl::Seconds(limit.burst / limit.per_second) + absl::Seconds(1);
    });
    if (buckets_.size() >= max_buckets_) {
      buckets_.clear();
    }
  }
  auto [it, inserted] = buckets_.try_emplace(key);
  return TakeToken(&it->second, inserted, now, limit);
}

const char* RedisRateLimiter::Script() {
  // KEYS[1] bucket; ARGV rate, burst. Time from the Redis server, so replicas share one clock.
  return R"lua(
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local s = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(s[1])
local ts = tonumber(s[2])
if tokens == nil or ts == nil then tokens = burst; ts = now end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local allowed = 0
local wait_ms = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait_ms = math.ceil((1 - tokens) / rate * 1000)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, wait_ms}
)lua";
}

RedisRateLimiter::RedisRateLimiter(redis::RedisClient* redis, int threads, std::string key_prefix,
                                   size_t max_queue)
    : redis_(redis),
      key_prefix_(std::move(key_prefix)),
      max_queue_(std::max<size_t>(1, max_queue)) {
  for (int i = 0; i < std::max(1, threads); ++i) {
    threads_.emplace_back([this] { Work(); });
  }
}

RedisRateLimiter::~RedisRateLimiter() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) {
    t.join();
  }
}

void RedisRateLimiter::Take(std::string key, RateLimit limit,
                            std::function<void(RateDecision)> done) {
  {
    std::lock_guard lock(mu_);
    if (queue_.size() < max_queue_) {
      queue_.push_back(Job{std::move(key), limit, std::move(done)});
      cv_.notify_one();
      return;
    }
  }
  RateDecision overloaded;
  overloaded.allowed = false;
  overloaded.overloaded = true;
  overloaded.retry_after = absl::Seconds(1);
  done(overloaded);
}

void RedisRateLimiter::Work() {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) {
        return;
      }
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    job.done(Evaluate(job));
  }
}

RateDecision RedisRateLimiter::Evaluate(const Job& job) {
  absl::StatusOr<redis::Reply> reply =
      redis_->Command({"EVAL", Script(), "1", key_prefix_ + job.key,
                       absl::StrCat(job.limit.per_second), absl::StrCat(job.limit.burst)});
  if (reply.ok() && reply->type == redis::Reply::Type::kArray && reply->elements.size() == 2) {
    RateDecision d;
    d.allowed = reply->elements[0].integer == 1;
    d.retry_after = absl::Milliseconds(reply->elements[1].integer);
    return d;
  }
  // Redis down (the client fails fast) or a surprise: this replica's own buckets.
  return local_.Take(job.key, job.limit, absl::Now());
}

}  // namespace kurt::edge
