// The rules a link must follow: what a target URL and an alias may be, and how random codes are
// made. Pure functions, no I/O.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "services/common/link_code.h"

namespace kurt::links {

inline constexpr size_t kMaxTargetLength = 2048;
inline constexpr size_t kMinAliasLength = kMinCodeLength;
inline constexpr size_t kMaxAliasLength = kMaxCodeLength;
inline constexpr size_t kRandomCodeLength = 7;

// An absolute http or https URL of printable ASCII, at most kMaxTargetLength characters, with a
// host, without user:password@, and with a numeric port if it has one. The error names `field`.
absl::Status ValidateTargetUrl(absl::string_view url, absl::string_view field = "target_url");

// [A-Za-z0-9_-], kMinAliasLength to kMaxAliasLength characters, and not one of the API's own
// first path segments (v1, healthz, ...; compared without case).
absl::Status ValidateAlias(absl::string_view alias);

// kRandomCodeLength characters of [A-Za-z0-9] from a cryptographic random source.
std::string RandomCode(size_t length = kRandomCodeLength);

}  // namespace kurt::links
