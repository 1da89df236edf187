#include "platform/redis/record_seal.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <utility>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "platform/core/config.h"

ABSL_FLAG(std::string, redis_record_secret, "",
          "Key of the HMAC that seals the records this service caches in Redis (a record that "
          "does not verify is a miss); the same on every replica; never logged. Required "
          "outside --dev_mode");

namespace kurt::redis {
namespace {

constexpr size_t kMacHexSize = 64;

absl::Status CheckRecordSecretFlag() {
  if (absl::GetFlag(FLAGS_redis_record_secret).empty() && !absl::GetFlag(FLAGS_dev_mode)) {
    return absl::InvalidArgumentError(
        "--redis_record_secret is empty: without it anyone who can write to Redis could forge "
        "the records this service trusts (set it, the same on every replica, or --dev_mode)");
  }
  return absl::OkStatus();
}

// Every binary linking this file caches sealed records, and checks the secret at start.
[[maybe_unused]] const bool kRecordSecretChecked =
    platform::RegisterStartupCheck(&CheckRecordSecretFlag);

}  // namespace

RecordSeal::RecordSeal(std::string secret) : secret_(std::move(secret)) {}

std::string RecordSeal::SecretFromFlags() {
  std::string secret = absl::GetFlag(FLAGS_redis_record_secret);
  return secret.empty() ? kDevelopmentRecordSecret : secret;
}

std::string RecordSeal::Mac(absl::string_view key, absl::string_view record) const {
  // The key's length first, so that no split of key + record gives another pair the same MAC.
  const std::string message = absl::StrCat(key.size(), ":", key, record);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  HMAC(EVP_sha256(), secret_.data(), static_cast<int>(secret_.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest, &size);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), static_cast<size_t>(size)));
}

std::string RecordSeal::Seal(absl::string_view key, absl::string_view record) const {
  return absl::StrCat(Mac(key, record), record);
}

std::optional<std::string> RecordSeal::Open(absl::string_view key, absl::string_view sealed) const {
  if (sealed.size() < kMacHexSize) {
    return std::nullopt;
  }
  const absl::string_view record = sealed.substr(kMacHexSize);
  const std::string want = Mac(key, record);
  if (CRYPTO_memcmp(want.data(), sealed.data(), kMacHexSize) != 0) {
    return std::nullopt;
  }
  return std::string(record);
}

}  // namespace kurt::redis
