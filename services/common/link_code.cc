#include "services/common/link_code.h"

#include "absl/strings/ascii.h"

namespace kurt::links {

bool IsCodeCharacter(char c) { return absl::ascii_isalnum(c) || c == '-' || c == '_'; }

bool IsWellFormedCode(absl::string_view code) {
  if (code.size() < kMinCodeLength || code.size() > kMaxCodeLength) {
    return false;
  }
  for (char c : code) {
    if (!IsCodeCharacter(c)) {
      return false;
    }
  }
  return true;
}

}  // namespace kurt::links
