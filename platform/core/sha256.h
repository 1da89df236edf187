// SHA-256 for the hot paths (a click's salted client hash, the edge secret on every call, API
// keys). OpenSSL 3's one-shot SHA256() fetches the algorithm from its provider on every call:
// about 480 ns of CPU for a short input, most of it the fetch, against about 115 ns here with the
// algorithm fetched once and a digest context kept per thread. Thread-safe.
#pragma once

#include <array>
#include <string>

#include "absl/strings/string_view.h"

namespace kurt::platform {

using Sha256Digest = std::array<unsigned char, 32>;

Sha256Digest Sha256(absl::string_view data);
// The digest in lower-case hex (64 characters).
std::string Sha256Hex(absl::string_view data);

}  // namespace kurt::platform
