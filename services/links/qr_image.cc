#include "services/links/qr_image.h"

#include <qrencode.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "png.h"

namespace kurt::links {
namespace {

struct QrCodeFree {
  void operator()(QRcode* code) const { QRcode_free(code); }
};

absl::StatusOr<QrImage> Png(const QrMatrix& m, int size) {
  const int total = m.width + 2 * kQrQuietZoneModules;
  const int scale = size / total;
  const int offset = (size - scale * total) / 2 + kQrQuietZoneModules * scale;
  std::vector<png_byte> pixels(static_cast<size_t>(size) * size, 0xff);
  for (int y = 0; y < m.width; ++y) {
    for (int x = 0; x < m.width; ++x) {
      if (!m.Dark(x, y)) {
        continue;
      }
      for (int dy = 0; dy < scale; ++dy) {
        png_byte* row = &pixels[static_cast<size_t>(offset + y * scale + dy) * size];
        std::memset(row + offset + static_cast<ptrdiff_t>(x) * scale, 0, scale);
      }
    }
  }
  // libpng's simplified API: it reports errors in `image.message` instead of longjmp'ing
  // through this C++ frame.
  png_image image;
  std::memset(&image, 0, sizeof(image));
  image.version = PNG_IMAGE_VERSION;
  image.width = size;
  image.height = size;
  image.format = PNG_FORMAT_GRAY;
  png_alloc_size_t bytes = 0;
  if (png_image_write_to_memory(&image, nullptr, &bytes, 0, pixels.data(), size, nullptr) == 0) {
    return absl::InternalError(absl::StrCat("png: ", image.message));
  }
  QrImage out{"image/png", std::string(bytes, '\0')};
  if (png_image_write_to_memory(&image, out.data.data(), &bytes, 0, pixels.data(), size, nullptr) ==
      0) {
    return absl::InternalError(absl::StrCat("png: ", image.message));
  }
  out.data.resize(bytes);
  return out;
}

QrImage Svg(const QrMatrix& m, int size) {
  const int total = m.width + 2 * kQrQuietZoneModules;
  // One path: each run of dark modules in a row is a 1-module-high rectangle.
  std::string path;
  for (int y = 0; y < m.width; ++y) {
    for (int x = 0; x < m.width;) {
      if (!m.Dark(x, y)) {
        ++x;
        continue;
      }
      int run = 0;
      while (x + run < m.width && m.Dark(x + run, y)) {
        ++run;
      }
      absl::StrAppend(&path, "M", x + kQrQuietZoneModules, " ", y + kQrQuietZoneModules, "h", run,
                      "v1h-", run, "z");
      x += run;
    }
  }
  QrImage out;
  out.content_type = "image/svg+xml";
  out.data = absl::StrCat(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"",
      size, "\" height=\"", size, "\" viewBox=\"0 0 ", total, " ", total,
      "\" shape-rendering=\"crispEdges\">"
      "<rect width=\"",
      total, "\" height=\"", total, "\" fill=\"#fff\"/><path fill=\"#000\" d=\"", path,
      "\"/></svg>\n");
  return out;
}

}  // namespace

absl::StatusOr<QrMatrix> EncodeQr(absl::string_view text) {
  if (text.empty()) {
    return absl::InvalidArgumentError("nothing to encode");
  }
  const std::string s(text);  // NUL-terminated for libqrencode; a URL has no NUL in it
  errno = 0;
  std::unique_ptr<QRcode, QrCodeFree> code(
      QRcode_encodeString(s.c_str(), 0, QR_ECLEVEL_M, QR_MODE_8, /*casesensitive=*/1));
  if (code == nullptr) {
    if (errno == ERANGE || errno == EINVAL) {
      return absl::InvalidArgumentError(
          absl::StrCat("a text of ", text.size(), " bytes does not fit in a QR code"));
    }
    return absl::ResourceExhaustedError(absl::StrCat("libqrencode failed: ", std::strerror(errno)));
  }
  QrMatrix m;
  m.width = code->width;
  m.modules.resize(static_cast<size_t>(m.width) * m.width);
  for (size_t i = 0; i < m.modules.size(); ++i) {
    m.modules[i] = (code->data[i] & 1) != 0 ? '1' : '0';  // bit 0: dark; the others: how made
  }
  return m;
}

absl::StatusOr<QrImage> RenderQr(absl::string_view text, QrFormat format, int size) {
  absl::StatusOr<QrMatrix> m = EncodeQr(text);
  if (!m.ok()) {
    return m.status();
  }
  const int total = m->width + 2 * kQrQuietZoneModules;
  if (size < total) {
    return absl::InvalidArgumentError(
        absl::StrCat("size: this link's QR code needs at least ", total, " pixels (", m->width,
                     " modules and a quiet zone of ", kQrQuietZoneModules, " on each side)"));
  }
  if (format == QrFormat::kSvg) {
    return Svg(*m, size);
  }
  return Png(*m, size);
}

}  // namespace kurt::links
