#include "platform/grpc/grpc_wire.h"

#include "gtest/gtest.h"

namespace kurt::platform {
namespace {

TEST(GrpcWireTest, TimeoutsAsGrpcWritesThemAndBack) {
  EXPECT_EQ(ParseGrpcTimeout("100m"), absl::Milliseconds(100));
  EXPECT_EQ(ParseGrpcTimeout("99999999S"), absl::Seconds(99999999));
  EXPECT_EQ(ParseGrpcTimeout("5H"), absl::Hours(5));
  EXPECT_EQ(ParseGrpcTimeout("250u"), absl::Microseconds(250));
  EXPECT_EQ(ParseGrpcTimeout("7n"), absl::Nanoseconds(7));
  EXPECT_EQ(ParseGrpcTimeout("1M"), absl::Minutes(1));
  for (const char* bad : {"", "m", "100", "100x", "-1m", "+1m", "123456789S", "1.5S", "12 m"}) {
    EXPECT_EQ(ParseGrpcTimeout(bad), std::nullopt) << bad;
  }

  EXPECT_EQ(GrpcTimeoutHeader(absl::Milliseconds(1500)), "1500m");
  EXPECT_EQ(GrpcTimeoutHeader(absl::Microseconds(10)), "1m");  // rounded up, never 0
  EXPECT_EQ(GrpcTimeoutHeader(absl::Hours(100)), "360000S");   // past 8 digits of milliseconds
  EXPECT_EQ(GrpcTimeoutHeader(absl::Hours(1000000)), "99999999S");
  // What one end writes, the other reads as at least the time that was left.
  for (absl::Duration d :
       {absl::Microseconds(1), absl::Milliseconds(30), absl::Seconds(100001), absl::Hours(20000)}) {
    std::optional<absl::Duration> read = ParseGrpcTimeout(GrpcTimeoutHeader(d));
    ASSERT_TRUE(read.has_value()) << d;
    EXPECT_GE(*read, d);
    EXPECT_LE(*read, d + absl::Seconds(1));
  }
}

TEST(GrpcWireTest, MessagesPercentEncodedAsGrpcWritesThemAndBack) {
  EXPECT_EQ(PercentEncodeGrpcMessage("plain text: ok"), "plain text: ok");
  EXPECT_EQ(PercentEncodeGrpcMessage("100%\n\xc3\xa9"), "100%25%0A%C3%A9");
  EXPECT_EQ(PercentDecodeGrpcMessage("a%20b%C2%ABc%"),
            "a b\xC2\xAB"
            "c%");  // a lone '%' stays
  EXPECT_EQ(PercentDecodeGrpcMessage("%zz%4"), "%zz%4");
  const std::string message = "name: must not hold \"control\" characters\n100% \xe2\x9c\x93\x7f";
  EXPECT_EQ(PercentDecodeGrpcMessage(PercentEncodeGrpcMessage(message)), message);
}

}  // namespace
}  // namespace kurt::platform
