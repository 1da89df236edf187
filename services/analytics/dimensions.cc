#include "services/analytics/dimensions.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "absl/types/span.h"

namespace kurt::analytics {
namespace {

// Marks of crawlers, link previewers and checkers (besides "bot" itself: MentionsBot).
constexpr absl::string_view kBotMarks[] = {"crawl",
                                           "spider",
                                           "slurp",
                                           "facebookexternalhit",
                                           "facebookcatalog",
                                           "bingpreview",
                                           "mediapartners-google",
                                           "adsbot",
                                           "headlesschrome",
                                           "lighthouse",
                                           "whatsapp/",
                                           "embedly",
                                           "quora link preview",
                                           "skypeuripreview",
                                           "vkshare",
                                           "pinterest/",
                                           "nuzzel",
                                           "outbrain",
                                           "feedfetcher",
                                           "validator"};

// Marks of HTTP client libraries and tools (besides the prefixes ClassifyUserAgent checks).
constexpr absl::string_view kHttpLibraryMarks[] = {
    "python-requests", "python-urllib",     "python-httpx",   "aiohttp",    "go-http-client",
    "okhttp",          "apache-httpclient", "libwww-perl",    "node-fetch", "undici",
    "axios/",          "httpie/",           "postmanruntime", "guzzlehttp", "reqwest",
    "dart:io",         "libcurl",           "powershell",     "insomnia",   "http_request2",
    "winhttp",         "cpp-httplib",       "grpc-"};

bool ContainsAny(absl::string_view haystack, absl::Span<const absl::string_view> needles) {
  for (absl::string_view n : needles) {
    if (absl::StrContains(haystack, n)) {
      return true;
    }
  }
  return false;
}

// "bot" as in Googlebot, bingbot, Slackbot, but not in device names such as "Cubot".
bool MentionsBot(absl::string_view ua) {
  for (size_t at = ua.find("bot"); at != absl::string_view::npos; at = ua.find("bot", at + 1)) {
    if (at >= 2 && ua.substr(at - 2, 2) == "cu") {
      continue;
    }
    return true;
  }
  return false;
}

}  // namespace

AgentFamily ClassifyUserAgent(absl::string_view user_agent) {
  if (user_agent.empty()) {
    return AgentFamily::kOther;
  }
  // Headers are at most 512 bytes (the producer truncates); lower-casing a copy is cheap.
  const std::string ua = absl::AsciiStrToLower(user_agent.substr(0, 512));

  // Bots first: most of them also claim to be Chrome or Safari.
  if (MentionsBot(ua) || ContainsAny(ua, kBotMarks)) {
    return AgentFamily::kBot;
  }
  if (absl::StartsWith(ua, "curl/") || absl::StartsWith(ua, "wget/") ||
      absl::StartsWith(ua, "java/") || absl::StartsWith(ua, "ruby") ||
      ContainsAny(ua, kHttpLibraryMarks)) {
    return AgentFamily::kHttpLibrary;
  }
  // Edge and Opera carry Chrome's token too, so they are told apart first.
  if (ContainsAny(ua, {"edg/", "edge/", "edga/", "edgios/"})) {
    return AgentFamily::kEdge;
  }
  if (ContainsAny(ua, {"opr/", "opera", "opios/", "opt/", "opx/"})) {
    return AgentFamily::kOpera;
  }
  if (ContainsAny(ua, {"firefox/", "fxios/"})) {
    return AgentFamily::kFirefox;
  }
  if (ContainsAny(ua, {"chrome/", "crios/", "chromium/"})) {
    return AgentFamily::kChrome;
  }
  if (absl::StrContains(ua, "applewebkit") &&
      (absl::StrContains(ua, "safari/") ||
       (absl::StrContains(ua, "mobile/") &&
        ContainsAny(ua, {"iphone", "ipad", "ipod", "macintosh"})))) {
    return AgentFamily::kSafari;
  }
  return AgentFamily::kOther;
}

absl::string_view AgentFamilyName(AgentFamily family) {
  switch (family) {
    case AgentFamily::kChrome:
      return "Chrome";
    case AgentFamily::kFirefox:
      return "Firefox";
    case AgentFamily::kSafari:
      return "Safari";
    case AgentFamily::kEdge:
      return "Edge";
    case AgentFamily::kOpera:
      return "Opera";
    case AgentFamily::kBot:
      return "Bot";
    case AgentFamily::kHttpLibrary:
      return "HTTP library";
    case AgentFamily::kOther:
      return "Other";
  }
  return "Other";
}

std::string ReferrerHost(absl::string_view referrer) {
  referrer = absl::StripAsciiWhitespace(referrer);
  if (referrer.empty()) {
    return "";
  }
  // scheme ":" "//" authority, RFC 3986: the scheme is a letter then letters, digits, + - .
  size_t colon = referrer.find(':');
  if (colon == 0 || colon == absl::string_view::npos || !absl::ascii_isalpha(referrer[0])) {
    return std::string(kUnknownReferrer);
  }
  for (char c : referrer.substr(0, colon)) {
    if (!absl::ascii_isalnum(c) && c != '+' && c != '-' && c != '.') {
      return std::string(kUnknownReferrer);
    }
  }
  absl::string_view rest = referrer.substr(colon + 1);
  if (!absl::ConsumePrefix(&rest, "//")) {
    return std::string(kUnknownReferrer);
  }
  absl::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (size_t at = authority.rfind('@'); at != absl::string_view::npos) {
    authority.remove_prefix(at + 1);
  }
  absl::string_view host = authority;
  if (absl::StartsWith(host, "[")) {
    size_t close = host.find(']');
    if (close == absl::string_view::npos) {
      return std::string(kUnknownReferrer);
    }
    host = host.substr(0, close + 1);
  } else if (size_t port = host.find(':'); port != absl::string_view::npos) {
    host = host.substr(0, port);
  }
  absl::ConsumeSuffix(&host, ".");
  if (host.empty() || host.size() > 253) {
    return std::string(kUnknownReferrer);
  }
  for (char c : host) {
    if (!absl::ascii_isalnum(c) && c != '.' && c != '-' && c != '_' && c != '[' && c != ']' &&
        c != ':') {
      return std::string(kUnknownReferrer);
    }
  }
  return absl::AsciiStrToLower(host);
}

}  // namespace kurt::analytics
