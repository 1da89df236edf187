#include "edge/http_util.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace kurt::edge {

std::optional<absl::Duration> ParseGrpcTimeout(absl::string_view text) {
  if (text.size() < 2 || text.size() > 9) {
    return std::nullopt;
  }
  int64_t n;
  absl::string_view digits = text.substr(0, text.size() - 1);
  for (char c : digits) {
    if (!absl::ascii_isdigit(c)) {
      return std::nullopt;
    }
  }
  if (!absl::SimpleAtoi(digits, &n)) {
    return std::nullopt;
  }
  switch (text.back()) {
    case 'H':
      return absl::Hours(n);
    case 'M':
      return absl::Minutes(n);
    case 'S':
      return absl::Seconds(n);
    case 'm':
      return absl::Milliseconds(n);
    case 'u':
      return absl::Microseconds(n);
    case 'n':
      return absl::Nanoseconds(n);
    default:
      return std::nullopt;
  }
}

std::optional<absl::Duration> ParseRequestTimeout(absl::string_view text) {
  text = absl::StripAsciiWhitespace(text);
  double seconds;
  if (!text.empty() && absl::ascii_isdigit(text.front()) && absl::SimpleAtod(text, &seconds)) {
    return seconds > 0 ? std::optional(absl::Seconds(seconds)) : std::nullopt;
  }
  absl::Duration d;
  if (absl::ParseDuration(text, &d) && d > absl::ZeroDuration()) {
    return d;
  }
  return std::nullopt;
}

std::string ClientIp(absl::string_view peer, absl::string_view forwarded_for,
                     bool trust_forwarded_for) {
  if (trust_forwarded_for && !forwarded_for.empty()) {
    absl::string_view first =
        absl::StripAsciiWhitespace(*absl::StrSplit(forwarded_for, absl::MaxSplits(',', 1)).begin());
    if (!first.empty()) {
      return std::string(first);
    }
  }
  return std::string(peer);
}

std::string StrongEtag(absl::string_view body) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : body) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return absl::StrCat("\"", absl::Hex(h, absl::kZeroPad16), "-", absl::Hex(body.size()), "\"");
}

bool IfNoneMatch(absl::string_view header, absl::string_view etag) {
  for (absl::string_view tag : absl::StrSplit(header, ',')) {
    tag = absl::StripAsciiWhitespace(tag);
    if (tag == "*") {
      return true;
    }
    if (absl::StartsWith(tag, "W/")) {
      tag.remove_prefix(2);  // weak comparison for GET
    }
    if (tag == etag) {
      return true;
    }
  }
  return false;
}

std::string MetadataSafe(absl::string_view value, size_t max_size) {
  std::string out;
  out.reserve(std::min(value.size(), max_size));
  for (char c : value) {
    if (out.size() >= max_size) {
      break;
    }
    if (c >= 0x20 && c <= 0x7e) {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace kurt::edge
