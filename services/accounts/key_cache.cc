#include "services/accounts/key_cache.h"

#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace kurt::accounts {

std::string RedisKeyCache::Encode(const KeyRecord& key) {
  return absl::StrCat(key.id, "|", key.account_id, "|", key.secret_hash, "|",
                      key.revoke_time ? absl::ToUnixMicros(*key.revoke_time) : 0);
}

std::optional<KeyRecord> RedisKeyCache::Decode(const std::string& prefix,
                                               const std::string& value) {
  std::vector<std::string> parts = absl::StrSplit(value, '|');
  int64_t revoked = 0;
  if (parts.size() != 4 || !absl::SimpleAtoi(parts[3], &revoked)) {
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
  return key;
}

std::optional<KeyRecord> RedisKeyCache::Get(const std::string& prefix) {
  auto value = redis_->Get(key_prefix_ + prefix);
  if (!value.ok() || !value->has_value()) {
    return std::nullopt;
  }
  return Decode(prefix, **value);
}

void RedisKeyCache::Put(const KeyRecord& key) {
  (void)redis_->Set(key_prefix_ + key.prefix, Encode(key), ttl_);
}

void RedisKeyCache::Forget(const std::string& prefix) { (void)redis_->Del({key_prefix_ + prefix}); }

}  // namespace kurt::accounts
