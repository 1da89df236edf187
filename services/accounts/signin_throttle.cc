#include "services/accounts/signin_throttle.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "platform/core/log.h"
#include "services/accounts/api_key.h"

namespace kurt::accounts {
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

// Counts a failure on each key; the first one of a window starts it. ARGV[1]: the window in ms.
constexpr absl::string_view kFailScript = R"lua(
for _, key in ipairs(KEYS) do
  if redis.call('INCR', key) == 1 then redis.call('PEXPIRE', key, ARGV[1]) end
end
return 0
)lua";

}  // namespace

absl::Duration LocalSignInThrottle::WaitFor(const std::string& key, int limit, absl::Time now) {
  auto it = windows_.find(key);
  if (it == windows_.end() || it->second.end <= now || it->second.failures < limit) {
    return absl::ZeroDuration();
  }
  return it->second.end - now;
}

void LocalSignInThrottle::Count(const std::string& key, absl::Time now) {
  Window& w = windows_[key];
  if (w.end <= now) {
    w = Window{0, now + limits_.window};
  }
  ++w.failures;
}

absl::Duration LocalSignInThrottle::Wait(absl::string_view email, absl::string_view client) {
  const absl::Time now = clock_();
  absl::MutexLock lock(&mu_);
  absl::Duration wait = WaitFor(absl::StrCat("e:", email), limits_.per_email, now);
  if (!client.empty()) {
    wait = std::max(wait, WaitFor(absl::StrCat("c:", client), limits_.per_client, now));
  }
  return wait;
}

void LocalSignInThrottle::Failed(absl::string_view email, absl::string_view client) {
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
  Count(absl::StrCat("e:", email), now);
  if (!client.empty()) {
    Count(absl::StrCat("c:", client), now);
  }
}

void LocalSignInThrottle::Succeeded(absl::string_view email) {
  absl::MutexLock lock(&mu_);
  windows_.erase(absl::StrCat("e:", email));
}

// Emails are hashed: Redis holds no one's address.
std::string RedisSignInThrottle::EmailKey(absl::string_view email) const {
  return absl::StrCat(key_prefix_, "email:", Sha256Hex(email));
}

std::string RedisSignInThrottle::ClientKey(absl::string_view client) const {
  return absl::StrCat(key_prefix_, "client:", client);
}

absl::Duration RedisSignInThrottle::Wait(absl::string_view email, absl::string_view client) {
  std::vector<std::string> argv = {"EVAL", std::string(kWaitScript), client.empty() ? "1" : "2",
                                   EmailKey(email)};
  if (!client.empty()) {
    argv.push_back(ClientKey(client));
  }
  argv.push_back(absl::StrCat(limits_.per_email));
  if (!client.empty()) {
    argv.push_back(absl::StrCat(limits_.per_client));
  }
  absl::StatusOr<redis::Reply> reply = redis_->Command(argv);
  if (!reply.ok() || reply->type != redis::Reply::Type::kInteger) {
    KURT_LOG(kWarn, "sign-in limits counted in this process: Redis does not answer",
             {"error", reply.ok() ? reply->str : reply.status().ToString()});
    return fallback_.Wait(email, client);
  }
  // This process's own count too: failures it counted while Redis was away still hold.
  return std::max(absl::Milliseconds(reply->integer), fallback_.Wait(email, client));
}

void RedisSignInThrottle::Failed(absl::string_view email, absl::string_view client) {
  std::vector<std::string> argv = {"EVAL", std::string(kFailScript), client.empty() ? "1" : "2",
                                   EmailKey(email)};
  if (!client.empty()) {
    argv.push_back(ClientKey(client));
  }
  argv.push_back(absl::StrCat(absl::ToInt64Milliseconds(limits_.window)));
  absl::StatusOr<redis::Reply> reply = redis_->Command(argv);
  if (!reply.ok() || reply->type == redis::Reply::Type::kError) {
    fallback_.Failed(email, client);
  }
}

void RedisSignInThrottle::Succeeded(absl::string_view email) {
  (void)redis_->Del({EmailKey(email)});
  fallback_.Succeeded(email);
}

}  // namespace kurt::accounts
