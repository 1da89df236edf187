// When a link answers and where to: its limits (valid_since, max_clicks, the fallback), query
// forwarding and redirect rules (docs/links.md). Plain data and pure functions, no I/O; the
// counting of max_clicks is the store's (LinksStore::CountClick).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "services/links/redirect_rules.h"

namespace kurt::links {

inline constexpr int64_t kMaxMaxClicks = 1000000000;

struct LinkLimits {
  // Before this instant the link answers as past its limits.
  std::optional<absl::Time> valid_since;
  // At most this many redirects (counted on the primary by CountClick).
  std::optional<int64_t> max_clicks;
  // Where the redirect sends past the limits; unset: NOT_FOUND.
  std::optional<std::string> fallback_url;
  // The short URL's query is merged into the target's (MergeQuery).
  bool forward_query = false;
  // Within the limits, the first rule that holds for the visitor gives the target (ChooseRule).
  std::vector<RedirectRule> redirect_rules;
  // The redirect asks for the link's password first (password_page.h); the hash stays in the
  // database, read only when a password is posted.
  bool password_protected = false;

  bool Any() const {
    return valid_since || max_clicks || fallback_url || forward_query || !redirect_rules.empty() ||
           password_protected;
  }
};

// Whether `now` is within [valid_since, expire_time) (either unset: unbounded on that side).
bool WithinWindow(const LinkLimits& limits, const std::optional<absl::Time>& expire_time,
                  absl::Time now);

// How long a redirect decided at `now` stays the right answer, for the edge's and the browser's
// caches (ResolveResponse.cache_max_age_seconds): nullopt when nothing bounds it; 0 when every
// redirect must reach the service (max_clicks counts each one; forward_query's answer depends on
// the query, and redirect rules' on the visitor, which the edge's cache key leaves out); else the
// whole seconds until the next instant at which the answer changes (valid_since, then expire_time).
// `fallback`: the answer is the fallback (the link is past its limits).
std::optional<int32_t> CacheMaxAge(const LinkLimits& limits,
                                   const std::optional<absl::Time>& expire_time, bool fallback,
                                   absl::Time now);

// `target` with the parameters of `query` (the short URL's query string as received, without the
// '?') merged into its own: the target's parameters whose name the request does not use, in their
// order, then the request's, in theirs (a name in both takes the request's values). Names are
// compared as sent, percent-encoding included; parameters are kept byte for byte, but for
// characters a URL may not hold (spaces, control and non-ASCII bytes), which are percent-encoded.
// Empty parameters ("a=1&&b=2") are dropped, and so is anything from a '#' in `query`. The
// target's fragment stays at the end. An empty query leaves the target as it is.
std::string MergeQuery(absl::string_view target, absl::string_view query);

}  // namespace kurt::links
