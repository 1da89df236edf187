// The QR images read back: the PNG through libpng, pixel by pixel against the symbol, and both
// formats through a real scanner (zbarimg, Debian's zbar-tools; the SVG rasterised first by
// rsvg-convert, librsvg2-bin), which must find the exact text.
#include "services/links/qr_image.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "png.h"

namespace kurt::links {
namespace {

struct Gray {
  int width = 0;
  int height = 0;
  std::vector<png_byte> pixels;
  png_byte At(int x, int y) const { return pixels[static_cast<size_t>(y) * width + x]; }
};

Gray ReadPng(const std::string& data) {
  png_image image;
  std::memset(&image, 0, sizeof(image));
  image.version = PNG_IMAGE_VERSION;
  Gray out;
  if (png_image_begin_read_from_memory(&image, data.data(), data.size()) == 0) {
    ADD_FAILURE() << "not a PNG: " << image.message;
    return out;
  }
  image.format = PNG_FORMAT_GRAY;
  out.width = static_cast<int>(image.width);
  out.height = static_cast<int>(image.height);
  out.pixels.resize(PNG_IMAGE_SIZE(image));
  if (png_image_finish_read(&image, nullptr, out.pixels.data(), 0, nullptr) == 0) {
    ADD_FAILURE() << "unreadable PNG: " << image.message;
  }
  return out;
}

std::string WriteTemp(const std::string& name, const std::string& data) {
  std::string path = absl::StrCat(::testing::TempDir(), "/", name);
  std::ofstream(path, std::ios::binary) << data;
  return path;
}

// What a command printed on stdout; the test fails when it exits non-zero.
std::string RunCommand(const std::string& command) {
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) {
    ADD_FAILURE() << "cannot run " << command;
    return out;
  }
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) {
    out.append(buf, n);
  }
  EXPECT_EQ(pclose(p), 0) << command << " failed; printed: " << out;
  return out;
}

// The text zbarimg reads in an image file (exactly one symbol).
std::string Scan(const std::string& path) {
  return std::string(
      absl::StripSuffix(RunCommand(absl::StrCat("zbarimg --quiet --raw -Sdisable -Sqrcode.enable '",
                                                path, "' 2>/dev/null")),
                        "\n"));
}

constexpr char kShortUrl[] = "https://kurt.example/Ab3_x-Z9";

TEST(QrImageTest, PngIsExactlyTheSymbolWithItsQuietZoneAndScans) {
  absl::StatusOr<QrMatrix> m = EncodeQr(kShortUrl);
  ASSERT_TRUE(m.ok()) << m.status();
  const int total = m->width + 2 * kQrQuietZoneModules;
  for (int size : {256, 300, 1000}) {
    absl::StatusOr<QrImage> png = RenderQr(kShortUrl, QrFormat::kPng, size);
    ASSERT_TRUE(png.ok()) << png.status();
    EXPECT_EQ(png->content_type, "image/png");
    Gray g = ReadPng(png->data);
    ASSERT_EQ(g.width, size);
    ASSERT_EQ(g.height, size);
    // Each module is a square of `scale` pixels; the remainder widens the quiet zone.
    const int scale = size / total;
    const int origin = (size - scale * total) / 2 + kQrQuietZoneModules * scale;
    int wrong = 0;
    for (int y = 0; y < size; ++y) {
      for (int x = 0; x < size; ++x) {
        const int mx = x - origin;
        const int my = y - origin;
        const bool inside = mx >= 0 && my >= 0 && mx < m->width * scale && my < m->width * scale;
        const bool dark = inside && m->Dark(mx / scale, my / scale);
        wrong += g.At(x, y) != (dark ? 0 : 255);
      }
    }
    EXPECT_EQ(wrong, 0) << "pixels that are not the symbol's at size " << size;
    EXPECT_EQ(Scan(WriteTemp(absl::StrCat("qr-", size, ".png"), png->data)), kShortUrl);
  }
}

TEST(QrImageTest, TheSmallestSizeStillScans) {
  absl::StatusOr<QrImage> png = RenderQr(kShortUrl, QrFormat::kPng, 64);
  ASSERT_TRUE(png.ok()) << png.status();
  Gray g = ReadPng(png->data);
  EXPECT_EQ(g.width, 64);
  EXPECT_EQ(Scan(WriteTemp("qr-64.png", png->data)), kShortUrl);
}

TEST(QrImageTest, SvgIsOnePathOfTheDarkModulesAndScansOnceRasterised) {
  absl::StatusOr<QrMatrix> m = EncodeQr(kShortUrl);
  ASSERT_TRUE(m.ok()) << m.status();
  const int total = m->width + 2 * kQrQuietZoneModules;
  absl::StatusOr<QrImage> svg = RenderQr(kShortUrl, QrFormat::kSvg, 512);
  ASSERT_TRUE(svg.ok()) << svg.status();
  EXPECT_EQ(svg->content_type, "image/svg+xml");
  EXPECT_NE(svg->data.find(absl::StrCat("width=\"512\" height=\"512\" viewBox=\"0 0 ", total, " ",
                                        total, "\"")),
            std::string::npos)
      << svg->data;

  // The path's rectangles cover exactly the dark modules, offset by the quiet zone.
  std::string covered(m->modules.size(), '0');
  std::regex run("M([0-9]+) ([0-9]+)h([0-9]+)v1h-([0-9]+)z");
  int runs = 0;
  for (auto it = std::sregex_iterator(svg->data.begin(), svg->data.end(), run);
       it != std::sregex_iterator(); ++it) {
    ++runs;
    int x = std::stoi((*it)[1]) - kQrQuietZoneModules;
    int y = std::stoi((*it)[2]) - kQrQuietZoneModules;
    int n = std::stoi((*it)[3]);
    ASSERT_EQ(n, std::stoi((*it)[4]));
    ASSERT_TRUE(x >= 0 && y >= 0 && x + n <= m->width && y < m->width) << it->str();
    for (int i = 0; i < n; ++i) {
      covered[static_cast<size_t>(y) * m->width + x + i] = '1';
    }
  }
  EXPECT_GT(runs, 0);
  EXPECT_EQ(covered, m->modules);

  // Well-formed enough for a real renderer, and what it draws scans.
  std::string svg_path = WriteTemp("qr.svg", svg->data);
  std::string png_path = absl::StrCat(::testing::TempDir(), "/qr-svg.png");
  RunCommand(
      absl::StrCat("rsvg-convert --background-color=white -o '", png_path, "' '", svg_path, "'"));
  Gray g = ReadPng([&] {
    std::ifstream in(png_path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }());
  EXPECT_EQ(g.width, 512);
  EXPECT_EQ(Scan(png_path), kShortUrl);
}

TEST(QrImageTest, TooSmallASizeIsRefusedNamingSize) {
  absl::StatusOr<QrMatrix> m = EncodeQr(kShortUrl);
  ASSERT_TRUE(m.ok()) << m.status();
  const int total = m->width + 2 * kQrQuietZoneModules;
  for (QrFormat f : {QrFormat::kPng, QrFormat::kSvg}) {
    absl::StatusOr<QrImage> image = RenderQr(kShortUrl, f, total - 1);
    EXPECT_EQ(image.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StartsWith(image.status().message(), "size: ")) << image.status();
    EXPECT_TRUE(RenderQr(kShortUrl, f, total).ok());
  }
}

TEST(QrImageTest, TextThatCannotBeAQrCodeIsRefused) {
  EXPECT_EQ(EncodeQr("").status().code(), absl::StatusCode::kInvalidArgument);
  // Version 40 at level M holds 2331 bytes.
  EXPECT_TRUE(EncodeQr(std::string(2331, 'a')).ok());
  EXPECT_EQ(EncodeQr(std::string(2332, 'a')).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace kurt::links
