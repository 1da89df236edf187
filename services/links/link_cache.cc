#include "services/links/link_cache.h"

#include <random>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "kurt/api/v1/options.pb.h"
#include "kurt/links/v1/links.pb.h"
#include "platform/core/log.h"

namespace kurt::links {

// "L|<expire unix micros or empty>|<target>", or for a link with limits
// "X|<expire>|<valid since>|<max clicks>|<forward query 0/1>|<target length>|<target><fallback>"
// (empty fields: unset; a fallback of its own "-" field when absent), or for a link with redirect
// rules "R|<the fields of X up to the target length>|<fallback length>|<rule count>|<target>
// <fallback><rules>" (redirect_rules.h: EncodeRules), or for a password-protected link, with
// rules or without, "P|" and the rest as "R|" (a rule count of 0: none), or "M" (a confirmed
// miss). A process that knows only "L" (or "L" and "X", or "L", "X" and "R") reads the others as
// undecodable, a miss: it asks the database. So a protected link is never "L", "X" or "R": no
// process that does not know passwords serves its target from the cache.
std::string CachedLink::Encode() const {
  if (!exists) {
    return "M";
  }
  auto micros = [](const std::optional<absl::Time>& t) {
    return t ? absl::StrCat(absl::ToUnixMicros(*t)) : std::string();
  };
  if (!limits.Any()) {
    return absl::StrCat("L|", micros(expire_time), "|", target_url);
  }
  if (limits.password_protected || !limits.redirect_rules.empty()) {
    return absl::StrCat(
        limits.password_protected ? "P|" : "R|", micros(expire_time), "|",
        micros(limits.valid_since), "|", limits.max_clicks ? absl::StrCat(*limits.max_clicks) : "",
        "|", limits.forward_query ? "1" : "0", "|", limits.fallback_url ? "F" : "-", "|",
        target_url.size(), "|", limits.fallback_url ? limits.fallback_url->size() : 0, "|",
        limits.redirect_rules.size(), "|", target_url,
        limits.fallback_url ? *limits.fallback_url : "", EncodeRules(limits.redirect_rules));
  }
  return absl::StrCat("X|", micros(expire_time), "|", micros(limits.valid_since), "|",
                      limits.max_clicks ? absl::StrCat(*limits.max_clicks) : "", "|",
                      limits.forward_query ? "1" : "0", "|", limits.fallback_url ? "F" : "-", "|",
                      target_url.size(), "|", target_url,
                      limits.fallback_url ? *limits.fallback_url : "");
}

namespace {

// The next '|'-terminated field of `data`, which loses it.
std::optional<absl::string_view> NextField(absl::string_view* data) {
  size_t bar = data->find('|');
  if (bar == absl::string_view::npos) {
    return std::nullopt;
  }
  absl::string_view field = data->substr(0, bar);
  data->remove_prefix(bar + 1);
  return field;
}

bool ReadTime(absl::string_view field, std::optional<absl::Time>* out) {
  if (field.empty()) {
    return true;
  }
  int64_t micros = 0;
  if (!absl::SimpleAtoi(field, &micros)) {
    return false;
  }
  *out = absl::FromUnixMicros(micros);
  return true;
}

// The records with limits (see Encode): "X"; "R", two more length fields and the rules after the
// fallback; "P", as "R" with any number of rules (none too), for a password-protected link.
enum class Shape { kLimits, kRules, kProtected };

std::optional<CachedLink> DecodeWithLimits(absl::string_view data, Shape shape) {
  CachedLink l;
  l.exists = true;
  std::optional<absl::string_view> expire = NextField(&data);
  std::optional<absl::string_view> since = NextField(&data);
  std::optional<absl::string_view> max = NextField(&data);
  std::optional<absl::string_view> forward = NextField(&data);
  std::optional<absl::string_view> fallback = NextField(&data);
  std::optional<absl::string_view> length = NextField(&data);
  size_t target_size = 0;
  if (!length || !ReadTime(*expire, &l.expire_time) || !ReadTime(*since, &l.limits.valid_since) ||
      !absl::SimpleAtoi(*length, &target_size) || target_size > data.size()) {
    return std::nullopt;
  }
  size_t fallback_size = data.size() - target_size;
  if (shape != Shape::kLimits) {
    std::optional<absl::string_view> fallback_length = NextField(&data);
    std::optional<absl::string_view> rules = NextField(&data);
    size_t count = 0;
    if (!rules || !absl::SimpleAtoi(*fallback_length, &fallback_size) ||
        !absl::SimpleAtoi(*rules, &count) || (count == 0 && shape == Shape::kRules) ||
        count > kMaxRedirectRules || target_size > data.size() ||
        fallback_size > data.size() - target_size) {
      return std::nullopt;
    }
    std::optional<std::vector<RedirectRule>> decoded =
        DecodeRules(data.substr(target_size + fallback_size), count);
    if (!decoded) {
      return std::nullopt;
    }
    l.limits.redirect_rules = *std::move(decoded);
    l.limits.password_protected = shape == Shape::kProtected;
  }
  if (!max->empty()) {
    int64_t n = 0;
    if (!absl::SimpleAtoi(*max, &n)) {
      return std::nullopt;
    }
    l.limits.max_clicks = n;
  }
  l.limits.forward_query = *forward == "1";
  l.target_url = std::string(data.substr(0, target_size));
  if (*fallback == "F") {
    l.limits.fallback_url = std::string(data.substr(target_size, fallback_size));
  }
  return l;
}

}  // namespace

std::optional<CachedLink> CachedLink::Decode(absl::string_view data) {
  CachedLink l;
  if (data == "M") {
    return l;
  }
  if (data.size() >= 2 && data[1] == '|') {
    switch (data[0]) {
      case 'X':
        return DecodeWithLimits(data.substr(2), Shape::kLimits);
      case 'R':
        return DecodeWithLimits(data.substr(2), Shape::kRules);
      case 'P':
        return DecodeWithLimits(data.substr(2), Shape::kProtected);
      default:
        break;
    }
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
    : redis_(redis), options_(std::move(options)), seal_(options_.record_secret), gets_(redis) {}

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
  const std::string key = Key(code);
  auto value = redis_->Get(key);
  if (!value.ok()) {
    return value.status();
  }
  return Opened(code, key, *value);
}

void RedisLinkCache::GetAsync(const std::string& code, GetDone done) {
  if (has_pending_) {
    ReplayPending();
  }
  std::string key = Key(code);
  gets_.Get(key, [this, code, key,
                  done = std::move(done)](absl::StatusOr<std::optional<std::string>> value) {
    if (!value.ok()) {
      done(value.status());
      return;
    }
    done(Opened(code, key, *value));
  });
}

std::optional<CachedLink> RedisLinkCache::Opened(const std::string& code, const std::string& key,
                                                 const std::optional<std::string>& value) {
  if (!value.has_value()) {
    return std::nullopt;
  }
  std::optional<absl::string_view> record = seal_.Open(key, *value);
  if (!record) {
    // Forged, or from before sealing: gone, so the database's answer can fill its place.
    KURT_LOG(kWarn, "cached link does not verify; ignored and deleted", {"code", code});
    (void)redis_->Del({key});
    return std::nullopt;
  }
  std::optional<CachedLink> link = CachedLink::Decode(*record);
  if (!link) {
    KURT_LOG(kWarn, "undecodable cache entry ignored", {"code", code});
  }
  return link;
}

void RedisLinkCache::Write(const std::string& code, const CachedLink& link, bool only_if_absent,
                           bool announce) {
  absl::Time now = absl::Now();
  absl::Status s;
  if (link.exists && link.expire_time && *link.expire_time <= now) {
    // Nothing to keep; an old value expires on its own (never past the old expiry).
  } else {
    const std::string key = Key(code);
    std::vector<std::string> argv = {"SET", key, seal_.Seal(key, link.Encode()), "PX",
                                     absl::StrCat(absl::ToInt64Milliseconds(TtlFor(link, now)))};
    if (only_if_absent) {
      argv.push_back("NX");
    }
    s = redis_->Command(argv).status();
  }
  // Announced only once Redis has the new value: an edge that drops its entry and asks again
  // must not find the old one.
  if (s.ok() && announce) {
    s = Announce(code);
  }
  if (!s.ok() && !only_if_absent) {
    // A mutation's value (or its announcement) that did not reach Redis: keep it, so that a
    // stale entry written before does not outlive the change once Redis is back.
    std::lock_guard<std::mutex> lock(mu_);
    Pending& p = pending_[code];
    p.link = link;
    p.announce = p.announce || announce;
    has_pending_ = true;
  }
}

absl::Status RedisLinkCache::Announce(const std::string& code) {
  if (options_.changes_channel.empty()) {
    return absl::OkStatus();
  }
  // The edges key their cache by the request they send: the Resolve request, serialized.
  static const std::string* const kResolve = [] {
    const auto* links = v1::ResolveRequest::descriptor()->file()->FindServiceByName("LinksService");
    return new std::string(links->FindMethodByName("Resolve")->full_name());
  }();
  api::v1::RedirectChanges changes;
  changes.set_method(*kResolve);
  v1::ResolveRequest request;
  request.set_code(code);
  changes.add_requests(request.SerializeAsString());
  return redis_->Command({"PUBLISH", options_.changes_channel, changes.SerializeAsString()})
      .status();
}

void RedisLinkCache::ReplayPending() {
  std::map<std::string, Pending> pending;
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending.swap(pending_);
    has_pending_ = false;
  }
  for (const auto& [code, p] : pending) {
    Write(code, p.link, /*only_if_absent=*/false, p.announce);
  }
}

void RedisLinkCache::Fill(const std::string& code, const CachedLink& link) {
  Write(code, link, /*only_if_absent=*/true);
}

void RedisLinkCache::Put(const std::string& code, const CachedLink& link, bool announce) {
  if (has_pending_) {
    ReplayPending();
  }
  Write(code, link, /*only_if_absent=*/false, announce);
}

}  // namespace kurt::links
