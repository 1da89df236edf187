#include "platform/redis/record_seal.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <array>
#include <atomic>
#include <cstdlib>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "platform/core/config.h"
#include "platform/core/log.h"

ABSL_FLAG(std::string, redis_record_secret, "",
          "Key of the HMAC that seals the records this service caches in Redis (a record that "
          "does not verify is a miss); the same on every replica; never logged. Required "
          "outside --dev_mode");

namespace kurt::redis {
namespace {

std::atomic<uint64_t> next_seal_id{1};

// OpenSSL failing to make or run an HMAC (out of memory): nothing can be sealed or opened.
[[noreturn]] void MacFailed(absl::string_view what) {
  KURT_LOG(kError, "record seal: HMAC-SHA256 failed", {"step", what});
  std::abort();
}

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

void RecordSeal::FreeContext::operator()(EVP_MAC_CTX* ctx) const { EVP_MAC_CTX_free(ctx); }

RecordSeal::RecordSeal(std::string secret) : id_(next_seal_id.fetch_add(1)) {
  EVP_MAC* hmac = EVP_MAC_fetch(nullptr, OSSL_MAC_NAME_HMAC, nullptr);
  if (hmac == nullptr) {
    MacFailed("fetch");
  }
  prepared_.reset(EVP_MAC_CTX_new(hmac));
  EVP_MAC_free(hmac);  // the context holds its own reference
  char digest[] = OSSL_DIGEST_NAME_SHA2_256;
  const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                               OSSL_PARAM_END};
  if (prepared_ == nullptr ||
      EVP_MAC_init(prepared_.get(), reinterpret_cast<const unsigned char*>(secret.data()),
                   secret.size(), params) != 1) {
    MacFailed("init");
  }
}

RecordSeal::~RecordSeal() = default;

std::string RecordSeal::SecretFromFlags() {
  std::string secret = absl::GetFlag(FLAGS_redis_record_secret);
  return secret.empty() ? kDevelopmentRecordSecret : secret;
}

EVP_MAC_CTX* RecordSeal::ThreadContext() const {
  // A few seals per process at most (one per cache); a slot of a seal gone is reused in turn.
  struct Slot {
    uint64_t seal = 0;
    std::unique_ptr<EVP_MAC_CTX, FreeContext> ctx;
  };
  thread_local std::array<Slot, 4> slots;
  thread_local size_t next = 0;
  for (Slot& slot : slots) {
    if (slot.seal == id_) {
      return slot.ctx.get();
    }
  }
  Slot& slot = slots[next++ % slots.size()];
  slot.ctx.reset(EVP_MAC_CTX_dup(prepared_.get()));
  if (slot.ctx == nullptr) {
    MacFailed("dup");
  }
  slot.seal = id_;
  return slot.ctx.get();
}

void RecordSeal::Mac(absl::string_view key, absl::string_view record, char hex[kMacHexSize]) const {
  EVP_MAC_CTX* ctx = ThreadContext();
  // The key's length first, so that no split of key + record gives another pair the same MAC.
  const absl::AlphaNum length(key.size());
  auto update = [ctx](absl::string_view part) {
    return EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(part.data()), part.size());
  };
  unsigned char digest[EVP_MAX_MD_SIZE];
  size_t size = 0;
  // A null key starts again from the secret's state.
  if (EVP_MAC_init(ctx, nullptr, 0, nullptr) != 1 || update(length.Piece()) != 1 ||
      update(":") != 1 || update(key) != 1 || update(record) != 1 ||
      EVP_MAC_final(ctx, digest, &size, sizeof(digest)) != 1 || size * 2 != kMacHexSize) {
    MacFailed("mac");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  for (size_t i = 0; i < size; ++i) {
    hex[2 * i] = kHex[digest[i] >> 4];
    hex[2 * i + 1] = kHex[digest[i] & 0xf];
  }
}

std::string RecordSeal::Seal(absl::string_view key, absl::string_view record) const {
  char mac[kMacHexSize];
  Mac(key, record, mac);
  return absl::StrCat(absl::string_view(mac, kMacHexSize), record);
}

std::optional<absl::string_view> RecordSeal::Open(absl::string_view key,
                                                  absl::string_view sealed) const {
  if (sealed.size() < kMacHexSize) {
    return std::nullopt;
  }
  const absl::string_view record = sealed.substr(kMacHexSize);
  char want[kMacHexSize];
  Mac(key, record, want);
  if (CRYPTO_memcmp(want, sealed.data(), kMacHexSize) != 0) {
    return std::nullopt;
  }
  return record;
}

}  // namespace kurt::redis
