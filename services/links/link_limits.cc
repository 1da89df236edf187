#include "services/links/link_limits.h"

#include <algorithm>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace kurt::links {
namespace {

absl::string_view NameOf(absl::string_view param) { return param.substr(0, param.find('=')); }

// `param` with the bytes a URL may not hold percent-encoded; the rest as given.
std::string UrlSafe(absl::string_view param) {
  std::string out;
  out.reserve(param.size());
  for (char c : param) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) {
      static constexpr char kHex[] = "0123456789ABCDEF";  // RFC 3986 2.1: upper case
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0xf]);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// Whole seconds from `now` to `t`, at least 0, at most int32's range.
int32_t SecondsUntil(absl::Time t, absl::Time now) {
  const int64_t s = absl::ToInt64Seconds(t - now);  // rounds toward zero: never past `t`
  return static_cast<int32_t>(std::clamp<int64_t>(s, 0, INT32_MAX));
}

}  // namespace

bool WithinWindow(const LinkLimits& limits, const std::optional<absl::Time>& expire_time,
                  absl::Time now) {
  return !(expire_time && *expire_time <= now) &&
         !(limits.valid_since && now < *limits.valid_since);
}

std::optional<int32_t> CacheMaxAge(const LinkLimits& limits,
                                   const std::optional<absl::Time>& expire_time, bool fallback,
                                   absl::Time now) {
  // Counted answers reach the service every time, whichever the target; so do those that depend
  // on the query or the visitor, within the limits.
  if (limits.max_clicks ||
      ((limits.forward_query || !limits.redirect_rules.empty()) && !fallback)) {
    return 0;
  }
  std::optional<int32_t> age;
  auto bound = [&](const std::optional<absl::Time>& t) {
    if (t && *t > now) {
      age = std::min(age.value_or(INT32_MAX), SecondsUntil(*t, now));
    }
  };
  bound(limits.valid_since);
  bound(expire_time);
  return age;
}

std::string MergeQuery(absl::string_view target, absl::string_view query) {
  query = query.substr(0, query.find('#'));
  std::vector<absl::string_view> given = absl::StrSplit(query, '&', absl::SkipEmpty());
  if (given.empty()) {
    return std::string(target);
  }
  const size_t hash = target.find('#');
  const absl::string_view fragment =
      hash == absl::string_view::npos ? absl::string_view() : target.substr(hash);
  absl::string_view rest = target.substr(0, hash);
  const size_t question = rest.find('?');
  const absl::string_view base = rest.substr(0, question);
  const absl::string_view own =
      question == absl::string_view::npos ? absl::string_view() : rest.substr(question + 1);

  absl::flat_hash_set<absl::string_view> names;
  for (absl::string_view p : given) {
    names.insert(NameOf(p));
  }
  std::string out(base);
  char sep = '?';
  for (absl::string_view p : absl::StrSplit(own, '&', absl::SkipEmpty())) {
    if (!names.contains(NameOf(p))) {
      absl::StrAppend(&out, std::string(1, sep), p);
      sep = '&';
    }
  }
  for (absl::string_view p : given) {
    absl::StrAppend(&out, std::string(1, sep), UrlSafe(p));
    sep = '&';
  }
  absl::StrAppend(&out, fragment);
  return out;
}

}  // namespace kurt::links
