#include "platform/grpc/pagination.h"

#include <algorithm>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace kurt::platform {

absl::StatusOr<int> PageSize(int requested) {
  constexpr int kDefault = 20;
  constexpr int kMax = 100;
  if (requested < 0) {
    return absl::InvalidArgumentError("page_size: must not be negative");
  }
  return requested == 0 ? kDefault : std::min(requested, kMax);
}

absl::StatusOr<PageRequest> ReadPageRequest(
    int page_size, absl::string_view page_token,
    absl::FunctionRef<bool(absl::string_view)> key_is_valid) {
  absl::StatusOr<int> size = PageSize(page_size);
  if (!size.ok()) {
    return size.status();
  }
  PageRequest page;
  page.size = *size;
  if (!page_token.empty()) {
    auto decoded = DecodePageToken(page_token);
    if (!decoded || !key_is_valid(decoded->second)) {
      return absl::InvalidArgumentError("page_token: not a token from a previous page");
    }
    page.after = PageKey{decoded->first, std::move(decoded->second)};
  }
  return page;
}

std::string EncodePageToken(absl::Time time, absl::string_view key) {
  return absl::WebSafeBase64Escape(absl::StrCat(absl::ToUnixMicros(time), ":", key));
}

std::optional<std::pair<absl::Time, std::string>> DecodePageToken(absl::string_view token) {
  std::string raw;
  int64_t micros = 0;
  if (!absl::WebSafeBase64Unescape(token, &raw)) {
    return std::nullopt;
  }
  size_t colon = raw.find(':');
  if (colon == std::string::npos || !absl::SimpleAtoi(raw.substr(0, colon), &micros)) {
    return std::nullopt;
  }
  return std::make_pair(absl::FromUnixMicros(micros), raw.substr(colon + 1));
}

}  // namespace kurt::platform
