// Checks on text that crosses into Kurt from outside (HTTP bodies, Kafka headers).
#pragma once

#include "absl/strings/string_view.h"

namespace kurt::platform {

// Whether `s` is well-formed UTF-8: no stray continuation bytes, no truncated, overlong or
// surrogate sequences, nothing past U+10FFFF. PostgreSQL's text and protobuf's string fields
// refuse anything else.
bool IsValidUtf8(absl::string_view s);

}  // namespace kurt::platform
