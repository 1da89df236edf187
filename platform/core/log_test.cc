#include "platform/core/log.h"

#include "gtest/gtest.h"

namespace kurt::log {
namespace {

TEST(LogTest, FormatsOneJsonObjectWithEscapedFields) {
  std::string line = Format(Level::kWarn, "links", "req-1", "said \"hi\"\n",
                            {{"code", "abc"}, {"count", 3}, {"ctl", std::string("\x01")}});
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_NE(line.find(R"("level":"warn")"), std::string::npos);
  EXPECT_NE(line.find(R"("component":"links")"), std::string::npos);
  EXPECT_NE(line.find(R"("msg":"said \"hi\"\n")"), std::string::npos);
  EXPECT_NE(line.find(R"("request_id":"req-1")"), std::string::npos);
  EXPECT_NE(line.find(R"("count":"3")"), std::string::npos);
  EXPECT_NE(line.find(R"("ctl":"\u0001")"), std::string::npos);
  EXPECT_EQ(line.front(), '{');
  EXPECT_EQ(line.back(), '}');
}

TEST(LogTest, RequestScopeNestsAndRestores) {
  EXPECT_EQ(RequestScope::Current(), "");
  {
    RequestScope outer("a");
    EXPECT_EQ(RequestScope::Current(), "a");
    {
      RequestScope inner("b");
      EXPECT_EQ(RequestScope::Current(), "b");
    }
    EXPECT_EQ(RequestScope::Current(), "a");
  }
  EXPECT_EQ(RequestScope::Current(), "");
}

TEST(LogTest, RequestIdsAreRandomHex) {
  std::string a = NewRequestId(), b = NewRequestId();
  EXPECT_EQ(a.size(), 32u);
  EXPECT_NE(a, b);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
}

TEST(LogTest, LevelsParseAndFilter) {
  Level l;
  EXPECT_TRUE(ParseLevel("warn", &l));
  EXPECT_EQ(l, Level::kWarn);
  EXPECT_FALSE(ParseLevel("loud", &l));
  Configure("test", Level::kWarn);
  EXPECT_FALSE(Enabled(Level::kInfo));
  EXPECT_TRUE(Enabled(Level::kError));
  Configure("test", Level::kInfo);
}

}  // namespace
}  // namespace kurt::log
