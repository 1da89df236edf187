#include "edge/openapi.h"

#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "edge/json_writer.h"
#include "google/api/field_behavior.pb.h"
#include "kurt/api/v1/field_rules.pb.h"

namespace kurt::edge {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::EnumDescriptor;
using google::protobuf::FieldDescriptor;

template <typename D>
std::string Comment(const D* d) {
  google::protobuf::SourceLocation loc;
  if (!d->GetSourceLocation(&loc)) {
    return "";
  }
  std::string text = std::string(absl::StripAsciiWhitespace(loc.leading_comments));
  // Comments are written as "// ..." lines: join them into one paragraph per blank line.
  std::vector<std::string> lines;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    lines.emplace_back(absl::StripAsciiWhitespace(line));
  }
  return absl::StrJoin(lines, " ");
}

bool HasBehavior(const FieldDescriptor* f, google::api::FieldBehavior behavior) {
  for (int b : f->options().GetRepeatedExtension(google::api::field_behavior)) {
    if (b == behavior) {
      return true;
    }
  }
  return false;
}

// A field's kurt.api.v1.rules as JSON Schema keywords on `schema` (the element's schema for a
// repeated field; min_items and max_items go on the array).
void ApplyRules(const api::v1::FieldRules& rules, Json* schema) {
  if (rules.has_min_length()) {
    (*schema)["minLength"] = Json::Number(static_cast<double>(rules.min_length()));
  }
  if (rules.has_max_length()) {
    (*schema)["maxLength"] = Json::Number(static_cast<double>(rules.max_length()));
  }
  if (!rules.pattern().empty()) {
    (*schema)["pattern"] = Json::String(rules.pattern());
  }
  if (!rules.format().empty()) {
    (*schema)["format"] = Json::String(rules.format());
  }
  if (rules.has_minimum()) {
    (*schema)["minimum"] = Json::Number(static_cast<double>(rules.minimum()));
  }
  if (rules.has_maximum()) {
    (*schema)["maximum"] = Json::Number(static_cast<double>(rules.maximum()));
  }
  if (!rules.example().empty()) {
    (*schema)["example"] = Json::String(rules.example());
  }
}

bool IsWrapper(const std::string& name) {
  return absl::StartsWith(name, "google.protobuf.") && absl::EndsWith(name, "Value") &&
         name != "google.protobuf.Value" && name != "google.protobuf.ListValue";
}

class Generator {
 public:
  explicit Generator(const RouteTable& routes) : routes_(routes) {}

  std::string Build(const std::string& server_url) {
    Json doc = Json::Object();
    doc["openapi"] = Json::String("3.0.3");
    Json& info = doc["info"];
    info["title"] = Json::String("Kurt API");
    info["version"] = Json::String("v1");
    info["description"] = Json::String(
        "Kurt's public REST/JSON API, generated from the google.api.http annotations of its "
        "protos. JSON is proto3 JSON: lowerCamelCase names (proto names are accepted too), "
        "64-bit integers as strings, enums by name. Errors are {code, message, details} with "
        "the gRPC status code.");
    if (!server_url.empty()) {
      doc["servers"].Push(Json::Object())["url"] = Json::String(server_url);
    }
    Json& paths = doc["paths"];
    paths = Json::Object();
    AddOperations(&paths);
    Json& components = doc["components"];
    Json& schemas = components["schemas"];
    schemas = Json::Object();
    schemas["google.rpc.Status"] = ErrorSchema();
    // Schemas are added while walking; a message may reference one added later.
    while (!pending_.empty()) {
      const Descriptor* d = pending_.front();
      pending_.erase(pending_.begin());
      schemas[d->full_name()] = MessageSchema(d);
    }
    for (const EnumDescriptor* e : enums_) {
      schemas[e->full_name()] = EnumSchema(e);
    }
    Json& bearer = components["securitySchemes"]["bearerAuth"];
    bearer["type"] = Json::String("http");
    bearer["scheme"] = Json::String("bearer");
    bearer["description"] = Json::String("An API key: Authorization: Bearer <key>");
    return doc.Dump(/*pretty=*/true);
  }

 private:
  void AddOperations(Json* paths) {
    for (const auto& route : routes_.routes()) {
      Json& item = (*paths)[route->path.OpenApiPath()];
      Json& op = item[absl::AsciiStrToLower(route->http_method)];
      std::string op_id =
          absl::StrCat(route->method->service()->name(), "_", route->method->name());
      if (used_ids_.count(op_id) > 0) {
        absl::StrAppend(&op_id, "_", route->id);
      }
      used_ids_.insert(op_id);
      op["operationId"] = Json::String(op_id);
      op["tags"].Push(Json::String(route->method->service()->name()));
      std::string comment = Comment(route->method);
      if (!comment.empty()) {
        op["description"] = Json::String(comment);
      }
      AddParameters(*route, &op);
      AddRequestBody(*route, &op);
      AddResponses(*route, &op);
      if (route->is_public) {
        op["security"] = Json::Array();
      } else {
        op["security"].Push(Json::Object())["bearerAuth"] = Json::Array();
      }
      if (route->redirect && route->http_method == "GET") {
        // Link checkers and preview fetchers ask with HEAD; the edge answers it as the GET.
        Json head = op;
        head["operationId"] = Json::String(absl::StrCat(op_id, "_Head"));
        head["description"] = Json::String(absl::StrCat(
            comment.empty() ? "" : absl::StrCat(comment, "\n\n"),
            "HEAD answers as GET does, without a body; the click is counted as a bot's."));
        item["head"] = std::move(head);
      }
    }
    AddOperational(paths, "/healthz", "Alive: 200 while the process runs.", "text/plain");
    AddOperational(paths, "/readyz", "Ready: 200 when every upstream service is serving.",
                   "text/plain");
    AddOperational(paths, "/metrics", "Prometheus metrics (text exposition format).", "text/plain");
    AddOperational(paths, "/v1/openapi.json", "This document.", "application/json");
  }

  void AddOperational(Json* paths, const char* path, const char* description, const char* type) {
    Json& op = (*paths)[path]["get"];
    op["operationId"] = Json::String(absl::StrCat("Edge_", absl::StripPrefix(path, "/")));
    op["tags"].Push(Json::String("Operations"));
    op["description"] = Json::String(description);
    op["security"] = Json::Array();
    Json& ok = op["responses"]["200"];
    ok["description"] = Json::String("OK");
    ok["content"][type]["schema"]["type"] =
        Json::String(absl::StrContains(type, "json") ? "object" : "string");
  }

  void AddParameters(const Route& route, Json* op) {
    std::set<const FieldDescriptor*> bound;
    for (size_t i = 0; i < route.bindings.size(); ++i) {
      const FieldPath& fp = route.bindings[i];
      bound.insert(fp.front());
      Json p = Json::Object();
      p["name"] = Json::String(absl::StrJoin(route.path.variables[i].field_path, "."));
      p["in"] = Json::String("path");
      p["required"] = Json::Bool(true);
      std::string comment = Comment(fp.back());
      if (!comment.empty()) {
        p["description"] = Json::String(comment);
      }
      p["schema"] = FieldSchema(fp.back(), /*element=*/false);
      (*op)["parameters"].Push(std::move(p));
    }
    if (route.body == Route::Body::kAll) {
      return;
    }
    if (route.body_field != nullptr) {
      bound.insert(route.body_field);
    }
    AddQuery(route.method->input_type(), "", bound, 0, op);
  }

  void AddQuery(const Descriptor* d, const std::string& prefix,
                const std::set<const FieldDescriptor*>& bound, int depth, Json* op) {
    if (depth > 3) {
      return;
    }
    for (int i = 0; i < d->field_count(); ++i) {
      const FieldDescriptor* f = d->field(i);
      if (depth == 0 && bound.count(f) > 0) {
        continue;
      }
      if (f->is_map()) {
        continue;
      }
      std::string name =
          prefix.empty() ? f->json_name() : absl::StrCat(prefix, ".", f->json_name());
      if (f->type() == FieldDescriptor::TYPE_MESSAGE) {
        const std::string& t = f->message_type()->full_name();
        bool text_form = t == "google.protobuf.Timestamp" || t == "google.protobuf.Duration" ||
                         t == "google.protobuf.FieldMask" || IsWrapper(t);
        if (!text_form) {
          if (!f->is_repeated() && !absl::StartsWith(t, "google.protobuf.")) {
            AddQuery(f->message_type(), name, bound, depth + 1, op);
          }
          continue;
        }
      }
      Json p = Json::Object();
      p["name"] = Json::String(name);
      p["in"] = Json::String("query");
      std::string comment = Comment(f);
      if (!comment.empty()) {
        p["description"] = Json::String(comment);
      }
      if (depth == 0 && HasBehavior(f, google::api::REQUIRED)) {
        p["required"] = Json::Bool(true);
      }
      p["schema"] = FieldSchema(f, false);
      if (f->is_repeated()) {
        p["style"] = Json::String("form");
        p["explode"] = Json::Bool(true);
      }
      (*op)["parameters"].Push(std::move(p));
    }
  }

  void AddRequestBody(const Route& route, Json* op) {
    if (route.body == Route::Body::kNone) {
      return;
    }
    Json& body = (*op)["requestBody"];
    body["required"] = Json::Bool(route.body == Route::Body::kAll);
    if (route.body_is_http_body) {
      body["content"]["*/*"]["schema"] = BinarySchema();
      return;
    }
    const Descriptor* d = route.body == Route::Body::kAll ? route.method->input_type()
                                                          : route.body_field->message_type();
    // The edge refuses a body with a field its message does not have, at any depth.
    Close(d);
    body["content"]["application/json"]["schema"] = Ref(d);
    if (route.body_accepts_form) {
      body["content"]["application/x-www-form-urlencoded"]["schema"] = Ref(d);
    }
  }

  // `d` and the messages of its fields, transitively (not map entries, which are objects of
  // their own, nor protobuf's well-known types, which are JSON scalars here).
  void Close(const Descriptor* d) {
    if (!closed_.insert(d).second) {
      return;
    }
    for (int i = 0; i < d->field_count(); ++i) {
      const Descriptor* m = d->field(i)->message_type();
      if (m != nullptr && !m->options().map_entry() &&
          !absl::StartsWith(m->full_name(), "google.protobuf.")) {
        Close(m);
      }
    }
  }

  void AddResponses(const Route& route, Json* op) {
    Json& responses = (*op)["responses"];
    const Descriptor* out = route.method->output_type();
    if (route.redirect) {
      Json& r = responses[absl::StrCat(route.redirect->status_code)];
      r["description"] = Json::String("A redirect to the target.");
      r["headers"]["Location"]["schema"]["type"] = Json::String("string");
      if (route.redirect->body_field_number > 0) {
        Json& page = responses["200"];
        page["description"] =
            Json::String("A page instead of the redirect (a form asking for the link's password).");
        page["content"]["text/html"]["schema"] = BinarySchema();
      }
    } else {
      Json& r = responses["200"];
      r["description"] = Json::String(
          route.server_streaming ? "A stream (Server-Sent Events, one JSON message each)" : "OK");
      Json schema;
      if (route.response_is_http_body) {
        r["content"]["*/*"]["schema"] = BinarySchema();
      } else {
        schema =
            route.response_body != nullptr ? FieldSchema(route.response_body, false) : Ref(out);
        r["content"][route.server_streaming ? "text/event-stream" : "application/json"]["schema"] =
            std::move(schema);
      }
    }
    Json& error = responses["default"];
    error["description"] = Json::String("An error: the gRPC status as JSON.");
    error["content"]["application/json"]["schema"]["$ref"] =
        Json::String("#/components/schemas/google.rpc.Status");
    if (route.redirect && route.redirect->body_field_number > 0) {
      // Errors meant for a person (a wrong password, too many tries) come as a page.
      error["description"] = Json::String(
          "An error: the gRPC status as JSON, or a page for a person (the form again after a "
          "wrong password, 401; the time to wait after too many, 429 with Retry-After).");
      error["content"]["text/html"]["schema"] = BinarySchema();
    }
  }

  Json Ref(const Descriptor* d) {
    Json j = Json::Object();
    const std::string& t = d->full_name();
    if (absl::StartsWith(t, "google.protobuf.")) {
      return WellKnown(d);
    }
    if (seen_.insert(d).second) {
      pending_.push_back(d);
    }
    j["$ref"] = Json::String(absl::StrCat("#/components/schemas/", t));
    return j;
  }

  Json WellKnown(const Descriptor* d) {
    Json j = Json::Object();
    const std::string& t = d->full_name();
    if (t == "google.protobuf.Timestamp") {
      j["type"] = Json::String("string");
      j["format"] = Json::String("date-time");
    } else if (t == "google.protobuf.Duration") {
      j["type"] = Json::String("string");
      j["example"] = Json::String("1.5s");
    } else if (t == "google.protobuf.FieldMask") {
      j["type"] = Json::String("string");
      j["description"] = Json::String("Comma-separated lowerCamelCase field paths");
    } else if (IsWrapper(t)) {
      j = FieldSchema(d->field(0), false);
      j["nullable"] = Json::Bool(true);
    } else if (t == "google.protobuf.ListValue") {
      j["type"] = Json::String("array");
      j["items"] = Json::Object();
    } else if (t == "google.protobuf.Value") {
      j["description"] = Json::String("Any JSON value");
    } else if (t == "google.protobuf.Any") {
      j["type"] = Json::String("object");
      j["properties"]["@type"]["type"] = Json::String("string");
      j["additionalProperties"] = Json::Bool(true);
    } else {  // Struct, Empty and the rest
      j["type"] = Json::String("object");
      if (t == "google.protobuf.Struct") {
        j["additionalProperties"] = Json::Bool(true);
      }
    }
    return j;
  }

  static Json BinarySchema() {
    Json j = Json::Object();
    j["type"] = Json::String("string");
    j["format"] = Json::String("binary");
    return j;
  }

  Json ScalarSchema(const FieldDescriptor* f) {
    Json j = Json::Object();
    switch (f->type()) {
      case FieldDescriptor::TYPE_INT32:
      case FieldDescriptor::TYPE_SINT32:
      case FieldDescriptor::TYPE_SFIXED32:
        j["type"] = Json::String("integer");
        j["format"] = Json::String("int32");
        break;
      case FieldDescriptor::TYPE_UINT32:
      case FieldDescriptor::TYPE_FIXED32:
        j["type"] = Json::String("integer");
        j["format"] = Json::String("int64");
        j["minimum"] = Json::Number(0);
        break;
      case FieldDescriptor::TYPE_INT64:
      case FieldDescriptor::TYPE_SINT64:
      case FieldDescriptor::TYPE_SFIXED64:
      case FieldDescriptor::TYPE_UINT64:
      case FieldDescriptor::TYPE_FIXED64:
        j["type"] = Json::String("string");
        j["format"] =
            Json::String(f->cpp_type() == FieldDescriptor::CPPTYPE_UINT64 ? "uint64" : "int64");
        break;
      case FieldDescriptor::TYPE_DOUBLE:
        j["type"] = Json::String("number");
        j["format"] = Json::String("double");
        break;
      case FieldDescriptor::TYPE_FLOAT:
        j["type"] = Json::String("number");
        j["format"] = Json::String("float");
        break;
      case FieldDescriptor::TYPE_BOOL:
        j["type"] = Json::String("boolean");
        break;
      case FieldDescriptor::TYPE_BYTES:
        j["type"] = Json::String("string");
        j["format"] = Json::String("byte");
        break;
      case FieldDescriptor::TYPE_ENUM:
        if (std::find(enums_.begin(), enums_.end(), f->enum_type()) == enums_.end()) {
          enums_.push_back(f->enum_type());
        }
        j["$ref"] =
            Json::String(absl::StrCat("#/components/schemas/", f->enum_type()->full_name()));
        break;
      case FieldDescriptor::TYPE_MESSAGE:
      case FieldDescriptor::TYPE_GROUP:
        return Ref(f->message_type());
      default:
        j["type"] = Json::String("string");
    }
    return j;
  }

  Json FieldSchema(const FieldDescriptor* f, bool element) {
    const bool has_rules = f->options().HasExtension(api::v1::rules);
    const api::v1::FieldRules& rules = f->options().GetExtension(api::v1::rules);
    if (f->is_map()) {
      Json j = Json::Object();
      j["type"] = Json::String("object");
      j["additionalProperties"] = ScalarSchema(f->message_type()->map_value());
      return j;
    }
    if (f->is_repeated() && !element) {
      Json j = Json::Object();
      j["type"] = Json::String("array");
      j["items"] = FieldSchema(f, true);
      if (rules.has_min_items()) {
        j["minItems"] = Json::Number(static_cast<double>(rules.min_items()));
      }
      if (rules.has_max_items()) {
        j["maxItems"] = Json::Number(static_cast<double>(rules.max_items()));
      }
      return j;
    }
    if (f->type() == FieldDescriptor::TYPE_ENUM && HasBehavior(f, google::api::REQUIRED)) {
      // A required enum must be set, and its zero value is "unset": list the others inline.
      return RequiredEnumSchema(f->enum_type());
    }
    Json j = ScalarSchema(f);
    if (has_rules) {
      ApplyRules(rules, &j);
    }
    return j;
  }

  static Json RequiredEnumSchema(const EnumDescriptor* e) {
    Json j = Json::Object();
    j["type"] = Json::String("string");
    Json& values = j["enum"];
    values = Json::Array();
    for (int i = 0; i < e->value_count(); ++i) {
      if (e->value(i)->number() != 0) {
        values.Push(Json::String(e->value(i)->name()));
      }
    }
    return j;
  }

  Json MessageSchema(const Descriptor* d) {
    Json j = Json::Object();
    j["type"] = Json::String("object");
    std::string comment = Comment(d);
    if (!comment.empty()) {
      j["description"] = Json::String(comment);
    }
    Json& props = j["properties"];
    props = Json::Object();
    Json required = Json::Array();
    bool any_required = false;
    for (int i = 0; i < d->field_count(); ++i) {
      const FieldDescriptor* f = d->field(i);
      Json schema = FieldSchema(f, false);
      std::string fc = Comment(f);
      const bool output_only = HasBehavior(f, google::api::OUTPUT_ONLY);
      if (HasBehavior(f, google::api::REQUIRED)) {
        required.Push(Json::String(f->json_name()));
        any_required = true;
      }
      if (schema.Has("$ref") && (!fc.empty() || output_only)) {
        // $ref siblings are ignored in OpenAPI 3.0: wrap it.
        Json wrapped = Json::Object();
        wrapped["allOf"].Push(std::move(schema));
        schema = std::move(wrapped);
      }
      if (!fc.empty()) {
        schema["description"] = Json::String(fc);
      }
      if (output_only) {
        schema["readOnly"] = Json::Bool(true);
      }
      props[f->json_name()] = std::move(schema);
    }
    if (any_required) {
      j["required"] = std::move(required);
    }
    if (closed_.count(d) > 0) {
      j["additionalProperties"] = Json::Bool(false);
    }
    if (IsOneChoice(d)) {
      j["minProperties"] = Json::Number(1);
      j["maxProperties"] = Json::Number(1);
    }
    return j;
  }

  // A message that is nothing but one oneof (RedirectCondition) says one thing: exactly one of
  // its fields. JSON Schema states that as one property; a oneof beside other fields would need
  // a `not` for every pair of its members, which no message here has.
  static bool IsOneChoice(const Descriptor* d) {
    if (d->field_count() < 2 || d->real_oneof_decl_count() != 1) {
      return false;
    }
    // Real oneofs come before synthetic ones (proto3 optional).
    const google::protobuf::OneofDescriptor* o = d->oneof_decl(0);
    return o->field_count() == d->field_count();
  }

  Json EnumSchema(const EnumDescriptor* e) {
    Json j = Json::Object();
    j["type"] = Json::String("string");
    std::string comment = Comment(e);
    if (!comment.empty()) {
      j["description"] = Json::String(comment);
    }
    Json& values = j["enum"];
    values = Json::Array();
    for (int i = 0; i < e->value_count(); ++i) {
      values.Push(Json::String(e->value(i)->name()));
    }
    return j;
  }

  Json ErrorSchema() {
    Json j = Json::Object();
    j["type"] = Json::String("object");
    j["description"] = Json::String("google.rpc.Status: the gRPC code, a message, and details.");
    j["properties"]["code"]["type"] = Json::String("integer");
    j["properties"]["code"]["format"] = Json::String("int32");
    j["properties"]["message"]["type"] = Json::String("string");
    Json& details = j["properties"]["details"];
    details["type"] = Json::String("array");
    details["items"]["type"] = Json::String("object");
    details["items"]["properties"]["@type"]["type"] = Json::String("string");
    details["items"]["additionalProperties"] = Json::Bool(true);
    return j;
  }

  const RouteTable& routes_;
  std::vector<const Descriptor*> pending_;
  std::set<const Descriptor*> seen_;
  std::set<const Descriptor*> closed_;  // request bodies: no fields but their own
  std::vector<const EnumDescriptor*> enums_;
  std::set<std::string> used_ids_;
};

}  // namespace

std::string BuildOpenApi(const ApiDescriptors& /*api*/, const RouteTable& routes,
                         const std::string& server_url) {
  return Generator(routes).Build(server_url);
}

}  // namespace kurt::edge
