#include "services/links/link_cache.h"

#include <random>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "platform/core/log.h"

namespace kurt::links {

// "L|<expire unix micros or empty>|<target>" or "M" (a confirmed miss).
std::string CachedLink::Encode() const {
  if (!exists) {
    return "M";
  }
  return absl::StrCat("L|", expire_time ? absl::StrCat(absl::ToUnixMicros(*expire_time)) : "", "|",
                      target_url);
}

std::optional<CachedLink> CachedLink::Decode(absl::string_view data) {
  CachedLink l;
  if (data == "M") {
    return l;
  }
  if (data.size() < 3 || data.substr(0, 2) != "L|") {
    return std::nullopt;
  }
  data.remove_prefix(2);
  size_t bar = data.find('|');
  if (bar == absl::string_view::npos) {
    return std::nullopt;
  }
  if (bar > 0) {
    int64_t micros = 0;
    if (!absl::SimpleAtoi(data.substr(0, bar), &micros)) {
      return std::nullopt;
    }
    l.expire_time = absl::FromUnixMicros(micros);
  }
  l.exists = true;
  l.target_url = std::string(data.substr(bar + 1));
  return l;
}

RedisLinkCache::RedisLinkCache(redis::RedisClient* redis, LinkCacheOptions options)
    : redis_(redis), options_(std::move(options)) {}

absl::Duration RedisLinkCache::TtlFor(const CachedLink& link, absl::Time now) const {
  if (!link.exists) {
    return options_.miss_ttl;
  }
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_real_distribution<double> factor(1 - options_.jitter, 1 + options_.jitter);
  absl::Duration ttl = options_.ttl * factor(rng);
  if (link.expire_time) {
    ttl = std::min(ttl, *link.expire_time - now);
  }
  return std::max(ttl, absl::Milliseconds(1));
}

absl::StatusOr<std::optional<CachedLink>> RedisLinkCache::Get(const std::string& code) {
  if (has_pending_) {
    ReplayPending();
  }
  auto value = redis_->Get(Key(code));
  if (!value.ok()) {
    return value.status();
  }
  if (!value->has_value()) {
    return std::optional<CachedLink>();
  }
  std::optional<CachedLink> link = CachedLink::Decode(**value);
  if (!link) {
    KURT_LOG(kWarn, "undecodable cache entry ignored", {"code", code});
  }
  return link;
}

void RedisLinkCache::Write(const std::string& code, const CachedLink& link, bool only_if_absent) {
  absl::Time now = absl::Now();
  if (link.exists && link.expire_time && *link.expire_time <= now) {
    return;  // nothing to keep
  }
  std::vector<std::string> argv = {"SET", Key(code), link.Encode(), "PX",
                                   absl::StrCat(absl::ToInt64Milliseconds(TtlFor(link, now)))};
  if (only_if_absent) {
    argv.push_back("NX");
  }
  absl::Status s = redis_->Command(argv).status();
  if (!s.ok() && !only_if_absent) {
    // A mutation's value that did not reach Redis: keep it, so that a stale entry written
    // before does not outlive the change once Redis is back.
    std::lock_guard<std::mutex> lock(mu_);
    pending_[code] = link;
    has_pending_ = true;
  }
}

void RedisLinkCache::ReplayPending() {
  std::map<std::string, CachedLink> pending;
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending.swap(pending_);
    has_pending_ = false;
  }
  for (const auto& [code, link] : pending) {
    Write(code, link, /*only_if_absent=*/false);
  }
}

void RedisLinkCache::Fill(const std::string& code, const CachedLink& link) {
  Write(code, link, /*only_if_absent=*/true);
}

void RedisLinkCache::Put(const std::string& code, const CachedLink& link) {
  if (has_pending_) {
    ReplayPending();
  }
  Write(code, link, /*only_if_absent=*/false);
}

}  // namespace kurt::links
