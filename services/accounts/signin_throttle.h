// Limits on failed sign-ins, so that passwords cannot be guessed at speed: per email address (the
// account, or the address nobody has: the two look alike) and per client address. Each failure
// counts in a fixed window that starts at the first one; at the limit, sign-ins for that email or
// from that client are refused until the window ends, right password or not. A success clears the
// email's count.
//
// RedisSignInThrottle counts in Redis, so every replica of kurt-accounts sees every failure.
// While Redis does not answer it counts in this process (LocalSignInThrottle): a failover
// weakens the limit by the number of replicas, never lifts it.
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
#include "platform/redis/redis.h"

namespace kurt::accounts {

struct SignInLimits {
  int per_email = 10;
  int per_client = 100;
  absl::Duration window = absl::Minutes(15);
};

class SignInThrottle {
 public:
  virtual ~SignInThrottle() = default;
  // How long until a sign-in for `email` from `client` may be tried; zero: now. An empty
  // `client` (a caller other than the edge) has no client limit.
  virtual absl::Duration Wait(absl::string_view email, absl::string_view client) = 0;
  virtual void Failed(absl::string_view email, absl::string_view client) = 0;
  virtual void Succeeded(absl::string_view email) = 0;
};

class LocalSignInThrottle : public SignInThrottle {
 public:
  explicit LocalSignInThrottle(SignInLimits limits, std::function<absl::Time()> clock = absl::Now)
      : limits_(limits), clock_(std::move(clock)) {}

  absl::Duration Wait(absl::string_view email, absl::string_view client) override;
  void Failed(absl::string_view email, absl::string_view client) override;
  void Succeeded(absl::string_view email) override;

 private:
  struct Window {
    int failures = 0;
    absl::Time end;
  };
  absl::Duration WaitFor(const std::string& key, int limit, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Count(const std::string& key, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const SignInLimits limits_;
  const std::function<absl::Time()> clock_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Window> windows_ ABSL_GUARDED_BY(mu_);
};

class RedisSignInThrottle : public SignInThrottle {
 public:
  // `redis` outlives the throttle; `key_prefix` names its keys (tests take their own).
  RedisSignInThrottle(redis::RedisClient* redis, SignInLimits limits, std::string key_prefix)
      : redis_(redis), limits_(limits), key_prefix_(std::move(key_prefix)), fallback_(limits) {}

  absl::Duration Wait(absl::string_view email, absl::string_view client) override;
  void Failed(absl::string_view email, absl::string_view client) override;
  void Succeeded(absl::string_view email) override;

 private:
  std::string EmailKey(absl::string_view email) const;
  std::string ClientKey(absl::string_view client) const;

  redis::RedisClient* redis_;
  const SignInLimits limits_;
  const std::string key_prefix_;
  LocalSignInThrottle fallback_;
};

}  // namespace kurt::accounts
