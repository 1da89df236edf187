#include "services/accounts/api_key.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "openssl/crypto.h"
#include "openssl/rand.h"
#include "platform/core/sha256.h"

namespace kurt::accounts {
namespace {

constexpr absl::string_view kKeyPrefix = "kurt_";
constexpr size_t kPrefixBytes = 6;   // 12 hex digits
constexpr size_t kSecretBytes = 32;  // 64 hex digits

bool IsLowerHex(absl::string_view s, size_t length) {
  if (s.size() != length) {
    return false;
  }
  for (char c : s) {
    if (!absl::ascii_isdigit(c) && !(c >= 'a' && c <= 'f')) {
      return false;
    }
  }
  return true;
}

}  // namespace

absl::StatusOr<std::string> RandomHex(int bytes) {
  std::vector<unsigned char> buf(bytes);
  if (RAND_bytes(buf.data(), bytes) != 1) {
    return absl::InternalError("CSPRNG failure");
  }
  std::string out =
      absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(buf.data()), bytes));
  OPENSSL_cleanse(buf.data(), buf.size());
  return out;
}

std::string Sha256Hex(absl::string_view data) { return platform::Sha256Hex(data); }

absl::StatusOr<NewApiKey> GenerateApiKey() {
  absl::StatusOr<std::string> prefix = RandomHex(kPrefixBytes);
  if (!prefix.ok()) {
    return prefix.status();
  }
  absl::StatusOr<std::string> secret = RandomHex(kSecretBytes);
  if (!secret.ok()) {
    return secret.status();
  }
  NewApiKey key;
  key.prefix = *prefix;
  key.secret_hash = Sha256Hex(*secret);
  key.full_key = absl::StrCat(kKeyPrefix, *prefix, "_", *secret);
  return key;
}

absl::StatusOr<ParsedApiKey> ParseApiKey(absl::string_view key) {
  const absl::Status bad =
      absl::InvalidArgumentError("not an API key (expected kurt_<12 hex digits>_<64 hex digits>)");
  if (!absl::StartsWith(key, kKeyPrefix)) {
    return bad;
  }
  key.remove_prefix(kKeyPrefix.size());
  size_t sep = key.find('_');
  if (sep == absl::string_view::npos) {
    return bad;
  }
  absl::string_view prefix = key.substr(0, sep);
  absl::string_view secret = key.substr(sep + 1);
  if (!IsLowerHex(prefix, 2 * kPrefixBytes) || !IsLowerHex(secret, 2 * kSecretBytes)) {
    return bad;
  }
  return ParsedApiKey{std::string(prefix), std::string(secret)};
}

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace kurt::accounts
