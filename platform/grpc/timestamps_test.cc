#include "platform/grpc/timestamps.h"

#include "gtest/gtest.h"

namespace kurt::platform {
namespace {

TEST(TimestampsTest, TimestampsKeepMicrosecondsAndFloorBefore1970) {
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

TEST(TimestampsTest, ValidateTimestampNamesTheField) {
  google::protobuf::Timestamp ts;
  ts.set_seconds(253402300799);
  EXPECT_TRUE(ValidateTimestamp(ts, "end_time").ok());
  ts.set_seconds(253402300800);
  EXPECT_EQ(ValidateTimestamp(ts, "end_time").message(), "end_time: not a valid timestamp");
  ts.set_seconds(0);
  ts.set_nanos(-1);
  EXPECT_FALSE(ValidateTimestamp(ts, "end_time").ok());
}

}  // namespace
}  // namespace kurt::platform
