// A short-lived Redis cache of API-key and session-token lookups (prefix → account, key id, secret
// hash, revoked, expiry), so that the edge's Authenticate calls do not all reach PostgreSQL.
// Entries live `ttl`; a revoke deletes its entry, so a revoked key stops working at once on this
// path and within `ttl` even if the delete is lost (Redis down). Redis errors are misses: the store
// answers instead. Records are sealed (platform/redis/record_seal.h): one that does not verify,
// forged by someone who can write Redis, is a miss too, and is deleted.
//
// Lives as long as the service; thread-safe.
#pragma once

#include <optional>
#include <string>

#include "absl/time/time.h"
#include "platform/redis/record_seal.h"
#include "platform/redis/redis.h"
#include "services/accounts/accounts_store.h"

namespace kurt::accounts {

class KeyCache {
 public:
  virtual ~KeyCache() = default;
  virtual std::optional<KeyRecord> Get(const std::string& prefix) = 0;
  virtual void Put(const KeyRecord& key) = 0;
  virtual void Forget(const std::string& prefix) = 0;
};

class NoKeyCache : public KeyCache {
 public:
  std::optional<KeyRecord> Get(const std::string&) override { return std::nullopt; }
  void Put(const KeyRecord&) override {}
  void Forget(const std::string&) override {}
};

class RedisKeyCache : public KeyCache {
 public:
  // `redis` outlives the cache.
  RedisKeyCache(redis::RedisClient* redis, absl::Duration ttl, std::string key_prefix,
                std::string record_secret)
      : redis_(redis),
        ttl_(ttl),
        key_prefix_(std::move(key_prefix)),
        seal_(std::move(record_secret)) {}

  std::optional<KeyRecord> Get(const std::string& prefix) override;
  void Put(const KeyRecord& key) override;
  void Forget(const std::string& prefix) override;

  // The cached form (exposed for tests).
  static std::string Encode(const KeyRecord& key);
  static std::optional<KeyRecord> Decode(const std::string& prefix, const std::string& value);

 private:
  redis::RedisClient* redis_;
  const absl::Duration ttl_;
  const std::string key_prefix_;
  const redis::RecordSeal seal_;
};

}  // namespace kurt::accounts
