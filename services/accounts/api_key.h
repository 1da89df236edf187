// API keys: `kurt_<prefix>_<secret>`. The prefix (12 hex digits) is the lookup handle stored in
// clear; only SHA-256 of the secret (64 hex digits, 256 random bits) is stored. Keys come from
// OpenSSL's CSPRNG and are compared in constant time. No I/O; safe from any thread.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace kurt::accounts {

struct NewApiKey {
  std::string prefix;
  std::string secret_hash;  // hex SHA-256 of the secret
  std::string full_key;     // shown once to the caller, never stored or logged
};

struct ParsedApiKey {
  std::string prefix;
  std::string secret;
};

// A fresh key; INTERNAL if the CSPRNG fails.
absl::StatusOr<NewApiKey> GenerateApiKey();

// Splits a key into prefix and secret; INVALID_ARGUMENT (without echoing the key) when it is not
// shaped like one.
absl::StatusOr<ParsedApiKey> ParseApiKey(absl::string_view key);

// Lower-case hex SHA-256.
std::string Sha256Hex(absl::string_view data);

// Equality that takes the same time wherever the inputs differ (CRYPTO_memcmp).
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

// Random lower-case hex of `bytes` random bytes (ids); INTERNAL if the CSPRNG fails.
absl::StatusOr<std::string> RandomHex(int bytes);

}  // namespace kurt::accounts
