// Request coalescing: concurrent calls for the same key share one execution of the work (one
// database read for a hot key under a burst of cache misses, not one per request).
//
// Lives as long as its users; Do is thread-safe. Callers that join a call in flight block until
// the leader's function returns, and all get its result.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace kurt::platform {

template <typename V>
class SingleFlight {
 public:
  V Do(const std::string& key, const std::function<V()>& fn) {
    std::shared_ptr<Call> call;
    {
      std::unique_lock<std::mutex> lock(mu_);
      auto it = calls_.find(key);
      if (it != calls_.end()) {
        call = it->second;
        call->cv.wait(lock, [&] { return call->value.has_value(); });
        return *call->value;
      }
      call = std::make_shared<Call>();
      calls_.emplace(key, call);
    }
    V value = fn();
    {
      std::lock_guard<std::mutex> lock(mu_);
      call->value = value;
      calls_.erase(key);
    }
    call->cv.notify_all();
    return value;
  }

 private:
  struct Call {
    std::condition_variable cv;
    std::optional<V> value;
  };
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Call>> calls_;
};

}  // namespace kurt::platform
