// The shape of a link's code (random or an alias), which every service that takes a code from
// outside checks before it touches storage: links, analytics and reports. Pure functions.
#pragma once

#include <cstddef>

#include "absl/strings/string_view.h"

namespace kurt::links {

inline constexpr size_t kMinCodeLength = 3;
inline constexpr size_t kMaxCodeLength = 64;

// A letter, a digit, '-' or '_'.
bool IsCodeCharacter(char c);

// kMinCodeLength to kMaxCodeLength code characters: what a code or an alias can be.
bool IsWellFormedCode(absl::string_view code);

}  // namespace kurt::links
