#include "edge/openapi.h"

#include <set>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "edge/test_api.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "kurt/api/v1/field_rules.pb.h"
#include "services/common/field_rules_testing.h"

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

// The document as a tree, to look values up by path.
google::protobuf::Struct Parse(const std::string& doc) {
  google::protobuf::Struct out;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(doc, &out).ok());
  return out;
}

const google::protobuf::Value& At(const google::protobuf::Struct& s,
                                  std::initializer_list<absl::string_view> path) {
  static const google::protobuf::Value kNone;
  const google::protobuf::Struct* cur = &s;
  const google::protobuf::Value* v = &kNone;
  for (absl::string_view key : path) {
    auto it = cur->fields().find(std::string(key));
    if (it == cur->fields().end()) {
      ADD_FAILURE() << "no " << key << " in " << absl::StrJoin(path, ".");
      return kNone;
    }
    v = &it->second;
    cur = &v->struct_value();
  }
  return *v;
}

// The schema of parameter `name` of operation `method path`.
const google::protobuf::Struct* Parameter(const google::protobuf::Struct& doc,
                                          absl::string_view path, absl::string_view method,
                                          absl::string_view name) {
  for (const auto& p : At(doc, {"paths", path, method, "parameters"}).list_value().values()) {
    if (p.struct_value().fields().at("name").string_value() == name) {
      return &p.struct_value();
    }
  }
  ADD_FAILURE() << "no parameter " << name << " in " << method << " " << path;
  return nullptr;
}

TEST(OpenApiTest, CarriesTheFieldRulesOfTheProtos) {
  TestApi t = TestApi::Load();
  ASSERT_NE(t.routes, nullptr);
  google::protobuf::Struct doc = Parse(BuildOpenApi(*t.api, *t.routes, ""));

  const auto& create = At(doc, {"components", "schemas", "kurt.links.v1.CreateLinkRequest"});
  const auto& target = At(create.struct_value(), {"properties", "targetUrl"}).struct_value();
  EXPECT_EQ(At(target, {"maxLength"}).number_value(), 2048);
  EXPECT_EQ(At(target, {"minLength"}).number_value(), 1);
  EXPECT_EQ(At(target, {"format"}).string_value(), "uri");
  EXPECT_TRUE(
      absl::StartsWith(At(target, {"pattern"}).string_value(), "^[Hh][Tt][Tt][Pp][Ss]?://"));
  EXPECT_EQ(At(create.struct_value(), {"required"}).list_value().values(0).string_value(),
            "targetUrl");
  // The edge refuses unknown fields in a body, at any depth; responses may grow new ones.
  EXPECT_FALSE(At(create.struct_value(), {"additionalProperties"}).bool_value());
  EXPECT_FALSE(
      At(doc, {"components", "schemas", "kurt.links.v1.RedirectCondition", "additionalProperties"})
          .bool_value());
  EXPECT_EQ(At(doc, {"components", "schemas", "kurt.links.v1.Link"})
                .struct_value()
                .fields()
                .count("additionalProperties"),
            0);
  // A condition is exactly one of device, os, language or country (a proto oneof).
  const auto& condition =
      At(doc, {"components", "schemas", "kurt.links.v1.RedirectCondition"}).struct_value();
  EXPECT_EQ(At(condition, {"minProperties"}).number_value(), 1);
  EXPECT_EQ(At(condition, {"maxProperties"}).number_value(), 1);
  EXPECT_EQ(At(condition, {"properties"}).struct_value().fields_size(), 4);
  // A oneof beside other fields is not one choice: a batch's result has its index too.
  EXPECT_EQ(At(doc, {"components", "schemas", "kurt.links.v1.BatchCreateLinksResult"})
                .struct_value()
                .fields()
                .count("maxProperties"),
            0);
  const auto& alias = At(create.struct_value(), {"properties", "alias"}).struct_value();
  EXPECT_EQ(At(alias, {"pattern"}).string_value(), "^[A-Za-z0-9_-]{3,64}$");
  EXPECT_EQ(At(alias, {"minLength"}).number_value(), 3);
  EXPECT_EQ(At(alias, {"maxLength"}).number_value(), 64);

  // Path and query parameters carry them too.
  if (const auto* code = Parameter(doc, "/v1/links/{code}", "get", "code")) {
    EXPECT_EQ(At(*code, {"schema", "pattern"}).string_value(), "^[A-Za-z0-9_-]{3,64}$");
  }
  if (const auto* id = Parameter(doc, "/v1/reports/{id}", "get", "id")) {
    EXPECT_EQ(At(*id, {"schema", "format"}).string_value(), "uuid");
  }
  if (const auto* limit = Parameter(doc, "/v1/links/{code}/stats", "get", "limit")) {
    EXPECT_EQ(At(*limit, {"schema", "maximum"}).number_value(), 100);
  }
  if (const auto* size = Parameter(doc, "/v1/links", "get", "pageSize")) {
    EXPECT_EQ(At(*size, {"schema", "minimum"}).number_value(), 0);
  }
  if (const auto* format = Parameter(doc, "/v1/links/{code}/qr", "get", "format")) {
    EXPECT_EQ(At(*format, {"schema", "pattern"}).string_value(), "^(png|svg)$");
  }
  if (const auto* size = Parameter(doc, "/v1/links/{code}/qr", "get", "size")) {
    EXPECT_EQ(At(*size, {"schema", "minimum"}).number_value(), 64);
    EXPECT_EQ(At(*size, {"schema", "maximum"}).number_value(), 2048);
  }
  // Raw content (google.api.HttpBody) is bytes of its own type, not JSON.
  EXPECT_EQ(At(doc, {"paths", "/v1/links/{code}/qr", "get", "responses", "200", "content", "*/*",
                     "schema", "format"})
                .string_value(),
            "binary");

  // The redirect answers HEAD as it answers GET; nothing else does.
  EXPECT_EQ(At(doc, {"paths", "/{code}", "head", "operationId"}).string_value(),
            "LinksService_Resolve_Head");
  EXPECT_EQ(At(doc, {"paths", "/{code}", "head", "parameters"}).list_value().values_size(),
            At(doc, {"paths", "/{code}", "get", "parameters"}).list_value().values_size());
  EXPECT_EQ(At(doc, {"paths", "/{code}"}).struct_value().fields().count("head"), 1);
  EXPECT_EQ(At(doc, {"paths", "/v1/links/{code}"}).struct_value().fields().count("head"), 0);

  // A custom verb on a collection; a list's bound.
  const auto& batch = At(doc, {"components", "schemas", "kurt.links.v1.BatchCreateLinksRequest"});
  EXPECT_EQ(At(batch.struct_value(), {"properties", "links", "maxItems"}).number_value(), 1000);
  EXPECT_EQ(At(batch.struct_value(), {"properties", "links", "minItems"}).number_value(), 1);
  EXPECT_EQ(At(doc, {"paths", "/v1/links:batchCreate", "post", "operationId"}).string_value(),
            "LinksService_BatchCreateLinks");

  // A required enum leaves out its zero ("unset") value.
  const auto& kind = At(doc, {"components", "schemas", "kurt.reports.v1.CreateReportRequest",
                              "properties", "kind"})
                         .struct_value();
  std::vector<std::string> kinds;
  for (const auto& v : At(kind, {"enum"}).list_value().values()) {
    kinds.push_back(v.string_value());
  }
  EXPECT_EQ(kinds, (std::vector<std::string>{"CLICKS_CSV", "SUMMARY_JSON"}));
}

// Every annotated field of every request the edge routes reaches the document, keyword by
// keyword: a rule added to a proto is published without touching the edge.
TEST(OpenApiTest, PublishesEveryAnnotatedRequestField) {
  TestApi t = TestApi::Load();
  ASSERT_NE(t.routes, nullptr);
  google::protobuf::Struct doc = Parse(BuildOpenApi(*t.api, *t.routes, ""));
  int checked = 0;
  for (const auto& route : t.routes->routes()) {
    const google::protobuf::Descriptor* in = route->method->input_type();
    if (route->body != Route::Body::kAll) {
      continue;  // query and path fields: the parameter tests above
    }
    for (int i = 0; i < in->field_count(); ++i) {
      const google::protobuf::FieldDescriptor* f = in->field(i);
      if (!f->options().HasExtension(api::v1::rules)) {
        continue;
      }
      const api::v1::FieldRules& rules = f->options().GetExtension(api::v1::rules);
      const auto& property =
          At(doc, {"components", "schemas", in->full_name(), "properties", f->json_name()})
              .struct_value();
      SCOPED_TRACE(f->full_name());
      // A repeated field's rules are its elements', but for min_items and max_items.
      if (f->is_repeated() && rules.has_max_items()) {
        EXPECT_EQ(At(property, {"maxItems"}).number_value(), rules.max_items());
      }
      if (f->is_repeated() && rules.has_min_items()) {
        EXPECT_EQ(At(property, {"minItems"}).number_value(), rules.min_items());
      }
      const auto& schema = f->is_repeated() ? At(property, {"items"}).struct_value() : property;
      if (rules.has_max_length()) {
        EXPECT_EQ(At(schema, {"maxLength"}).number_value(), rules.max_length());
      }
      if (rules.has_min_length()) {
        EXPECT_EQ(At(schema, {"minLength"}).number_value(), rules.min_length());
      }
      if (!rules.pattern().empty()) {
        EXPECT_EQ(At(schema, {"pattern"}).string_value(), rules.pattern());
      }
      if (!rules.format().empty()) {
        EXPECT_EQ(At(schema, {"format"}).string_value(), rules.format());
      }
      ++checked;
    }
  }
  EXPECT_GE(checked, 5);
}

// The string fields of `message` and of the messages in it (not google.*'s), once each.
void StringFields(const google::protobuf::Descriptor* message, std::set<std::string>* seen,
                  std::vector<const google::protobuf::FieldDescriptor*>* out) {
  if (absl::StartsWith(message->full_name(), "google.") ||
      !seen->insert(message->full_name()).second) {
    return;
  }
  for (int i = 0; i < message->field_count(); ++i) {
    const google::protobuf::FieldDescriptor* f = message->field(i);
    if (f->message_type() != nullptr) {
      StringFields(f->message_type(), seen, out);
    } else if (f->type() == google::protobuf::FieldDescriptor::TYPE_STRING) {
      out->push_back(f);
    }
  }
}

// Every string a client can send through the edge states a rule that refuses control characters,
// but for the fields whose service takes any bytes: passwords (hashed as given, by length) and
// page tokens (decoded and checked). A NUL matters beyond the message: PostgreSQL's driver ends a
// text parameter at it, and a sign-in with "name@example.org\u0000x" found that person while its
// throttle counted another address (docs/accounts.md). Each service's rules-agreement test holds
// its checks to these rules.
TEST(OpenApiTest, EveryStringAClientSendsHasARuleThatRefusesControlCharacters) {
  const std::set<std::string> any_bytes = {
      "kurt.accounts.v1.SignUpRequest.password",
      "kurt.accounts.v1.CreateSessionRequest.password",
      "kurt.links.v1.CreateLinkRequest.password",
      "kurt.links.v1.UpdateLinkRequest.password",
      "kurt.links.v1.UnlockLinkRequest.password",
      "kurt.links.v1.ListLinksRequest.page_token",
      "kurt.reports.v1.ListReportsRequest.page_token",
      "kurt.notifications.v1.ListNotificationsRequest.page_token",
  };
  TestApi t = TestApi::Load();
  ASSERT_NE(t.routes, nullptr);
  std::set<std::string> seen;
  std::vector<const google::protobuf::FieldDescriptor*> fields;
  for (const auto& route : t.routes->routes()) {
    if (!absl::StartsWith(route->method->full_name(), "kurt.testing.")) {
      StringFields(route->method->input_type(), &seen, &fields);
    }
  }
  std::set<std::string> exempt_seen;
  for (const google::protobuf::FieldDescriptor* f : fields) {
    SCOPED_TRACE(f->full_name());
    if (any_bytes.contains(f->full_name())) {
      exempt_seen.insert(f->full_name());
      continue;
    }
    const api::v1::FieldRules& rules = f->options().GetExtension(api::v1::rules);
    ASSERT_FALSE(rules.pattern().empty()) << "a string field without a pattern";
    // A value the rules take, with a control character before, inside or after it.
    const std::string base = rules.example().empty() ? "x" : rules.example();
    ASSERT_TRUE(rules_testing::Allows(rules, base)) << "its example (or \"x\") breaks its rules";
    for (const std::string& control :
         {std::string(1, '\0'), std::string("\n"), std::string("\x1f"), std::string("\x7f")}) {
      for (size_t at : {size_t{0}, base.size() / 2, base.size()}) {
        std::string probe = base;
        probe.insert(at, control);
        EXPECT_FALSE(rules_testing::Allows(rules, probe))
            << "takes control character " << static_cast<int>(control[0]) << " at " << at;
      }
    }
  }
  EXPECT_GE(fields.size(), 40u);
  // The list above names fields that exist.
  EXPECT_EQ(exempt_seen, any_bytes);
}

}  // namespace
}  // namespace kurt::edge
