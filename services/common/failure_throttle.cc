#include "services/common/failure_throttle.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "platform/core/log.h"

namespace kurt {
namespace {

// The larger wait of the keys over their limits, in milliseconds (0: none). KEYS: the counters;
// ARGV: their limits.
constexpr absl::string_view kWaitScript = R"lua(
local wait = 0
for i, key in ipairs(KEYS) do
  local failures = tonumber(redis.call('GET', key) or '0')
  if failures >= tonumber(ARGV[i]) then
    local ttl = redis.call('PTTL', key)
    if ttl > wait then wait = ttl end
  end
end
return wait
)lua";

// Counts a failure on each key; the first one of a window starts it. ARGV[i]: KEYS[i]'s window
// in ms.
constexpr absl::string_view kFailScript = R"lua(
for i, key in ipairs(KEYS) do
  if redis.call('INCR', key) == 1 then redis.call('PEXPIRE', key, ARGV[i]) end
end
return 0
)lua";

}  // namespace

absl::Duration LocalFailureThrottle::Wait(absl::Span<const FailureLimit> limits) {
  const absl::Time now = clock_();
  absl::MutexLock lock(&mu_);
  absl::Duration wait = absl::ZeroDuration();
  for (const FailureLimit& l : limits) {
    auto it = windows_.find(l.key);
    if (it != windows_.end() && it->second.end > now && it->second.failures >= l.limit) {
      wait = std::max(wait, it->second.end - now);
    }
  }
  return wait;
}

void LocalFailureThrottle::Failed(absl::Span<const FailureLimit> limits) {
  const absl::Time now = clock_();
  absl::MutexLock lock(&mu_);
  // Bounded: past windows go when the map grows large.
  if (windows_.size() > 100000) {
    for (auto it = windows_.begin(); it != windows_.end();) {
      if (it->second.end <= now) {
        windows_.erase(it++);
      } else {
        ++it;
      }
    }
  }
  for (const FailureLimit& l : limits) {
    Window& w = windows_[l.key];
    if (w.end <= now) {
      w = Window{0, now + l.window};
    }
    ++w.failures;
  }
}

void LocalFailureThrottle::Clear(absl::string_view key) {
  absl::MutexLock lock(&mu_);
  windows_.erase(key);
}

absl::Duration RedisFailureThrottle::Wait(absl::Span<const FailureLimit> limits) {
  std::vector<std::string> argv = {"EVAL", std::string(kWaitScript), absl::StrCat(limits.size())};
  for (const FailureLimit& l : limits) {
    argv.push_back(absl::StrCat(key_prefix_, l.key));
  }
  for (const FailureLimit& l : limits) {
    argv.push_back(absl::StrCat(l.limit));
  }
  absl::StatusOr<redis::Reply> reply = redis_->Command(argv);
  if (!reply.ok() || reply->type != redis::Reply::Type::kInteger) {
    KURT_LOG(kWarn, "failed attempts counted in this process: Redis does not answer",
             {"error", reply.ok() ? reply->str : reply.status().ToString()});
    return fallback_.Wait(limits);
  }
  // This process's own count too: failures it counted while Redis was away still hold.
  return std::max(absl::Milliseconds(reply->integer), fallback_.Wait(limits));
}

void RedisFailureThrottle::Failed(absl::Span<const FailureLimit> limits) {
  std::vector<std::string> argv = {"EVAL", std::string(kFailScript), absl::StrCat(limits.size())};
  for (const FailureLimit& l : limits) {
    argv.push_back(absl::StrCat(key_prefix_, l.key));
  }
  for (const FailureLimit& l : limits) {
    argv.push_back(absl::StrCat(absl::ToInt64Milliseconds(l.window)));
  }
  absl::StatusOr<redis::Reply> reply = redis_->Command(argv);
  if (!reply.ok() || reply->type == redis::Reply::Type::kError) {
    fallback_.Failed(limits);
  }
}

void RedisFailureThrottle::Clear(absl::string_view key) {
  (void)redis_->Del({absl::StrCat(key_prefix_, key)});
  fallback_.Clear(key);
}

}  // namespace kurt
