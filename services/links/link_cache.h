// The redirect's cache in Redis: what a code resolves to (or that the primary confirmed it does
// not exist), with TTL jitter so that keys written together do not expire together.
//
// Writes from mutations (create, update, delete) overwrite; fills after a database read only add
// (SET NX), so a fill carrying a stale replica answer cannot overwrite a mutation's fresh value.
// Redis down: every call fails fast (UNAVAILABLE) and the caller goes to the database; mutations'
// writes that failed are kept and replayed once Redis answers again.
//
// Values are sealed (platform/redis/record_seal.h): one that does not verify, forged by someone
// who can write Redis (a phishing target for a real code), is a miss, and is deleted.
//
// An update or a delete is also announced to the edges on a pub/sub channel, after the write, so
// that none of them serves the old redirect from its own cache once Redis has the new one.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "platform/redis/get_batcher.h"
#include "platform/redis/record_seal.h"
#include "platform/redis/redis.h"
#include "services/links/link_limits.h"

namespace kurt::links {

struct CachedLink {
  bool exists = false;  // false: the primary confirmed there is no live link
  std::string target_url;
  std::optional<absl::Time> expire_time;
  // A link without limits is encoded as before they existed: the common value stays as short.
  LinkLimits limits;

  std::string Encode() const;
  static std::optional<CachedLink> Decode(absl::string_view data);
};

class LinkCache {
 public:
  using GetDone = std::function<void(absl::StatusOr<std::optional<CachedLink>>)>;

  virtual ~LinkCache() = default;
  virtual absl::StatusOr<std::optional<CachedLink>> Get(const std::string& code) = 0;
  // Get without waiting: `done` gets what Get would return, from whichever thread has it (this
  // one by default; RedisLinkCache's batcher's). `done` must not block for long.
  virtual void GetAsync(const std::string& code, GetDone done) {
    const GetDone answer = std::move(done);
    answer(Get(code));
  }
  // After a database read: only if nothing is cached for the code.
  virtual void Fill(const std::string& code, const CachedLink& link) = 0;
  // After a mutation: always. `announce` when the code had a link before (an update or a
  // delete): edges may hold its old redirect, and are told to drop it (RedirectChanges).
  virtual void Put(const std::string& code, const CachedLink& link, bool announce) = 0;
};

struct LinkCacheOptions {
  absl::Duration ttl = absl::Minutes(5);
  double jitter = 0.2;  // each TTL is ttl * (1 ± jitter)
  absl::Duration miss_ttl = absl::Seconds(10);
  // Namespaces the keys (several deployments, or tests, sharing one Redis).
  std::string key_prefix = "kurt:link:v1:";
  // Where changed redirects are announced to the edges (mesh::kRedirectChangesChannel); empty:
  // not announced, and edges keep an old redirect until it expires.
  std::string changes_channel;
  // Seals the values (--redis_record_secret; the same on every replica).
  std::string record_secret = redis::kDevelopmentRecordSecret;
};

class RedisLinkCache : public LinkCache {
 public:
  RedisLinkCache(redis::RedisClient* redis, LinkCacheOptions options);

  absl::StatusOr<std::optional<CachedLink>> Get(const std::string& code) override;
  // Concurrent GetAsyncs go to Redis together, as one MGET (redis::GetBatcher).
  void GetAsync(const std::string& code, GetDone done) override;
  void Fill(const std::string& code, const CachedLink& link) override;
  void Put(const std::string& code, const CachedLink& link, bool announce) override;

  // The TTL a value gets: jittered, never past the link's expiry. Exposed for tests.
  absl::Duration TtlFor(const CachedLink& link, absl::Time now) const;
  std::string Key(const std::string& code) const { return options_.key_prefix + code; }

 private:
  void Write(const std::string& code, const CachedLink& link, bool only_if_absent,
             bool announce = false);
  void ReplayPending();
  // What Redis's `value` of `code` (under `key`) says: a link, a confirmed miss, or nothing.
  std::optional<CachedLink> Opened(const std::string& code, const std::string& key,
                                   const std::optional<std::string>& value);
  // PUBLISHes the RedirectChanges of Resolve(code) on options_.changes_channel.
  absl::Status Announce(const std::string& code);

  redis::RedisClient* redis_;
  const LinkCacheOptions options_;
  const redis::RecordSeal seal_;
  redis::GetBatcher gets_;
  std::mutex mu_;
  struct Pending {
    CachedLink link;
    bool announce = false;
  };
  std::map<std::string, Pending> pending_;  // mutations Redis did not take yet
  std::atomic<bool> has_pending_{false};
};

}  // namespace kurt::links
