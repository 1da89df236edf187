#include "edge/openapi.h"

#include "absl/strings/match.h"
#include "edge/test_api.h"
#include "gtest/gtest.h"

namespace kurt::edge {
namespace {

TEST(OpenApiTest, DescribesRoutesFromDescriptors) {
  TestApi t = TestApi::Load();
  ASSERT_NE(t.routes, nullptr);
  std::string doc = BuildOpenApi(*t.api, *t.routes, "http://127.0.0.1:8080");
  for (const char* expected : {
           R"("openapi": "3.0.3")",
           R"("/v1/links/{code}": {)",
           R"("operationId": "LinksService_CreateLink")",
           // Comments become descriptions.
           R"("description": "Creates a link with a random code, or with the caller's alias.")",
           R"("$ref": "#/components/schemas/kurt.links.v1.CreateLinkRequest")",
           R"("kurt.links.v1.Link": {)",
           R"("format": "date-time")",
           R"("readOnly": true)",
           R"("302": {)",
           R"("/v1/things/{thing.id}": {)",
           R"("name": "inner.child.name")",
           R"("in": "query")",
           R"("text/event-stream")",
           R"("kurt.testing.v1.Color": {)",
           R"("/v1/openapi.json": {)",
           R"("bearerAuth")",
       }) {
    EXPECT_TRUE(absl::StrContains(doc, expected)) << expected;
  }
  // Deterministic: the same API renders to the same bytes (and ETag) on every replica.
  EXPECT_EQ(doc, BuildOpenApi(*t.api, *t.routes, "http://127.0.0.1:8080"));
}

}  // namespace
}  // namespace kurt::edge
