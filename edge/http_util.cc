#include "edge/http_util.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "boost/asio/ip/address.hpp"

namespace kurt::edge {

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

namespace {

// An address literal as 16 bytes (IPv4 and IPv4-mapped IPv6 in the last 4); false if it is none.
bool ParseAddress(absl::string_view text, bool* v6, std::array<unsigned char, 16>* bytes) {
  boost::system::error_code ec;
  boost::asio::ip::address address = boost::asio::ip::make_address(std::string(text), ec);
  if (ec) {
    return false;
  }
  bytes->fill(0);
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    address = boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, address.to_v6());
  }
  *v6 = address.is_v6();
  if (*v6) {
    *bytes = address.to_v6().to_bytes();
  } else {
    std::array<unsigned char, 4> b = address.to_v4().to_bytes();
    std::copy(b.begin(), b.end(), bytes->begin() + 12);
  }
  return true;
}

}  // namespace

absl::StatusOr<TrustedProxies> TrustedProxies::Parse(const std::vector<std::string>& cidrs) {
  TrustedProxies out;
  for (const std::string& entry : cidrs) {
    absl::string_view text = absl::StripAsciiWhitespace(entry);
    if (text.empty()) {
      continue;
    }
    Range range;
    std::pair<absl::string_view, absl::string_view> parts =
        absl::StrSplit(text, absl::MaxSplits('/', 1));
    bool has_prefix = text.find('/') != absl::string_view::npos;
    if (!ParseAddress(parts.first, &range.v6, &range.bytes)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "trusted proxy \"", text, "\": not an IP address or a CIDR range (e.g. 10.0.0.0/8)"));
    }
    int max_prefix = range.v6 ? 128 : 32;
    range.prefix = max_prefix;
    if (has_prefix && (!absl::SimpleAtoi(parts.second, &range.prefix) || range.prefix < 0 ||
                       range.prefix > max_prefix)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "trusted proxy \"", text, "\": the prefix length must be 0 to ", max_prefix));
    }
    if (!range.v6) {
      range.prefix += 96;  // compared over the 16-byte form
    }
    out.ranges_.push_back(range);
  }
  return out;
}

bool TrustedProxies::Contains(absl::string_view ip) const {
  if (ranges_.empty()) {
    return false;
  }
  bool v6 = false;
  std::array<unsigned char, 16> bytes;
  if (!ParseAddress(ip, &v6, &bytes)) {
    return false;
  }
  for (const Range& r : ranges_) {
    if (r.v6 != v6) {
      continue;
    }
    int full = r.prefix / 8;
    if (!std::equal(bytes.begin(), bytes.begin() + full, r.bytes.begin())) {
      continue;
    }
    int rest = r.prefix % 8;
    if (rest == 0) {
      return true;
    }
    auto mask = static_cast<unsigned char>(0xFF << (8 - rest));
    if ((bytes[full] & mask) == (r.bytes[full] & mask)) {
      return true;
    }
  }
  return false;
}

std::string ClientIp(absl::string_view peer, absl::string_view forwarded_for,
                     const TrustedProxies& trusted) {
  if (forwarded_for.empty() || !trusted.Contains(peer)) {
    return std::string(peer);
  }
  absl::string_view client = peer;
  while (!forwarded_for.empty()) {
    size_t comma = forwarded_for.rfind(',');
    absl::string_view entry = absl::StripAsciiWhitespace(
        comma == absl::string_view::npos ? forwarded_for : forwarded_for.substr(comma + 1));
    forwarded_for = comma == absl::string_view::npos ? "" : forwarded_for.substr(0, comma);
    if (entry.empty()) {
      continue;
    }
    bool v6 = false;
    std::array<unsigned char, 16> bytes;
    if (!ParseAddress(entry, &v6, &bytes)) {
      break;  // not written by a proxy: the last trusted hop is as far as the chain goes
    }
    client = entry;
    if (!trusted.Contains(entry)) {
      break;
    }
  }
  return std::string(client);
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
