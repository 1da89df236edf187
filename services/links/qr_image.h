// A QR code as an image: the text encoded by libqrencode at error-correction level M (15% of the
// symbol may be lost and it still reads), drawn with the 4-module quiet zone that readers need,
// as a PNG (libpng, 8-bit grey) or an SVG (one path of the dark modules). Pure functions: no
// state, safe from any thread (Debian's libqrencode is built thread-safe).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace kurt::links {

enum class QrFormat { kPng, kSvg };

// Light modules around the symbol, as ISO/IEC 18004 asks.
inline constexpr int kQrQuietZoneModules = 4;

struct QrImage {
  std::string content_type;  // image/png or image/svg+xml
  std::string data;
};

// The dark/light modules of `text`'s symbol, without the quiet zone: width * width entries,
// row by row, true for dark. INVALID_ARGUMENT when the text is empty or too long for a QR code.
struct QrMatrix {
  int width = 0;
  std::string modules;  // '1' dark, '0' light
  bool Dark(int x, int y) const { return modules[static_cast<size_t>(y) * width + x] == '1'; }
};
absl::StatusOr<QrMatrix> EncodeQr(absl::string_view text);

// `text`'s QR code on a square of `size` pixels. PNG: every module is the same whole number of
// pixels (crisp for a scanner), the symbol centred with any remainder added to the quiet zone;
// SVG: scalable, `size` is its width and height. INVALID_ARGUMENT (naming "size") when the
// symbol and its quiet zone need more than `size` pixels, one per module.
absl::StatusOr<QrImage> RenderQr(absl::string_view text, QrFormat format, int size);

}  // namespace kurt::links
