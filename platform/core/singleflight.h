// Request coalescing: concurrent calls for the same key share one execution of the work (one
// database read for a hot key under a burst of cache misses, not one per request). With a
// linger, a finished call's result also answers calls that arrive shortly after it, so a burst
// that straddles the end of one call does not start another.
//
// Lives as long as its users; Do and Forget are thread-safe. Callers that join a call in flight
// block until the leader's function returns, and all get its result.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace kurt::platform {

template <typename V>
class SingleFlight {
 public:
  explicit SingleFlight(absl::Duration linger = absl::ZeroDuration()) : linger_(linger) {}

  V Do(const std::string& key, const std::function<V()>& fn) {
    std::shared_ptr<Call> call;
    {
      std::unique_lock<std::mutex> lock(mu_);
      auto it = calls_.find(key);
      if (it != calls_.end() &&
          (!it->second->value.has_value() || absl::Now() - it->second->done_at <= linger_)) {
        call = it->second;
        call->cv.wait(lock, [&] { return call->value.has_value(); });
        return *call->value;
      }
      call = std::make_shared<Call>();
      calls_[key] = call;
    }
    V value = fn();
    {
      std::lock_guard<std::mutex> lock(mu_);
      call->value = value;
      call->done_at = absl::Now();
      if (linger_ == absl::ZeroDuration()) {
        calls_.erase(key);
      } else if (calls_.size() > 1024) {
        Sweep(call->done_at);
      }
    }
    call->cv.notify_all();
    return value;
  }

  // Drops a finished result of `key` (its value changed); a call in flight is left alone.
  void Forget(const std::string& key) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = calls_.find(key);
    if (it != calls_.end() && it->second->value.has_value()) {
      calls_.erase(it);
    }
  }

 private:
  struct Call {
    std::condition_variable cv;
    std::optional<V> value;
    absl::Time done_at;
  };

  void Sweep(absl::Time now) {
    for (auto it = calls_.begin(); it != calls_.end();) {
      bool expired = it->second->value.has_value() && now - it->second->done_at > linger_;
      it = expired ? calls_.erase(it) : std::next(it);
    }
  }

  const absl::Duration linger_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Call>> calls_;
};

}  // namespace kurt::platform
