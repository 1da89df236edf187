#include "edge/http_util.h"

#include "gtest/gtest.h"

namespace kurt::edge {
namespace {

TEST(HttpUtilTest, Timeouts) {
  EXPECT_EQ(ParseGrpcTimeout("250m"), absl::Milliseconds(250));
  EXPECT_EQ(ParseGrpcTimeout("2S"), absl::Seconds(2));
  EXPECT_EQ(ParseGrpcTimeout("1H"), absl::Hours(1));
  EXPECT_FALSE(ParseGrpcTimeout("m").has_value());
  EXPECT_FALSE(ParseGrpcTimeout("123456789S").has_value());
  EXPECT_FALSE(ParseGrpcTimeout("-1S").has_value());
  EXPECT_FALSE(ParseGrpcTimeout("10x").has_value());
  EXPECT_EQ(ParseRequestTimeout("1.5s"), absl::Milliseconds(1500));
  EXPECT_EQ(ParseRequestTimeout("250ms"), absl::Milliseconds(250));
  EXPECT_EQ(ParseRequestTimeout("2"), absl::Seconds(2));
  EXPECT_FALSE(ParseRequestTimeout("soon").has_value());
  EXPECT_FALSE(ParseRequestTimeout("0").has_value());
}

TEST(HttpUtilTest, ClientIp) {
  EXPECT_EQ(ClientIp("10.0.0.1", "1.2.3.4, 10.0.0.9", false), "10.0.0.1");
  EXPECT_EQ(ClientIp("10.0.0.1", "1.2.3.4, 10.0.0.9", true), "1.2.3.4");
  EXPECT_EQ(ClientIp("10.0.0.1", "", true), "10.0.0.1");
}

TEST(HttpUtilTest, Etags) {
  std::string a = StrongEtag("hello");
  EXPECT_EQ(a, StrongEtag("hello"));
  EXPECT_NE(a, StrongEtag("hellp"));
  EXPECT_EQ(a.front(), '"');
  EXPECT_TRUE(IfNoneMatch(a, a));
  EXPECT_TRUE(IfNoneMatch("\"x\", W/" + a, a));
  EXPECT_TRUE(IfNoneMatch("*", a));
  EXPECT_FALSE(IfNoneMatch("\"x\"", a));
}

TEST(HttpUtilTest, MetadataSafe) {
  EXPECT_EQ(MetadataSafe("Mozilla/5.0\r\n\x01ok", 100), "Mozilla/5.0ok");
  EXPECT_EQ(MetadataSafe("abcdef", 3), "abc");
}

}  // namespace
}  // namespace kurt::edge
