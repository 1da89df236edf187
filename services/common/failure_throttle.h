// Limits on failed attempts at a secret (a person's password at sign-in, a protected link's
// password), so that it cannot be guessed at speed. Each limit counts failures under its key in a
// fixed window that starts at the first one; once a key has `limit` failures, attempts under it
// are refused until its window ends, right secret or not. Callers choose the keys (per account,
// per link, per client address...) and ask about all of an attempt's at once.
//
// RedisFailureThrottle counts in Redis, so every replica of a service sees every failure. While
// Redis does not answer it counts in this process (LocalFailureThrottle): a failover weakens a
// limit by the number of replicas, never lifts it.
//
// Thread-safe; lives as long as the service.
#pragma once

#include <functional>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "platform/redis/redis.h"

namespace kurt {

// One count of failures: its key, how many failures it allows, and over what window.
struct FailureLimit {
  std::string key;
  int limit = 0;
  absl::Duration window;
};

class FailureThrottle {
 public:
  virtual ~FailureThrottle() = default;
  // How long until another attempt may be made: the longest remaining window of the limits that
  // are reached; zero when none is.
  virtual absl::Duration Wait(absl::Span<const FailureLimit> limits) = 0;
  // Counts one failure under each limit's key (the first of a window starts it).
  virtual void Failed(absl::Span<const FailureLimit> limits) = 0;
  // Forgets the failures counted under `key` (after a success).
  virtual void Clear(absl::string_view key) = 0;
};

class LocalFailureThrottle : public FailureThrottle {
 public:
  explicit LocalFailureThrottle(std::function<absl::Time()> clock = absl::Now)
      : clock_(std::move(clock)) {}

  absl::Duration Wait(absl::Span<const FailureLimit> limits) override;
  void Failed(absl::Span<const FailureLimit> limits) override;
  void Clear(absl::string_view key) override;

 private:
  struct Window {
    int failures = 0;
    absl::Time end;
  };

  const std::function<absl::Time()> clock_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Window> windows_ ABSL_GUARDED_BY(mu_);
};

class RedisFailureThrottle : public FailureThrottle {
 public:
  // `redis` outlives the throttle; `key_prefix` namespaces its keys (tests take their own).
  RedisFailureThrottle(redis::RedisClient* redis, std::string key_prefix)
      : redis_(redis), key_prefix_(std::move(key_prefix)) {}

  absl::Duration Wait(absl::Span<const FailureLimit> limits) override;
  void Failed(absl::Span<const FailureLimit> limits) override;
  void Clear(absl::string_view key) override;

 private:
  redis::RedisClient* redis_;
  const std::string key_prefix_;
  LocalFailureThrottle fallback_;
};

}  // namespace kurt
