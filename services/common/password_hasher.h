// Passwords (people's, and protected links'): hashed with argon2id (libsodium's
// crypto_pwhash_str_alg, its salt and cost inside the string it returns) and checked against such
// a string. Each hash takes tens of milliseconds and `memory` bytes (64 MiB by default), so at
// most `concurrency` run at once and the others wait: a burst of sign-ins or unlocks costs time,
// never the process's memory.
//
// A check for something that has no password (a sign-in for an email nobody has) can be made
// against a hash made at start-up (VerifyNobody), so that it takes as long as a wrong password.
//
// Lives as long as the service; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace kurt {

struct PasswordHasherOptions {
  // libsodium's "interactive" cost: 2 passes over 64 MiB (about 75 ms on one core here).
  uint64_t ops = 2;
  size_t memory = size_t{64} << 20;
  int concurrency = 2;
};

class PasswordHasher {
 public:
  explicit PasswordHasher(PasswordHasherOptions options = {});

  // The argon2id string for `password`; INTERNAL if libsodium cannot (out of memory).
  absl::StatusOr<std::string> Hash(absl::string_view password);
  // Whether `password` is the one `hash` was made from (false for a malformed hash).
  bool Verify(absl::string_view hash, absl::string_view password);
  // As Verify against a hash of no one's password: always false, in the same time.
  void VerifyNobody(absl::string_view password);

 private:
  // Holds one of the `concurrency` slots while alive.
  class Slot {
   public:
    explicit Slot(PasswordHasher* hasher);
    ~Slot();
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;

   private:
    PasswordHasher* hasher_;
  };

  const PasswordHasherOptions options_;
  absl::Mutex mu_;
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  std::string nobody_;  // a hash of a random password, made in the constructor
};

}  // namespace kurt
