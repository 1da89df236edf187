#include "platform/grpc/grpc_wire.h"

#include <algorithm>
#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace kurt::platform {

std::optional<absl::Duration> ParseGrpcTimeout(absl::string_view value) {
  if (value.size() < 2 || value.size() > 9) {
    return std::nullopt;
  }
  absl::string_view digits = value.substr(0, value.size() - 1);
  int64_t n = 0;
  if (!std::all_of(digits.begin(), digits.end(),
                   [](char c) { return absl::ascii_isdigit(static_cast<unsigned char>(c)); }) ||
      !absl::SimpleAtoi(digits, &n)) {
    return std::nullopt;
  }
  switch (value.back()) {
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

std::string GrpcTimeoutHeader(absl::Duration timeout) {
  int64_t ms = absl::ToInt64Milliseconds(absl::Ceil(timeout, absl::Milliseconds(1)));
  if (ms < 100000000) {
    return absl::StrCat(std::max<int64_t>(1, ms), "m");
  }
  return absl::StrCat(std::min<int64_t>(99999999, (ms + 999) / 1000), "S");
}

std::string PercentEncodeGrpcMessage(absl::string_view message) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(message.size());
  for (char ch : message) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c > 0x7e || c == '%') {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    } else {
      out.push_back(ch);
    }
  }
  return out;
}

std::string PercentDecodeGrpcMessage(absl::string_view message) {
  auto digit = [](char c) {
    return c <= '9' ? c - '0' : (absl::ascii_tolower(static_cast<unsigned char>(c)) - 'a' + 10);
  };
  std::string out;
  out.reserve(message.size());
  for (size_t i = 0; i < message.size(); ++i) {
    if (message[i] == '%' && i + 2 < message.size() && absl::ascii_isxdigit(message[i + 1]) &&
        absl::ascii_isxdigit(message[i + 2])) {
      out.push_back(static_cast<char>(digit(message[i + 1]) * 16 + digit(message[i + 2])));
      i += 2;
    } else {
      out.push_back(message[i]);
    }
  }
  return out;
}

}  // namespace kurt::platform
