#include "services/links/link_rules.h"

#include <openssl/rand.h>

#include <algorithm>
#include <array>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "platform/core/text.h"

namespace kurt::links {
namespace {

// First path segments the edge serves itself; an alias equal to one would shadow it.
constexpr std::array<absl::string_view, 12> kReserved = {
    "api",    "admin", "assets", "healthz", "readyz",  "metrics",
    "static", "docs",  "login",  "logout",  "openapi", "well-known"};

}  // namespace

absl::Status ValidateTargetUrl(absl::string_view url, absl::string_view field) {
  if (url.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": required"));
  }
  if (url.size() > kMaxTargetLength) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": longer than ", kMaxTargetLength, " characters"));
  }
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ": must be printable ASCII without spaces (percent-encode other characters)"));
    }
  }
  size_t colon = url.find("://");
  std::string scheme =
      colon == absl::string_view::npos ? "" : absl::AsciiStrToLower(url.substr(0, colon));
  if (scheme != "http" && scheme != "https") {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": must be an absolute http:// or https:// URL"));
  }
  absl::string_view rest = url.substr(colon + 3);
  absl::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (absl::StrContains(authority, '@')) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": must not carry credentials (user:password@)"));
  }
  absl::string_view host = authority;
  if (absl::StartsWith(authority, "[")) {  // IPv6 literal
    size_t close = authority.find(']');
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(field, ": malformed IPv6 host"));
    }
    host = authority.substr(0, close + 1);
    absl::string_view after = authority.substr(close + 1);
    if (!after.empty() && after[0] != ':') {
      return absl::InvalidArgumentError(absl::StrCat(field, ": malformed host"));
    }
    authority = after;
  } else {
    size_t port_colon = authority.rfind(':');
    host = authority.substr(0, port_colon);
    authority = port_colon == absl::string_view::npos ? "" : authority.substr(port_colon);
  }
  if (host.empty() || host == "[]") {
    return absl::InvalidArgumentError(absl::StrCat(field, ": has no host"));
  }
  // RFC 3986's reg-name characters, or an IPv6 literal's: what the proto's pattern declares.
  const bool literal = absl::StartsWith(host, "[");
  for (char c : literal ? host.substr(1, host.size() - 2) : host) {
    const auto u = static_cast<unsigned char>(c);
    const bool ok = literal ? absl::ascii_isxdigit(u) || c == ':' || c == '.'
                            : absl::ascii_isalnum(u) || absl::StrContains("-._~%!$&'()*+,;=", c);
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat(field, ": malformed host"));
    }
  }
  if (!authority.empty()) {  // ":port"
    int port = 0;
    if (!absl::SimpleAtoi(authority.substr(1), &port) || port < 1 || port > 65535) {
      return absl::InvalidArgumentError(absl::StrCat(field, ": invalid port"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateAlias(absl::string_view alias) {
  if (alias.size() < kMinAliasLength || alias.size() > kMaxAliasLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("alias: must be ", kMinAliasLength, " to ", kMaxAliasLength, " characters"));
  }
  for (char c : alias) {
    if (!IsCodeCharacter(c)) {
      return absl::InvalidArgumentError("alias: may contain only letters, digits, '-' and '_'");
    }
  }
  const std::string lower = absl::AsciiStrToLower(alias);
  bool version_like = lower.size() >= 2 && lower[0] == 'v' &&
                      lower.find_first_not_of("0123456789", 1) == std::string::npos;
  for (absl::string_view reserved : kReserved) {
    if (lower == reserved) {
      version_like = true;
    }
  }
  if (version_like) {
    return absl::InvalidArgumentError(
        absl::StrCat("alias: '", alias, "' is reserved for the API's own paths"));
  }
  return absl::OkStatus();
}

std::string RandomCode(size_t length) {
  static constexpr absl::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::string code;
  code.reserve(length);
  unsigned char buf[64];
  while (code.size() < length) {
    if (RAND_bytes(buf, sizeof(buf)) != 1) {
      std::abort();  // no entropy: cannot go on safely
    }
    for (unsigned char b : buf) {
      // 248 = 4 * 62: reject the top values so every character is equally likely.
      if (b < 248 && code.size() < length) {
        code.push_back(kAlphabet[b % 62]);
      }
    }
  }
  return code;
}

absl::StatusOr<std::string> NormalizeTag(absl::string_view tag, absl::string_view field) {
  if (tag.empty() || tag.size() > kMaxTagLength) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": a tag is 1 to ", kMaxTagLength, " characters"));
  }
  std::string out(tag);
  for (char& c : out) {
    if (!absl::ascii_isalnum(c) && c != '_' && c != '.' && c != ':' && c != '-') {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ": a tag is made of letters, digits, '_', '.', ':' and '-', not '", tag, "'"));
    }
    c = absl::ascii_tolower(c);
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> NormalizeTags(const std::vector<std::string>& tags,
                                                       absl::string_view field) {
  if (tags.size() > kMaxTags) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": at most ", kMaxTags, " tags, not ", tags.size()));
  }
  std::vector<std::string> out;
  for (size_t i = 0; i < tags.size(); ++i) {
    absl::StatusOr<std::string> tag = NormalizeTag(tags[i], absl::StrCat(field, "[", i, "]"));
    if (!tag.ok()) {
      return tag.status();
    }
    if (std::find(out.begin(), out.end(), *tag) == out.end()) {
      out.push_back(*std::move(tag));
    }
  }
  return out;
}

absl::Status ValidateQuery(absl::string_view query) {
  const size_t length = platform::Utf8Length(query);
  if (length < kMinQueryLength || length > kMaxQueryLength) {
    return absl::InvalidArgumentError(absl::StrCat("query: must be ", kMinQueryLength, " to ",
                                                   kMaxQueryLength, " characters, not ", length));
  }
  return platform::ValidateNoControlCharacter(query, "query");
}

}  // namespace kurt::links
