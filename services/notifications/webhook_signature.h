// The signature of webhook deliveries, Stripe's scheme: each POST carries
// `Kurt-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" under the webhook's
// secret>`, so a receiver can tell a delivery from Kurt from a forged one and refuse old replays
// by t. docs/notifications.md shows how to verify it.
#pragma once

#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace kurt::notifications {

inline constexpr char kSignatureHeader[] = "kurt-signature";

// "whsec_" and 64 hex digits of the system's CSPRNG (OpenSSL RAND_bytes): 256 bits.
std::string NewWebhookSecret();

// The Kurt-Signature header's value for `body` sent at `at`.
std::string SignWebhook(absl::string_view secret, absl::Time at, absl::string_view body);

}  // namespace kurt::notifications
