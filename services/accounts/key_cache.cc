#include "services/accounts/key_cache.h"

#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "platform/core/log.h"

namespace kurt::accounts {

std::string RedisKeyCache::Encode(const KeyRecord& key) {
  return absl::StrCat(key.id, "|", key.account_id, "|", key.secret_hash, "|",
                      key.revoke_time ? absl::ToUnixMicros(*key.revoke_time) : 0, "|",
                      key.expire_time ? absl::ToUnixMicros(*key.expire_time) : 0);
}

std::optional<KeyRecord> RedisKeyCache::Decode(const std::string& prefix,
                                               const std::string& value) {
  std::vector<std::string> parts = absl::StrSplit(value, '|');
  int64_t revoked = 0;
  int64_t expires = 0;
  if (parts.size() != 5 || !absl::SimpleAtoi(parts[3], &revoked) ||
      !absl::SimpleAtoi(parts[4], &expires)) {
    return std::nullopt;
  }
  KeyRecord key;
  key.id = parts[0];
  key.account_id = parts[1];
  key.secret_hash = parts[2];
  key.prefix = prefix;
  if (revoked != 0) {
    key.revoke_time = absl::FromUnixMicros(revoked);
  }
  if (expires != 0) {
    key.expire_time = absl::FromUnixMicros(expires);
  }
  return key;
}

std::optional<KeyRecord> RedisKeyCache::Get(const std::string& prefix) {
  const std::string key = key_prefix_ + prefix;
  auto value = redis_->Get(key);
  if (!value.ok() || !value->has_value()) {
    return std::nullopt;
  }
  std::optional<absl::string_view> record = seal_.Open(key, **value);
  if (!record) {
    KURT_LOG(kWarn, "cached key record does not verify; ignored and deleted", {"prefix", prefix});
    (void)redis_->Del({key});
    return std::nullopt;
  }
  return Decode(prefix, std::string(*record));
}

void RedisKeyCache::Put(const KeyRecord& key) {
  const std::string redis_key = key_prefix_ + key.prefix;
  (void)redis_->Set(redis_key, seal_.Seal(redis_key, Encode(key)), ttl_);
}

void RedisKeyCache::Forget(const std::string& prefix) { (void)redis_->Del({key_prefix_ + prefix}); }

}  // namespace kurt::accounts
