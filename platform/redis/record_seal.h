// Records a service caches in Redis, sealed with an HMAC-SHA256 under a key only the service
// holds (--redis_record_secret), over the record and the Redis key it is stored under: whoever
// can reach Redis can still delete or expire records, but not forge one (an API key's account,
// a link's target) nor move a real one to another key. A record that does not verify is not
// used: the caller treats it as a miss and goes to the database.
//
// Outside --dev_mode a binary that links this refuses to start without the secret; in dev mode
// an empty secret means a fixed development key (which protects nothing).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/flags/declare.h"
#include "absl/strings/string_view.h"

ABSL_DECLARE_FLAG(std::string, redis_record_secret);

typedef struct evp_mac_ctx_st EVP_MAC_CTX;

namespace kurt::redis {

// The development key: what an empty --redis_record_secret means under --dev_mode, and the
// modules' default (in-process tests).
inline constexpr char kDevelopmentRecordSecret[] = "kurt-development-record-secret";

// Seals and opens on any thread. The key's HMAC state is prepared once (with the secret mixed
// in) and each thread keeps a copy of its own to start every MAC from, so that a MAC costs the
// hashing of the record alone: no key schedule, no algorithm lookup, no shared lock.
class RecordSeal {
 public:
  explicit RecordSeal(std::string secret);
  ~RecordSeal();
  RecordSeal(const RecordSeal&) = delete;
  RecordSeal& operator=(const RecordSeal&) = delete;

  // --redis_record_secret, or the development key when it is empty (dev mode only: the startup
  // check refuses an empty one otherwise).
  static std::string SecretFromFlags();

  // The value to store under `key`: the MAC (64 hex digits), then the record.
  std::string Seal(absl::string_view key, absl::string_view record) const;
  // The record (a view into `sealed`), if `sealed` was sealed under `key` with this secret.
  std::optional<absl::string_view> Open(absl::string_view key, absl::string_view sealed) const;

 private:
  static constexpr size_t kMacHexSize = 64;
  // HMAC-SHA256 under the secret of len(key) ":" key record, as 64 lowercase hex digits.
  void Mac(absl::string_view key, absl::string_view record, char hex[kMacHexSize]) const;
  // This thread's copy of prepared_.
  EVP_MAC_CTX* ThreadContext() const;

  struct FreeContext {
    void operator()(EVP_MAC_CTX* ctx) const;
  };
  const uint64_t id_;  // names this seal's copies in each thread's slots (never reused)
  std::unique_ptr<EVP_MAC_CTX, FreeContext> prepared_;
};

}  // namespace kurt::redis
