#include "edge/route_table.h"

#include "edge/test_api.h"
#include "gtest/gtest.h"

namespace kurt::edge {
namespace {

TEST(RouteTableTest, BuildsRoutesFromAnnotations) {
  TestApi t = TestApi::Load();
  ASSERT_NE(t.routes, nullptr);

  const Route& get = t.Find("GET", "/v1/links/abc", nullptr);
  EXPECT_EQ(get.grpc_method, "/kurt.links.v1.LinksService/GetLink");
  EXPECT_EQ(get.service, "kurt.links.v1.LinksService");
  EXPECT_EQ(get.body, Route::Body::kNone);
  EXPECT_EQ(get.default_timeout, absl::Seconds(10));

  const Route& create = t.Find("POST", "/v1/links", nullptr);
  EXPECT_EQ(create.body, Route::Body::kAll);

  const Route& resolve = t.Find("GET", "/abc", nullptr);
  EXPECT_EQ(resolve.name, "kurt.links.v1.LinksService.Resolve");
  ASSERT_TRUE(resolve.redirect.has_value());
  EXPECT_EQ(resolve.redirect->status_code, 302);
  EXPECT_EQ(resolve.redirect->cache_max_age_seconds, 5);
  EXPECT_TRUE(resolve.is_public);
  EXPECT_FALSE(get.is_public);
}

TEST(RouteTableTest, TestServiceMappingRules) {
  TestApi t = TestApi::Load();
  ASSERT_NE(t.routes, nullptr);
  std::vector<std::string> values;

  const Route& update = t.Find("PATCH", "/v1/things/t1", &values);
  EXPECT_EQ(update.body, Route::Body::kField);
  EXPECT_EQ(update.body_field->name(), "thing");
  ASSERT_EQ(update.bindings.size(), 1u);
  EXPECT_EQ(update.bindings[0].size(), 2u);

  EXPECT_EQ(t.Find("GET", "/v1/items/i1", nullptr).name, "kurt.testing.v1.EchoService.GetThing");
  EXPECT_TRUE(t.Find("POST", "/v1/uploads/u", nullptr).body_is_http_body);
  EXPECT_TRUE(t.Find("GET", "/v1/downloads/d", nullptr).response_is_http_body);
  const Route& stream = t.Find("GET", "/v1/downloads/d:stream", nullptr);
  EXPECT_TRUE(stream.server_streaming);
  EXPECT_TRUE(stream.response_is_http_body);
  const Route& watch = t.Find("GET", "/v1/events:watch", nullptr);
  ASSERT_NE(watch.event_id_field, nullptr);
  EXPECT_EQ(watch.event_id_field->name(), "event_id");
  EXPECT_EQ(watch.default_timeout, absl::ZeroDuration());
  EXPECT_EQ(t.Find("GET", "/v1/things/x/inner", nullptr).response_body->name(), "inner");
  const Route& go = t.Find("GET", "/t/abc", nullptr);
  ASSERT_TRUE(go.redirect.has_value());
  EXPECT_EQ(go.redirect->cache_max_age_seconds, 60);
}

TEST(RouteTableTest, ServicesWithRoutes) {
  TestApi t = TestApi::Load();
  ASSERT_NE(t.routes, nullptr);
  const auto& s = t.routes->services();
  EXPECT_NE(std::find(s.begin(), s.end(), "kurt.links.v1.LinksService"), s.end());
  EXPECT_NE(std::find(s.begin(), s.end(), "kurt.testing.v1.EchoService"), s.end());
}

}  // namespace
}  // namespace kurt::edge
