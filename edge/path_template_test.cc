#include "edge/path_template.h"

#include "gtest/gtest.h"

namespace kurt::edge {
namespace {

using Kind = PathTemplate::Kind;

TEST(PathTemplateTest, LiteralsAndVariables) {
  absl::StatusOr<PathTemplate> t = PathTemplate::Parse("/v1/links/{code}");
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_EQ(t->segments.size(), 3u);
  EXPECT_EQ(t->segments[0].literal, "v1");
  EXPECT_EQ(t->segments[2].kind, Kind::kWildcard);
  ASSERT_EQ(t->variables.size(), 1u);
  EXPECT_EQ(t->variables[0].field_path, std::vector<std::string>{"code"});
  EXPECT_EQ(t->variables[0].start, 2);
  EXPECT_EQ(t->variables[0].end, 3);
  EXPECT_EQ(t->verb, "");
}

TEST(PathTemplateTest, SubTemplateNestedFieldAndVerb) {
  absl::StatusOr<PathTemplate> t = PathTemplate::Parse("/v1/{book.name=shelves/*/books/*}:cancel");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->segments.size(), 5u);
  EXPECT_EQ(t->verb, "cancel");
  ASSERT_EQ(t->variables.size(), 1u);
  EXPECT_EQ(t->variables[0].field_path, (std::vector<std::string>{"book", "name"}));
  EXPECT_EQ(t->variables[0].start, 1);
  EXPECT_EQ(t->variables[0].end, 5);
  EXPECT_EQ(t->OpenApiPath(), "/v1/{book.name}:cancel");
}

TEST(PathTemplateTest, DoubleWildcardRunsToTheEnd) {
  absl::StatusOr<PathTemplate> t = PathTemplate::Parse("/v1/files/{path=**}");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->segments.back().kind, Kind::kDoubleWildcard);
  EXPECT_EQ(t->variables[0].end, -1);
}

TEST(PathTemplateTest, RejectsMalformedTemplates) {
  for (const char* bad : {"", "v1/x", "/v1//x", "/v1/{x", "/v1/x}", "/v1/{a{b}}", "/v1/**/x",
                          "/v1/{1a}", "/v1/{a}/{a}", "/v1/x:", "/v1/a{b}", "/v1/{a=}"}) {
    EXPECT_FALSE(PathTemplate::Parse(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace kurt::edge
