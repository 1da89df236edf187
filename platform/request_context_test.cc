#include "platform/request_context.h"

#include "gtest/gtest.h"

namespace kurt::platform {
namespace {

TEST(RequestContextTest, TimestampsKeepMicrosecondsAndFloorBefore1970) {
  google::protobuf::Timestamp ts;
  absl::Time t = absl::FromUnixMicros(1700000000123456);
  SetTimestamp(t, &ts);
  EXPECT_EQ(ts.seconds(), 1700000000);
  EXPECT_EQ(ts.nanos(), 123456000);
  EXPECT_EQ(FromTimestamp(ts), t);
  SetTimestamp(absl::FromUnixMicros(-1), &ts);
  EXPECT_EQ(ts.seconds(), -1);
  EXPECT_EQ(ts.nanos(), 999999000);
}

TEST(RequestContextTest, ValidateTimestampNamesTheField) {
  google::protobuf::Timestamp ts;
  ts.set_seconds(253402300799);
  EXPECT_TRUE(ValidateTimestamp(ts, "end_time").ok());
  ts.set_seconds(253402300800);
  EXPECT_EQ(ValidateTimestamp(ts, "end_time").message(), "end_time: not a valid timestamp");
  ts.set_seconds(0);
  ts.set_nanos(-1);
  EXPECT_FALSE(ValidateTimestamp(ts, "end_time").ok());
}

TEST(RequestContextTest, PageSizeDefaultsAndCaps) {
  EXPECT_EQ(*PageSize(0), 20);
  EXPECT_EQ(*PageSize(7), 7);
  EXPECT_EQ(*PageSize(1000), 100);
  EXPECT_EQ(PageSize(-1).status().message(), "page_size: must not be negative");
}

TEST(RequestContextTest, PageTokensRoundTripAndRejectGarbage) {
  absl::Time t = absl::FromUnixMicros(1700000000123456);
  auto decoded = DecodePageToken(EncodePageToken(t, "key:with:colons"));
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->first, t);
  EXPECT_EQ(decoded->second, "key:with:colons");
  EXPECT_FALSE(DecodePageToken("not base64 !").has_value());
  EXPECT_FALSE(DecodePageToken(EncodePageToken(t, "x").substr(1)).has_value());
}

}  // namespace
}  // namespace kurt::platform
