// What a password-protected link shows a person (docs/links.md): the rules of its password and
// the HTML page with the form asking for it (posted back to UnlockLink, which the edge decodes as
// it decodes a query). Pure functions, no I/O; hashing and limits on failed attempts are the
// RPCs' (links_rpcs.cc).
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/api/httpbody.pb.h"

namespace kurt::links {

inline constexpr size_t kMinPasswordLength = 4;
inline constexpr size_t kMaxPasswordLength = 128;

// kMinPasswordLength to kMaxPasswordLength characters (Unicode code points, as the API's field
// rules count them) of valid UTF-8: a password to set. One tried at a link may be shorter (an
// older rule's, a mistyped one: just wrong): `min_length` 1. The error names `field`.
absl::Status ValidatePassword(absl::string_view password, absl::string_view field = "password",
                              size_t min_length = kMinPasswordLength);

// What the page says above (or instead of) its form.
enum class PasswordPageState {
  kAsk,      // first visit: the form
  kWrong,    // after a wrong password: the form, and that it was wrong
  kTooMany,  // too many wrong ones: no form, and when to try again (`retry_after` from now)
};

// The page (text/html; charset=utf-8): a form posting `password` back to the page's own URL
// (its query string too, for links that forward it). Everything put into it is HTML-escaped.
google::api::HttpBody PasswordPage(absl::string_view code, PasswordPageState state,
                                   absl::Duration retry_after = absl::ZeroDuration());

// `text` with & < > " ' as character references.
std::string HtmlEscape(absl::string_view text);

}  // namespace kurt::links
