// What a click is aggregated by besides its link and hour: the family of its user agent and the
// host of its referrer. Pure functions; the stats RPCs show these values as they are stored.
#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace kurt::analytics {

enum class AgentFamily { kChrome, kFirefox, kSafari, kEdge, kOpera, kBot, kHttpLibrary, kOther };

// Classifies a User-Agent header. Crawlers and link-preview fetchers are kBot even when they
// pose as a browser; command-line tools and HTTP client libraries are kHttpLibrary; Chromium-based
// browsers without a family of their own (Samsung Internet, Vivaldi, ...) count as kChrome.
AgentFamily ClassifyUserAgent(absl::string_view user_agent);

// "Chrome", "Firefox", "Safari", "Edge", "Opera", "Bot", "HTTP library", "Other".
absl::string_view AgentFamilyName(AgentFamily family);

// The referrer value clicks are counted under: the lower-cased host of the Referer URL ("" when
// there was no Referer, kUnknownReferrer when it is not an absolute URL with a host).
std::string ReferrerHost(absl::string_view referrer);

inline constexpr absl::string_view kUnknownReferrer = "(unknown)";
// How the stats RPC shows clicks without a Referer (stored as "").
inline constexpr absl::string_view kDirectReferrer = "(direct)";
// How the stats RPC shows clicks of no known country (stored as ""): ISO 3166's code for an
// unknown country.
inline constexpr absl::string_view kUnknownCountry = "ZZ";

}  // namespace kurt::analytics
