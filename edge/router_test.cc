#include "edge/router.h"

#include "gtest/gtest.h"

namespace kurt::edge {
namespace {

class RouterTest : public ::testing::Test {
 protected:
  void Add(const char* method, const char* path, int id) {
    absl::StatusOr<PathTemplate> t = PathTemplate::Parse(path);
    ASSERT_TRUE(t.ok()) << t.status();
    ASSERT_TRUE(router_.Add(method, *t, id).ok());
  }
  Router router_;
};

TEST_F(RouterTest, LiteralsBeatVariables) {
  Add("GET", "/{code}", 1);
  Add("GET", "/healthz", 2);
  Add("POST", "/v1/links", 3);
  Add("GET", "/v1/links", 4);
  Add("GET", "/v1/links/{code}", 5);

  Router::Match m = router_.Find("GET", "/abc123");
  ASSERT_EQ(m.outcome, Router::Outcome::kFound);
  EXPECT_EQ(m.route_id, 1);
  EXPECT_EQ(m.values, std::vector<std::string>{"abc123"});
  EXPECT_EQ(router_.Find("GET", "/healthz").route_id, 2);
  EXPECT_EQ(router_.Find("POST", "/v1/links").route_id, 3);
  EXPECT_EQ(router_.Find("GET", "/v1/links").route_id, 4);
  m = router_.Find("GET", "/v1/links/x%20y");
  EXPECT_EQ(m.route_id, 5);
  EXPECT_EQ(m.values, std::vector<std::string>{"x y"});
}

TEST_F(RouterTest, NotFoundAndMethodNotAllowed) {
  Add("GET", "/v1/links/{code}", 1);
  Add("DELETE", "/v1/links/{code}", 2);
  EXPECT_EQ(router_.Find("GET", "/v2/links/x").outcome, Router::Outcome::kNotFound);
  EXPECT_EQ(router_.Find("GET", "/v1/links/").outcome, Router::Outcome::kNotFound);
  EXPECT_EQ(router_.Find("GET", "/").outcome, Router::Outcome::kNotFound);
  Router::Match m = router_.Find("PUT", "/v1/links/x");
  EXPECT_EQ(m.outcome, Router::Outcome::kMethodNotAllowed);
  EXPECT_EQ(m.allow, "DELETE, GET");
  EXPECT_EQ(router_.AllowedMethods("/v1/links/x"), "DELETE, GET");
  EXPECT_EQ(router_.Find("GET", "relative").outcome, Router::Outcome::kBadPath);
  EXPECT_EQ(router_.Find("GET", "/v1/links/%zz").outcome, Router::Outcome::kBadPath);
}

TEST_F(RouterTest, CustomVerbs) {
  Add("GET", "/v1/reports/{id}", 1);
  Add("POST", "/v1/reports/{id}:cancel", 2);
  Add("GET", "/v1/notifications:stream", 3);
  Router::Match m = router_.Find("POST", "/v1/reports/r1:cancel");
  ASSERT_EQ(m.outcome, Router::Outcome::kFound);
  EXPECT_EQ(m.route_id, 2);
  EXPECT_EQ(m.values, std::vector<std::string>{"r1"});
  EXPECT_EQ(router_.Find("GET", "/v1/notifications:stream").route_id, 3);
  // Without a route for the verb, the colon is part of the variable.
  m = router_.Find("GET", "/v1/reports/a:b");
  EXPECT_EQ(m.route_id, 1);
  EXPECT_EQ(m.values, std::vector<std::string>{"a:b"});
}

TEST_F(RouterTest, SubTemplatesAndDoubleWildcard) {
  Add("GET", "/v1/{name=shelves/*}", 1);
  Add("GET", "/v1/{name=shelves/*}/books/{book}", 2);
  Add("GET", "/v1/files/{path=**}", 3);
  Add("GET", "/v1/files/{path=**}:meta", 4);
  Router::Match m = router_.Find("GET", "/v1/shelves/s1");
  EXPECT_EQ(m.route_id, 1);
  EXPECT_EQ(m.values, std::vector<std::string>{"shelves/s1"});
  m = router_.Find("GET", "/v1/shelves/s1/books/b%2F2");
  EXPECT_EQ(m.route_id, 2);
  EXPECT_EQ(m.values, (std::vector<std::string>{"shelves/s1", "b/2"}));
  m = router_.Find("GET", "/v1/files/a/b%2Fc/d.txt");
  EXPECT_EQ(m.route_id, 3);
  // A multi-segment variable keeps an escaped slash escaped.
  EXPECT_EQ(m.values, std::vector<std::string>{"a/b%2Fc/d.txt"});
  m = router_.Find("GET", "/v1/files/a/b:meta");
  EXPECT_EQ(m.route_id, 4);
  EXPECT_EQ(m.values, std::vector<std::string>{"a/b"});
  EXPECT_EQ(router_.Find("GET", "/v1/files").outcome, Router::Outcome::kNotFound);
  EXPECT_EQ(router_.Find("GET", "/v1/shelves").outcome, Router::Outcome::kNotFound);
}

TEST_F(RouterTest, DuplicateRouteIsAnError) {
  Add("GET", "/v1/{x}", 1);
  absl::StatusOr<PathTemplate> t = PathTemplate::Parse("/v1/{y}");
  EXPECT_FALSE(router_.Add("GET", *t, 2).ok());
  EXPECT_TRUE(router_.Add("POST", *t, 2).ok());
}

}  // namespace
}  // namespace kurt::edge
