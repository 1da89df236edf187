// Records a service caches in Redis, sealed with an HMAC-SHA256 under a key only the service
// holds (--redis_record_secret), over the record and the Redis key it is stored under: whoever
// can reach Redis can still delete or expire records, but not forge one (an API key's account,
// a link's target) nor move a real one to another key. A record that does not verify is not
// used: the caller treats it as a miss and goes to the database.
//
// Outside --dev_mode a binary that links this refuses to start without the secret; in dev mode
// an empty secret means a fixed development key (which protects nothing).
#pragma once

#include <optional>
#include <string>

#include "absl/flags/declare.h"
#include "absl/strings/string_view.h"

ABSL_DECLARE_FLAG(std::string, redis_record_secret);

namespace kurt::redis {

// The development key: what an empty --redis_record_secret means under --dev_mode, and the
// modules' default (in-process tests).
inline constexpr char kDevelopmentRecordSecret[] = "kurt-development-record-secret";

class RecordSeal {
 public:
  explicit RecordSeal(std::string secret);

  // --redis_record_secret, or the development key when it is empty (dev mode only: the startup
  // check refuses an empty one otherwise).
  static std::string SecretFromFlags();

  // The value to store under `key`: the MAC (64 hex digits), then the record.
  std::string Seal(absl::string_view key, absl::string_view record) const;
  // The record, if `sealed` was sealed under `key` with this secret.
  std::optional<std::string> Open(absl::string_view key, absl::string_view sealed) const;

 private:
  std::string Mac(absl::string_view key, absl::string_view record) const;

  const std::string secret_;
};

}  // namespace kurt::redis
