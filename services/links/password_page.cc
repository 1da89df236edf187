#include "services/links/password_page.h"

#include <algorithm>
#include <cstdint>

#include "absl/strings/str_cat.h"

namespace kurt::links {
namespace {

// The number of code points of `text`, or -1 when it is not valid UTF-8.
int64_t CodePoints(absl::string_view text) {
  int64_t n = 0;
  for (size_t i = 0; i < text.size(); ++n) {
    const auto c = static_cast<unsigned char>(text[i]);
    size_t len = c < 0x80           ? 1
                 : (c >> 5) == 0x6  ? 2
                 : (c >> 4) == 0xe  ? 3
                 : (c >> 3) == 0x1e ? 4
                                    : 0;
    if (len == 0 || i + len > text.size()) {
      return -1;
    }
    for (size_t k = 1; k < len; ++k) {
      if ((static_cast<unsigned char>(text[i + k]) & 0xc0) != 0x80) {
        return -1;
      }
    }
    i += len;
  }
  return n;
}

}  // namespace

absl::Status ValidatePassword(absl::string_view password, absl::string_view field,
                              size_t min_length) {
  const int64_t n = CodePoints(password);
  if (n < 0) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": must be valid UTF-8"));
  }
  if (n < static_cast<int64_t>(min_length) || n > static_cast<int64_t>(kMaxPasswordLength)) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": must be ", min_length, " to ",
                                                   kMaxPasswordLength, " characters, not ", n));
  }
  return absl::OkStatus();
}

std::string HtmlEscape(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

google::api::HttpBody PasswordPage(absl::string_view code, PasswordPageState state,
                                   absl::Duration retry_after) {
  std::string message;
  std::string form =
      "<form method=\"post\"><label for=\"password\">Password</label> "
      "<input id=\"password\" name=\"password\" type=\"password\" required autofocus "
      "autocomplete=\"off\" maxlength=\"128\"> <button type=\"submit\">Continue</button></form>";
  switch (state) {
    case PasswordPageState::kAsk:
      break;
    case PasswordPageState::kWrong:
      message = "<p class=\"error\" role=\"alert\">Wrong password. Try again.</p>";
      break;
    case PasswordPageState::kTooMany: {
      const int64_t minutes = std::max<int64_t>(1, (absl::ToInt64Seconds(retry_after) + 59) / 60);
      message = absl::StrCat(
          "<p class=\"error\" role=\"alert\">Too many wrong passwords. Try again in ", minutes,
          minutes == 1 ? " minute" : " minutes", " (after ",
          HtmlEscape(absl::FormatTime("%H:%M UTC", absl::Now() + retry_after, absl::UTCTimeZone())),
          ").</p>");
      form.clear();
      break;
    }
  }
  google::api::HttpBody page;
  page.set_content_type("text/html; charset=utf-8");
  page.set_data(absl::StrCat(
      "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      "<meta name=\"robots\" content=\"noindex\"><title>Password required</title><style>"
      "body{font-family:system-ui,sans-serif;max-width:26rem;margin:4rem auto;padding:0 1rem}"
      "input,button{font-size:1rem;padding:.4rem}.error{color:#b00020}</style></head><body>"
      "<h1>This link is protected</h1><p>The link <code>",
      HtmlEscape(code), "</code> asks for a password before it takes you on.</p>", message, form,
      "</body></html>\n"));
  return page;
}

}  // namespace kurt::links
