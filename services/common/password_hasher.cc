#include "services/common/password_hasher.h"

#include <sodium.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "platform/core/log.h"

namespace kurt {

PasswordHasher::Slot::Slot(PasswordHasher* hasher) : hasher_(hasher) {
  absl::MutexLock lock(&hasher_->mu_);
  hasher_->mu_.Await(absl::Condition(
      +[](PasswordHasher* h)
           ABSL_EXCLUSIVE_LOCKS_REQUIRED(h->mu_) { return h->running_ < h->options_.concurrency; },
      hasher_));
  ++hasher_->running_;
}

PasswordHasher::Slot::~Slot() {
  absl::MutexLock lock(&hasher_->mu_);
  --hasher_->running_;
}

PasswordHasher::PasswordHasher(PasswordHasherOptions options) : options_(options) {
  if (sodium_init() < 0) {
    KURT_LOG(kError, "libsodium cannot start");
    std::abort();
  }
  unsigned char random[32];
  randombytes_buf(random, sizeof(random));
  absl::StatusOr<std::string> nobody =
      Hash(absl::string_view(reinterpret_cast<const char*>(random), sizeof(random)));
  sodium_memzero(random, sizeof(random));
  if (!nobody.ok()) {
    KURT_LOG(kError, "cannot hash a password", {"error", nobody.status().ToString()});
    std::abort();
  }
  nobody_ = *std::move(nobody);
}

absl::StatusOr<std::string> PasswordHasher::Hash(absl::string_view password) {
  char out[crypto_pwhash_STRBYTES];
  Slot slot(this);
  if (crypto_pwhash_str_alg(out, password.data(), password.size(), options_.ops, options_.memory,
                            crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return absl::InternalError(
        absl::StrCat("cannot hash a password (argon2id needs ", options_.memory >> 20, " MiB)"));
  }
  return std::string(out);
}

bool PasswordHasher::Verify(absl::string_view hash, absl::string_view password) {
  // crypto_pwhash_str_verify reads a NUL-terminated string.
  const std::string terminated(hash);
  Slot slot(this);
  return crypto_pwhash_str_verify(terminated.c_str(), password.data(), password.size()) == 0;
}

void PasswordHasher::VerifyNobody(absl::string_view password) { (void)Verify(nobody_, password); }

}  // namespace kurt
