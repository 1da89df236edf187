#include "services/notifications/webhook_signature.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <array>
#include <cstdlib>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace kurt::notifications {

std::string NewWebhookSecret() {
  std::array<unsigned char, 32> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
    // Without randomness no secret is safe to hand out; this does not happen on a sane host.
    std::abort();
  }
  return absl::StrCat("whsec_", absl::BytesToHexString(absl::string_view(
                                    reinterpret_cast<const char*>(bytes.data()), bytes.size())));
}

std::string SignWebhook(absl::string_view secret, absl::Time at, absl::string_view body) {
  const std::string t = absl::StrCat(absl::ToUnixSeconds(at));
  const std::string signed_payload = absl::StrCat(t, ".", body);
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int mac_size = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(signed_payload.data()), signed_payload.size(),
       mac.data(), &mac_size);
  return absl::StrCat("t=", t, ",v1=",
                      absl::BytesToHexString(
                          absl::string_view(reinterpret_cast<const char*>(mac.data()), mac_size)));
}

}  // namespace kurt::notifications
