// The rules a link must follow: what a target URL and an alias may be, and how random codes are
// made. Pure functions, no I/O.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "services/common/link_code.h"

namespace kurt::links {

inline constexpr size_t kMaxTargetLength = 2048;
inline constexpr size_t kMinAliasLength = kMinCodeLength;
inline constexpr size_t kMaxAliasLength = kMaxCodeLength;
inline constexpr size_t kRandomCodeLength = 7;
inline constexpr size_t kMaxTags = 10;
inline constexpr size_t kMaxTagLength = 50;
// ListLinks' query: shorter texts have no trigram for an index to find them by.
inline constexpr size_t kMinQueryLength = 3;
inline constexpr size_t kMaxQueryLength = 200;

// An absolute http or https URL of printable ASCII, at most kMaxTargetLength characters, with a
// host, without user:password@, and with a numeric port if it has one. The error names `field`.
absl::Status ValidateTargetUrl(absl::string_view url, absl::string_view field = "target_url");

// [A-Za-z0-9_-], kMinAliasLength to kMaxAliasLength characters, and not one of the API's own
// first path segments (v1, healthz, ...; compared without case).
absl::Status ValidateAlias(absl::string_view alias);

// One tag: 1 to kMaxTagLength of [A-Za-z0-9_.:-] (no comma, no space: safe in a URL's query and
// in the store's joined form), in lower case. The error names `field`.
absl::StatusOr<std::string> NormalizeTag(absl::string_view tag, absl::string_view field);

// A link's tags as given, at most kMaxTags: each normalized (NormalizeTag), repeats dropped (the
// first kept, in order). The error names `field` and the bad element's index.
absl::StatusOr<std::vector<std::string>> NormalizeTags(const std::vector<std::string>& tags,
                                                       absl::string_view field = "tags");

// ListLinks' query: kMinQueryLength to kMaxQueryLength characters, no control character.
absl::Status ValidateQuery(absl::string_view query);

// kRandomCodeLength characters of [A-Za-z0-9] from a cryptographic random source.
std::string RandomCode(size_t length = kRandomCodeLength);

}  // namespace kurt::links
