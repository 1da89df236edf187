#include "platform/core/text.h"

#include <algorithm>
#include <cstdint>

#include "absl/strings/str_cat.h"

namespace kurt::platform {

namespace {

// The length of the well-formed UTF-8 sequence that starts at s[i], or 0 when s[i] starts none
// (a stray continuation byte; a truncated, overlong or surrogate sequence; past U+10FFFF).
size_t Utf8SequenceLength(absl::string_view s, size_t i) {
  unsigned char c = s[i];
  int extra;
  uint32_t cp;
  if (c < 0x80) {
    return 1;
  }
  if ((c & 0xE0) == 0xC0) {
    extra = 1;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    extra = 2;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    extra = 3;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + extra >= s.size()) {
    return 0;
  }
  for (int k = 1; k <= extra; ++k) {
    unsigned char cc = s[i + k];
    if ((cc & 0xC0) != 0x80) {
      return 0;
    }
    cp = (cp << 6) | (cc & 0x3F);
  }
  if ((extra == 1 && cp < 0x80) || (extra == 2 && cp < 0x800) || (extra == 3 && cp < 0x10000) ||
      cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    return 0;
  }
  return static_cast<size_t>(extra) + 1;
}

}  // namespace

int HexDigitValue(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

size_t Utf8Length(absl::string_view s) {
  // Every character has exactly one byte that is not a continuation byte (10xxxxxx).
  return static_cast<size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

bool HasControlCharacter(absl::string_view s) {
  return std::any_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

absl::Status ValidateNoControlCharacter(absl::string_view value, absl::string_view field) {
  if (HasControlCharacter(value)) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": must not hold control characters"));
  }
  return absl::OkStatus();
}

bool IsValidUtf8(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    size_t n = Utf8SequenceLength(s, i);
    if (n == 0) {
      return false;
    }
    i += n;
  }
  return true;
}

void AppendJsonEscaped(absl::string_view text, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (size_t i = 0; i < text.size(); ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      size_t n = Utf8SequenceLength(text, i);
      if (n == 0) {
        // Not UTF-8: JSON text must be, so the byte becomes U+FFFD (escaped, so the output stays
        // ASCII here) and the rest goes on.
        out->append("\\ufffd");
      } else {
        out->append(text.data() + i, n);
        i += n - 1;
      }
      continue;
    }
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (c < 0x20) {
          out->append("\\u00");
          out->push_back(kHex[c >> 4]);
          out->push_back(kHex[c & 0xF]);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
}

}  // namespace kurt::platform
