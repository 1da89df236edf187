#include "edge/route_table.h"

#include "absl/strings/str_cat.h"
#include "edge/test_api.h"
#include "google/api/annotations.pb.h"
#include "google/protobuf/descriptor.pb.h"
#include "gtest/gtest.h"
#include "kurt/api/v1/options.pb.h"

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
  // A custom verb on the collection is its own route, body and all.
  const Route& batch = t.Find("POST", "/v1/links:batchCreate", nullptr);
  EXPECT_EQ(batch.name, "kurt.links.v1.LinksService.BatchCreateLinks");
  EXPECT_EQ(batch.body, Route::Body::kAll);

  // (kurt.api.v1.http_cache): the QR code may be kept a day; the link itself not.
  EXPECT_EQ(t.Find("GET", "/v1/links/abc/qr", nullptr).cache_max_age_seconds, 86400);
  EXPECT_EQ(get.cache_max_age_seconds, 0);

  const Route& resolve = t.Find("GET", "/abc", nullptr);
  EXPECT_EQ(resolve.name, "kurt.links.v1.LinksService.Resolve");
  ASSERT_TRUE(resolve.redirect.has_value());
  EXPECT_EQ(resolve.redirect->status_code, 302);
  EXPECT_EQ(resolve.redirect->cache_max_age_seconds, 5);
  EXPECT_EQ(resolve.redirect->cached_hits_method,
            "/kurt.links.v1.LinksService/RecordCachedRedirects");
  EXPECT_TRUE(resolve.is_public);
  EXPECT_FALSE(get.is_public);
  // A protected link's form stands in for the redirect (HttpRedirect.body_field: page = 3).
  EXPECT_EQ(resolve.redirect->body_field_number, 3);
  EXPECT_NE(resolve.redirect->content_security_policy.find("default-src 'none'"),
            std::string::npos);

  // ...and is posted back to the short URL: a form body, answered with a 303.
  const Route& unlock = t.Find("POST", "/abc", nullptr);
  EXPECT_EQ(unlock.name, "kurt.links.v1.LinksService.UnlockLink");
  EXPECT_EQ(unlock.body, Route::Body::kAll);
  EXPECT_TRUE(unlock.body_accepts_form);
  ASSERT_TRUE(unlock.redirect.has_value());
  EXPECT_EQ(unlock.redirect->status_code, 303);
  EXPECT_EQ(unlock.redirect->cache_max_age_seconds, 0);
  EXPECT_EQ(unlock.redirect->body_field_number, 3);
  EXPECT_TRUE(unlock.is_public);
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
  EXPECT_EQ(go.redirect->cached_hits_method, "") << "its service hears of no cached redirect";
}

// A service of a redirect whose cached_hits_method is `hits_method`, with one more RPC, Record,
// taking `record_input`; Build's answer for the production set plus it.
absl::Status BuildWithRedirect(const std::string& hits_method, const std::string& record_input) {
  google::protobuf::FileDescriptorSet set;
  EXPECT_TRUE(set.ParseFromString(std::string(kurt::proto::DescriptorSet())));
  google::protobuf::FileDescriptorProto* file = set.add_file();
  file->set_name("bad/redirect.proto");
  file->set_package("bad");
  for (const char* dependency :
       {"google/api/annotations.proto", "kurt/api/v1/options.proto", "kurt/links/v1/links.proto"}) {
    file->add_dependency(dependency);
  }
  google::protobuf::ServiceDescriptorProto* service = file->add_service();
  service->set_name("Bad");
  google::protobuf::MethodDescriptorProto* go = service->add_method();
  go->set_name("Go");
  go->set_input_type(".kurt.links.v1.ResolveRequest");
  go->set_output_type(".kurt.links.v1.ResolveResponse");
  google::protobuf::MethodDescriptorProto* record = service->add_method();
  record->set_name("Record");
  record->set_input_type(record_input);
  record->set_output_type(".kurt.links.v1.ResolveResponse");
  google::api::HttpRule rule;
  rule.set_get("/bad/{code}");
  google::protobuf::MethodOptions* options = go->mutable_options();
  *options->MutableExtension(google::api::http) = rule;
  auto* redirect = options->MutableExtension(kurt::api::v1::http_redirect);
  redirect->set_location_field("target_url");
  redirect->set_cache_max_age_seconds(5);
  redirect->set_cached_hits_method(hits_method);
  auto api = ApiDescriptors::Create({set.SerializeAsString()});
  if (!api.ok()) {
    return api.status();
  }
  return RouteTable::Build(**api, {}).status();
}

TEST(RouteTableTest, ACachedHitsMethodMustBeAUnaryRpcOfTheServiceTakingCachedRedirects) {
  EXPECT_TRUE(BuildWithRedirect("Record", ".kurt.api.v1.CachedRedirects").ok());
  absl::Status missing = BuildWithRedirect("Nowhere", ".kurt.api.v1.CachedRedirects");
  EXPECT_EQ(missing.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(missing.message().find("bad.Bad.Go: http_redirect.cached_hits_method \"Nowhere\""),
            std::string::npos)
      << missing;
  absl::Status wrong_type = BuildWithRedirect("Record", ".kurt.links.v1.ResolveRequest");
  EXPECT_NE(wrong_type.message().find("taking kurt.api.v1.CachedRedirects"), std::string::npos)
      << wrong_type;
}

// An http_cache on a route it cannot apply to stops the edge at start, naming the RPC.
TEST(RouteTableTest, HttpCacheIsOnlyForAGetThatIsNoRedirect) {
  google::protobuf::FileDescriptorSet set;
  ASSERT_TRUE(set.ParseFromString(std::string(kurt::proto::DescriptorSet())));
  google::protobuf::FileDescriptorProto* file = set.add_file();
  file->set_name("bad/cache.proto");
  file->set_package("bad");
  for (const char* dependency :
       {"google/api/annotations.proto", "kurt/api/v1/options.proto", "kurt/links/v1/links.proto"}) {
    file->add_dependency(dependency);
  }
  google::protobuf::MethodDescriptorProto* post = file->add_service()->add_method();
  file->mutable_service(0)->set_name("Bad");
  post->set_name("Post");
  post->set_input_type(".kurt.links.v1.GetLinkRequest");
  post->set_output_type(".kurt.links.v1.Link");
  google::api::HttpRule rule;
  rule.set_post("/bad/{code}");
  rule.set_body("*");
  *post->mutable_options()->MutableExtension(google::api::http) = rule;
  post->mutable_options()->MutableExtension(kurt::api::v1::http_cache)->set_max_age_seconds(60);
  auto api = ApiDescriptors::Create({set.SerializeAsString()});
  ASSERT_TRUE(api.ok()) << api.status();
  absl::Status s = RouteTable::Build(**api, {}).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("bad.Bad.Post: http_cache is for a unary GET route"),
            std::string::npos)
      << s;
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
