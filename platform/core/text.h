// Checks on text that crosses into Kurt from outside (HTTP bodies, Kafka headers).
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace kurt::platform {

// Whether `s` is well-formed UTF-8: no stray continuation bytes, no truncated, overlong or
// surrogate sequences, nothing past U+10FFFF. PostgreSQL's text and protobuf's string fields
// refuse anything else.
bool IsValidUtf8(absl::string_view s);

// The characters (code points) of well-formed UTF-8 `s`: what a length limit in a schema (JSON
// Schema's maxLength) or PostgreSQL's varchar(n) counts, not bytes.
size_t Utf8Length(absl::string_view s);

// Whether `s` holds an ASCII control character (U+0000 to U+001F, U+007F): what a one-line text a
// person gives (a name, a search) never holds, and NUL is what PostgreSQL's text refuses. The
// API's schema states it as the pattern "^[^\x00-\x1F\x7F]*$".
bool HasControlCharacter(absl::string_view s);
// INVALID_ARGUMENT "<field>: must not hold control characters" when `value` holds one, else OK.
absl::Status ValidateNoControlCharacter(absl::string_view value, absl::string_view field);

// Appends `text` as the inside of a JSON string (without the quotes): '"', '\\' and control
// characters escaped (\n, \r, \t by name, the others as \u00xx); well-formed UTF-8 as it is; each
// byte that is not part of well-formed UTF-8 as \ufffd (U+FFFD, the replacement character), so that
// the output is always valid JSON text whatever the input. One escaper for the logs, the edge's
// errors and the JSON reports.
void AppendJsonEscaped(absl::string_view text, std::string* out);

// The value of a hexadecimal digit (either case), or -1 when `c` is not one: for %XX escapes.
int HexDigitValue(char c);

}  // namespace kurt::platform
