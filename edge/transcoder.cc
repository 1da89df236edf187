#include "edge/transcoder.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "edge/field_encoding.h"
#include "edge/json_parser.h"
#include "edge/json_printer.h"
#include "edge/route_table.h"
#include "edge/router.h"
#include "google/protobuf/arena.h"
#include "google/rpc/status.pb.h"
#include "platform/core/text.h"

namespace kurt::edge {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
namespace util = google::protobuf::util;

constexpr absl::string_view kAnyTypeUrl = "type.googleapis.com/google.protobuf.Any";

// google.api.HttpBody: content_type = 1, data = 2.
std::string EncodeHttpBody(absl::string_view content_type, absl::string_view data) {
  std::string out;
  if (!content_type.empty()) {
    AppendLengthDelimited(1, content_type, &out);
  }
  if (!data.empty()) {
    AppendLengthDelimited(2, data, &out);
  }
  return out;
}

HttpPayload DecodeHttpBody(absl::string_view message) {
  absl::string_view content_type, data;
  FindLengthDelimited(message, 1, &content_type);
  FindLengthDelimited(message, 2, &data);
  HttpPayload p{std::string(content_type), std::string(data)};
  if (p.content_type.empty()) {
    p.content_type = "application/octet-stream";
  }
  return p;
}

absl::string_view StripSpace(absl::string_view s) { return absl::StripAsciiWhitespace(s); }

// application/x-www-form-urlencoded, parameters (a charset) aside.
bool IsForm(absl::string_view content_type) {
  return absl::EqualsIgnoreCase(StripSpace(content_type.substr(0, content_type.find(';'))),
                                "application/x-www-form-urlencoded");
}

bool SamePath(const FieldPath& a, const std::vector<const FieldDescriptor*>& b, size_t n) {
  if (a.size() < n || b.size() < n) {
    return false;
  }
  for (size_t i = 0; i < n; ++i) {
    if (a[i] != b[i]) {
      return false;
    }
  }
  return true;
}

}  // namespace

bool ParseQuery(absl::string_view query, std::vector<std::pair<std::string, std::string>>* out) {
  for (absl::string_view part : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    size_t eq = part.find('=');
    std::string key(part.substr(0, eq));
    std::string value(eq == absl::string_view::npos ? "" : part.substr(eq + 1));
    std::replace(key.begin(), key.end(), '+', ' ');
    std::replace(value.begin(), value.end(), '+', ' ');
    std::string k, v;
    if (!PercentDecode(key, false, &k) || !PercentDecode(value, false, &v)) {
      return false;
    }
    if (k.empty()) {
      continue;
    }
    out->emplace_back(std::move(k), std::move(v));
  }
  return true;
}

Transcoder::Transcoder(const ApiDescriptors* api) : api_(api) {
  print_options_.add_whitespace = false;
  print_options_.always_print_primitive_fields = false;
  print_options_.preserve_proto_field_names = false;
  print_all_options_ = print_options_;
  print_all_options_.always_print_primitive_fields = true;
  parse_options_.ignore_unknown_fields = false;
}

absl::StatusOr<std::string> Transcoder::BodyJsonToBinary(const Route& route,
                                                         absl::string_view body) const {
  std::string binary;
  if (StripSpace(body).empty()) {
    return binary;
  }
  const google::protobuf::Descriptor* type = route.body == Route::Body::kField
                                                 ? route.body_field->message_type()
                                                 : route.method->input_type();
  // The fast parser takes the usual bodies; what it declines (bad input among it) is the util
  // parser's, whose answer and errors it is tested against.
  if (!JsonToWire(type, body, &binary)) {
    binary.clear();
    util::Status s = util::JsonToBinaryString(
        api_->resolver(), TypeUrl(type), google::protobuf::StringPiece(body.data(), body.size()),
        &binary, parse_options_);
    if (!s.ok()) {
      std::string where = route.body == Route::Body::kField
                              ? absl::StrCat(" (field ", route.body_field->name(), ")")
                              : "";
      return absl::InvalidArgumentError(
          absl::StrCat("invalid JSON body", where, ": ", std::string(s.message())));
    }
  }
  if (route.body == Route::Body::kField) {
    std::string wrapped;
    AppendLengthDelimited(route.body_field->number(), binary, &wrapped);
    return wrapped;
  }
  return binary;
}

absl::Status Transcoder::AppendForm(const Route& route, absl::string_view body,
                                    std::string* out) const {
  std::vector<std::pair<std::string, std::string>> fields;
  if (!ParseQuery(body, &fields)) {
    return absl::InvalidArgumentError("malformed form body (a bad %-escape)");
  }
  for (const auto& [name, value] : fields) {
    std::string what = absl::StrCat("form field \"", name, "\"");
    const FieldDescriptor* f = FindField(route.method->input_type(), name);
    if (f == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": no such field in ", route.method->input_type()->full_name()));
    }
    if (absl::Status s = AppendFieldFromText({f}, value, what, out); !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

absl::Status Transcoder::AppendQuery(const Route& route, absl::string_view query,
                                     std::string* out) const {
  std::vector<std::pair<std::string, std::string>> params;
  if (!ParseQuery(query, &params)) {
    return absl::InvalidArgumentError("malformed query string (a bad %-escape)");
  }
  const Descriptor* request = route.method->input_type();
  for (const auto& [name, value] : params) {
    std::string what = absl::StrCat("query parameter \"", name, "\"");
    FieldPath path;
    const Descriptor* current = request;
    bool unknown = false;
    for (absl::string_view part : absl::StrSplit(name, '.')) {
      if (current == nullptr) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, ": ", path.back()->name(), " is not a message"));
      }
      const FieldDescriptor* f = FindField(current, part);
      if (f == nullptr) {
        unknown = true;
        break;
      }
      if (!path.empty() && path.back()->is_repeated()) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, ": repeated field ", path.back()->name(), " has no subfields here"));
      }
      path.push_back(f);
      current = f->message_type();
    }
    if (unknown) {
      // A shared short link may carry tracking parameters; nothing else takes unknown names.
      if (route.redirect) {
        continue;
      }
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": no such field in ", request->full_name()));
    }
    if (route.body == Route::Body::kAll) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": this method takes its fields from the JSON body"));
    }
    if (route.body == Route::Body::kField && path.front() == route.body_field) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": set by the request body"));
    }
    for (const FieldPath& bound : route.bindings) {
      size_t n = std::min(bound.size(), path.size());
      if (SamePath(bound, path, n)) {
        return absl::InvalidArgumentError(absl::StrCat(what, ": bound by the URL path"));
      }
    }
    if (path.back()->is_repeated() && path.back()->type() == FieldDescriptor::TYPE_MESSAGE &&
        !path.back()->is_map() &&
        path.back()->message_type()->full_name().rfind("google.protobuf.", 0) != 0) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": repeated message field ",
                                                     path.back()->name(),
                                                     " cannot be set from a query; use a body"));
    }
    if (absl::Status s = AppendFieldFromText(path, value, what, out); !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Transcoder::Request(const Route& route,
                                                const std::vector<std::string>& path_values,
                                                absl::string_view query, absl::string_view body,
                                                absl::string_view content_type) const {
  std::string out;
  switch (route.body) {
    case Route::Body::kNone:
      break;
    case Route::Body::kAll:
      if (route.body_is_http_body) {
        out = EncodeHttpBody(content_type, body);
      } else if (route.body_accepts_form && IsForm(content_type)) {
        if (absl::Status s = AppendForm(route, body, &out); !s.ok()) {
          return s;
        }
      } else {
        absl::StatusOr<std::string> b = BodyJsonToBinary(route, body);
        if (!b.ok()) {
          return b.status();
        }
        out = *std::move(b);
      }
      break;
    case Route::Body::kField:
      if (route.body_is_http_body) {
        AppendLengthDelimited(route.body_field->number(), EncodeHttpBody(content_type, body), &out);
      } else {
        absl::StatusOr<std::string> b = BodyJsonToBinary(route, body);
        if (!b.ok()) {
          return b.status();
        }
        out = *std::move(b);
      }
      break;
  }
  if (!query.empty()) {
    if (absl::Status s = AppendQuery(route, query, &out); !s.ok()) {
      return s;
    }
  }
  // Path values last: where the body also set them, the path wins.
  for (size_t i = 0; i < route.bindings.size() && i < path_values.size(); ++i) {
    // The value's name is made only for the error (every request has a path variable).
    if (!AppendFieldFromText(route.bindings[i], path_values[i], "", &out).ok()) {
      return AppendFieldFromText(
          route.bindings[i], path_values[i],
          absl::StrCat("path variable \"", route.bindings[i].back()->name(), "\""), &out);
    }
  }
  return out;
}

const google::protobuf::Descriptor* Transcoder::FindType(absl::string_view type_url) const {
  absl::string_view name = type_url.substr(type_url.rfind('/') + 1);
  std::string full(name);
  const Descriptor* d = api_->pool().FindMessageTypeByName(full);
  if (d == nullptr) {
    d = google::protobuf::DescriptorPool::generated_pool()->FindMessageTypeByName(full);
  }
  return d;
}

absl::StatusOr<std::string> Transcoder::Render(const Descriptor* type,
                                               absl::string_view message) const {
  if (std::string json; PrintJsonFromWire(type, message, &json)) {
    return json;
  }
  return RenderParsed(type, message);
}

absl::StatusOr<std::string> Transcoder::RenderParsed(const Descriptor* type,
                                                     absl::string_view message) const {
  if (const google::protobuf::Message* prototype = api_->Prototype(type)) {
    alignas(8) char block[8192];
    google::protobuf::ArenaOptions options;
    options.initial_block = block;
    options.initial_block_size = sizeof(block);
    google::protobuf::Arena arena(options);
    google::protobuf::Message* m = prototype->New(&arena);
    std::string json;
    if (m->ParseFromArray(message.data(), static_cast<int>(message.size())) &&
        PrintJson(*m, &json)) {
      return json;
    }
  }
  return RenderWithUtil(TypeUrl(type), message);
}

absl::StatusOr<std::string> Transcoder::RenderWithUtil(absl::string_view type_url,
                                                       absl::string_view message) const {
  std::string json;
  util::Status s = util::BinaryToJsonString(api_->resolver(), std::string(type_url),
                                            std::string(message), &json, print_options_);
  if (!s.ok()) {
    return absl::InternalError(
        absl::StrCat("cannot render the response as JSON: ", std::string(s.message())));
  }
  return json;
}

absl::StatusOr<std::string> Transcoder::ToJson(absl::string_view type_url,
                                               absl::string_view message) const {
  const Descriptor* type = FindType(type_url);
  if (type == nullptr) {
    return absl::InternalError(absl::StrCat("unknown type ", type_url));
  }
  if (!IsWellFormed(type, message)) {
    return absl::InternalError("malformed protobuf message");
  }
  return Render(type, message);
}

absl::StatusOr<HttpPayload> Transcoder::Response(const Route& route,
                                                 absl::string_view message) const {
  // The usual answer, a message printed whole, is read straight from its bytes, which the reading
  // checks as it goes: the well-formedness pass is for what it leaves to the parsed path.
  if (route.response_body == nullptr && !route.response_is_http_body) {
    std::string json;
    if (PrintJsonFromWire(route.method->output_type(), message, &json)) {
      return HttpPayload{"application/json", std::move(json)};
    }
  }
  if (!IsWellFormed(route.method->output_type(), message)) {
    return absl::InternalError("the upstream's response is not a well-formed message");
  }
  if (route.response_body == nullptr) {
    if (route.response_is_http_body) {
      return DecodeHttpBody(message);
    }
    // PrintJsonFromWire declined it above.
    absl::StatusOr<std::string> json = RenderParsed(route.method->output_type(), message);
    if (!json.ok()) {
      return json.status();
    }
    return HttpPayload{"application/json", *std::move(json)};
  }
  const FieldDescriptor* f = route.response_body;
  if (f->type() == FieldDescriptor::TYPE_MESSAGE && !f->is_repeated()) {
    absl::string_view sub;
    FindLengthDelimited(message, f->number(), &sub);
    if (route.response_is_http_body) {
      return DecodeHttpBody(sub);
    }
    absl::StatusOr<std::string> json = Render(f->message_type(), sub);
    if (!json.ok()) {
      return json.status();
    }
    return HttpPayload{"application/json", *std::move(json)};
  }
  // A scalar, repeated or map field: render a message holding only that field and cut the value
  // out of {"<jsonName>":<value>}.
  std::string only = KeepOnlyField(message, f->number());
  std::string json;
  util::Status s = util::BinaryToJsonString(api_->resolver(), route.response_type_url, only, &json,
                                            print_all_options_);
  if (!s.ok()) {
    return absl::InternalError(
        absl::StrCat("cannot render the response as JSON: ", std::string(s.message())));
  }
  std::string prefix = absl::StrCat("{\"", f->json_name(), "\":");
  if (absl::StartsWith(json, prefix) && absl::EndsWith(json, "}")) {
    json = json.substr(prefix.size(), json.size() - prefix.size() - 1);
  }
  return HttpPayload{"application/json", std::move(json)};
}

absl::StatusOr<HttpPayload> Transcoder::StreamMessage(const Route& route,
                                                      absl::string_view message) const {
  return Response(route, message);
}

std::string Transcoder::EventId(const Route& route, absl::string_view message) const {
  const FieldDescriptor* f = route.event_id_field;
  if (f == nullptr) {
    return "";
  }
  if (f->type() == FieldDescriptor::TYPE_STRING) {
    absl::string_view v;
    if (!FindLengthDelimited(message, f->number(), &v)) {
      return "";
    }
    // An SSE field ends at a line break.
    std::string id(v);
    id.erase(std::remove_if(id.begin(), id.end(), [](char c) { return c == '\n' || c == '\r'; }),
             id.end());
    return id;
  }
  std::string json;
  std::string only = KeepOnlyField(message, f->number());
  if (only.empty() || !IsWellFormed(route.method->output_type(), only)) {
    return "";
  }
  if (!util::BinaryToJsonString(api_->resolver(), route.response_type_url, only, &json,
                                print_options_)
           .ok()) {
    return "";
  }
  std::string prefix = absl::StrCat("{\"", f->json_name(), "\":");
  if (!absl::StartsWith(json, prefix)) {
    return "";
  }
  std::string value = json.substr(prefix.size(), json.size() - prefix.size() - 1);
  if (value.size() >= 2 && value.front() == '"') {
    value = value.substr(1, value.size() - 2);
  }
  return value;
}

std::string Transcoder::Location(const Route& route, absl::string_view message) {
  absl::string_view v;
  if (!route.redirect || !FindLengthDelimited(message, route.redirect->location_field_number, &v)) {
    return "";
  }
  return std::string(v);
}

bool Transcoder::Page(const Route& route, absl::string_view message, HttpPayload* page) {
  absl::string_view v;
  if (!route.redirect || route.redirect->body_field_number == 0 ||
      !FindLengthDelimited(message, route.redirect->body_field_number, &v)) {
    return false;
  }
  *page = DecodeHttpBody(v);
  return true;
}

bool Transcoder::ErrorPage(absl::string_view status_details, HttpPayload* page) {
  google::rpc::Status status;
  if (status_details.empty() ||
      !status.ParseFromArray(status_details.data(), static_cast<int>(status_details.size()))) {
    return false;
  }
  for (const google::protobuf::Any& any : status.details()) {
    if (any.type_url() == "type.googleapis.com/google.api.HttpBody") {
      *page = DecodeHttpBody(any.value());
      return true;
    }
  }
  return false;
}

std::string Transcoder::ErrorBody(int grpc_code, absl::string_view message,
                                  absl::string_view status_details) const {
  std::string out = absl::StrCat("{\"code\":", grpc_code, ",\"message\":\"");
  platform::AppendJsonEscaped(message, &out);
  out.append("\",\"details\":[");
  google::rpc::Status status;
  if (!status_details.empty() &&
      status.ParseFromArray(status_details.data(), static_cast<int>(status_details.size()))) {
    bool first = true;
    for (const google::protobuf::Any& any : status.details()) {
      if (!first) {
        out.push_back(',');
      }
      first = false;
      std::string json;
      const Descriptor* type = FindType(any.type_url());
      if (type != nullptr && IsWellFormed(type, any.value()) &&
          util::BinaryToJsonString(api_->resolver(), std::string(kAnyTypeUrl),
                                   any.SerializeAsString(), &json, print_options_)
              .ok()) {
        out.append(json);
      } else {
        out.append("{\"@type\":\"");
        platform::AppendJsonEscaped(any.type_url(), &out);
        absl::StrAppend(&out, "\",\"value\":\"", absl::Base64Escape(any.value()), "\"}");
      }
    }
  }
  out.append("]}");
  return out;
}

}  // namespace kurt::edge
