#include "edge/route_table.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "google/api/annotations.pb.h"
#include "google/api/http.pb.h"
#include "kurt/api/v1/options.pb.h"

namespace kurt::edge {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::MethodDescriptor;

absl::Status Bad(const MethodDescriptor* m, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(m->full_name(), ": ", why));
}

absl::StatusOr<FieldPath> ResolvePath(const Descriptor* message,
                                      const std::vector<std::string>& names) {
  FieldPath path;
  const Descriptor* current = message;
  for (size_t i = 0; i < names.size(); ++i) {
    if (current == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", absl::StrJoin(names, "."), "\": ", names[i - 1], " is not a message"));
    }
    const FieldDescriptor* f = current->FindFieldByName(names[i]);
    if (f == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("no field \"", absl::StrJoin(names, "."), "\" in ", message->full_name()));
    }
    if (f->is_repeated() && i + 1 < names.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", absl::StrJoin(names, "."), "\": ", f->name(), " is repeated"));
    }
    path.push_back(f);
    current = f->message_type();
  }
  return path;
}

bool IsPathBindable(const FieldDescriptor* f) {
  if (f->is_repeated()) {
    return false;
  }
  if (f->type() != FieldDescriptor::TYPE_MESSAGE) {
    return true;
  }
  // Well-known types with a string form may be bound too.
  const std::string& t = f->message_type()->full_name();
  return t == "google.protobuf.Timestamp" || t == "google.protobuf.Duration" ||
         t == "google.protobuf.FieldMask" ||
         (absl::StartsWith(t, "google.protobuf.") && absl::EndsWith(t, "Value") &&
          t != "google.protobuf.Value" && t != "google.protobuf.ListValue");
}

const FieldDescriptor* EventIdField(const Descriptor* response) {
  for (const char* name : {"event_id", "id"}) {
    const FieldDescriptor* f = response->FindFieldByName(name);
    if (f != nullptr && !f->is_repeated() && f->type() != FieldDescriptor::TYPE_MESSAGE &&
        f->type() != FieldDescriptor::TYPE_BYTES) {
      return f;
    }
  }
  return nullptr;
}

struct Binding {
  std::string method;
  std::string path;
  std::string body;
  std::string response_body;
};

absl::StatusOr<Binding> BindingOf(const MethodDescriptor* m, const google::api::HttpRule& rule) {
  Binding b;
  switch (rule.pattern_case()) {
    case google::api::HttpRule::kGet:
      b.method = "GET";
      b.path = rule.get();
      break;
    case google::api::HttpRule::kPut:
      b.method = "PUT";
      b.path = rule.put();
      break;
    case google::api::HttpRule::kPost:
      b.method = "POST";
      b.path = rule.post();
      break;
    case google::api::HttpRule::kDelete:
      b.method = "DELETE";
      b.path = rule.delete_();
      break;
    case google::api::HttpRule::kPatch:
      b.method = "PATCH";
      b.path = rule.patch();
      break;
    case google::api::HttpRule::kCustom:
      b.method = rule.custom().kind();
      b.path = rule.custom().path();
      break;
    default:
      return Bad(m, "google.api.http rule without a pattern");
  }
  b.body = rule.body();
  b.response_body = rule.response_body();
  return b;
}

}  // namespace

const FieldDescriptor* FindField(const Descriptor* message, absl::string_view name) {
  const FieldDescriptor* f = message->FindFieldByName(std::string(name));
  if (f != nullptr) {
    return f;
  }
  for (int i = 0; i < message->field_count(); ++i) {
    if (message->field(i)->json_name() == name) {
      return message->field(i);
    }
  }
  return nullptr;
}

bool IsHttpBody(const Descriptor* message) {
  return message != nullptr && message->full_name() == "google.api.HttpBody";
}

absl::StatusOr<std::unique_ptr<RouteTable>> RouteTable::Build(const ApiDescriptors& api,
                                                              const RouteTableOptions& options) {
  std::unique_ptr<RouteTable> table(new RouteTable());
  for (const google::protobuf::FileDescriptor* file : api.files()) {
    for (int s = 0; s < file->service_count(); ++s) {
      const google::protobuf::ServiceDescriptor* service = file->service(s);
      bool has_route = false;
      for (int i = 0; i < service->method_count(); ++i) {
        const MethodDescriptor* m = service->method(i);
        if (!m->options().HasExtension(google::api::http)) {
          continue;
        }
        if (m->client_streaming()) {
          return Bad(m, "client-streaming RPCs cannot be served over HTTP");
        }
        const google::api::HttpRule& rule = m->options().GetExtension(google::api::http);
        std::vector<const google::api::HttpRule*> rules = {&rule};
        for (const google::api::HttpRule& extra : rule.additional_bindings()) {
          rules.push_back(&extra);
        }
        for (const google::api::HttpRule* r : rules) {
          absl::StatusOr<Binding> binding = BindingOf(m, *r);
          if (!binding.ok()) {
            return binding.status();
          }
          absl::StatusOr<PathTemplate> path = PathTemplate::Parse(binding->path);
          if (!path.ok()) {
            return Bad(m, path.status().message());
          }

          auto route = std::make_unique<Route>();
          route->id = static_cast<int>(table->routes_.size());
          route->http_method = binding->method;
          route->method = m;
          route->service = service->full_name();
          route->name = m->full_name();
          route->grpc_method = absl::StrCat("/", service->full_name(), "/", m->name());
          route->request_type_url = TypeUrl(m->input_type());
          route->response_type_url = TypeUrl(m->output_type());
          route->server_streaming = m->server_streaming();

          for (const PathTemplate::Variable& v : path->variables) {
            absl::StatusOr<FieldPath> fp = ResolvePath(m->input_type(), v.field_path);
            if (!fp.ok()) {
              return Bad(m, fp.status().message());
            }
            if (!IsPathBindable(fp->back())) {
              return Bad(m, absl::StrCat("path variable \"", absl::StrJoin(v.field_path, "."),
                                         "\" must be a singular scalar field"));
            }
            route->bindings.push_back(*std::move(fp));
          }

          if (binding->body == "*") {
            route->body = Route::Body::kAll;
            route->body_is_http_body = IsHttpBody(m->input_type());
          } else if (!binding->body.empty()) {
            const FieldDescriptor* f = m->input_type()->FindFieldByName(binding->body);
            if (f == nullptr) {
              return Bad(m, absl::StrCat("no body field \"", binding->body, "\""));
            }
            if (f->type() != FieldDescriptor::TYPE_MESSAGE || f->is_repeated()) {
              return Bad(m, absl::StrCat("body field \"", binding->body,
                                         "\" must be a singular message field"));
            }
            route->body = Route::Body::kField;
            route->body_field = f;
            route->body_is_http_body = IsHttpBody(f->message_type());
          }
          if (route->body != Route::Body::kNone && route->http_method == "GET") {
            return Bad(m, "a GET cannot have a body");
          }

          const Descriptor* out = m->output_type();
          if (!binding->response_body.empty()) {
            route->response_body = out->FindFieldByName(binding->response_body);
            if (route->response_body == nullptr) {
              return Bad(m,
                         absl::StrCat("no response_body field \"", binding->response_body, "\""));
            }
            route->response_is_http_body = !route->response_body->is_repeated() &&
                                           IsHttpBody(route->response_body->message_type());
          } else {
            route->response_is_http_body = IsHttpBody(out);
          }
          if (route->server_streaming && !route->response_is_http_body) {
            route->event_id_field = EventIdField(out);
          }

          if (m->options().HasExtension(kurt::api::v1::http_redirect)) {
            const auto& opt = m->options().GetExtension(kurt::api::v1::http_redirect);
            const FieldDescriptor* f = out->FindFieldByName(opt.location_field());
            if (f == nullptr || f->type() != FieldDescriptor::TYPE_STRING || f->is_repeated()) {
              return Bad(m, absl::StrCat("http_redirect.location_field \"", opt.location_field(),
                                         "\" is not a string field of ", out->full_name()));
            }
            int code = opt.status_code() == 0 ? 302 : opt.status_code();
            if (code != 301 && code != 302 && code != 303 && code != 307 && code != 308) {
              return Bad(m, absl::StrCat("http_redirect.status_code ", code, " is not a redirect"));
            }
            if (route->server_streaming) {
              return Bad(m, "a redirect cannot be a stream");
            }
            Route::Redirect redirect;
            redirect.location_field_number = f->number();
            redirect.status_code = code;
            redirect.cache_max_age_seconds = opt.cache_max_age_seconds();
            route->redirect = std::move(redirect);
            if (!opt.max_age_field().empty()) {
              const FieldDescriptor* age = out->FindFieldByName(opt.max_age_field());
              if (age == nullptr || age->type() != FieldDescriptor::TYPE_INT32 ||
                  age->is_repeated() || !age->has_presence()) {
                return Bad(m,
                           absl::StrCat("http_redirect.max_age_field \"", opt.max_age_field(),
                                        "\" is not an optional int32 field of ", out->full_name()));
              }
              route->redirect->max_age_field_number = age->number();
            }
            if (!opt.body_field().empty()) {
              const FieldDescriptor* page = out->FindFieldByName(opt.body_field());
              if (page == nullptr || page->is_repeated() || !IsHttpBody(page->message_type())) {
                return Bad(
                    m, absl::StrCat("http_redirect.body_field \"", opt.body_field(),
                                    "\" is not a google.api.HttpBody field of ", out->full_name()));
              }
              route->redirect->body_field_number = page->number();
              route->redirect->content_security_policy = opt.body_content_security_policy();
            }
            if (opt.accepts_form()) {
              if (route->body != Route::Body::kAll || route->body_is_http_body) {
                return Bad(m, "http_redirect.accepts_form needs a body \"*\" of fields");
              }
              route->body_accepts_form = true;
            }
            if (!opt.cached_hits_method().empty()) {
              const MethodDescriptor* hits = service->FindMethodByName(opt.cached_hits_method());
              if (hits == nullptr || hits->client_streaming() || hits->server_streaming() ||
                  hits->input_type()->full_name() != "kurt.api.v1.CachedRedirects") {
                return Bad(
                    m, absl::StrCat("http_redirect.cached_hits_method \"", opt.cached_hits_method(),
                                    "\" is not a unary RPC of ", service->full_name(),
                                    " taking kurt.api.v1.CachedRedirects"));
              }
              route->redirect->cached_hits_method =
                  absl::StrCat("/", service->full_name(), "/", hits->name());
            }
          }
          if (m->options().HasExtension(kurt::api::v1::access)) {
            route->is_public = m->options().GetExtension(kurt::api::v1::access).public_();
          }
          if (m->options().HasExtension(kurt::api::v1::http_cache)) {
            const int max_age =
                m->options().GetExtension(kurt::api::v1::http_cache).max_age_seconds();
            if (route->http_method != "GET" || route->redirect || route->server_streaming ||
                max_age <= 0) {
              return Bad(m,
                         "http_cache is for a unary GET route that is no redirect, with "
                         "max_age_seconds > 0");
            }
            route->cache_max_age_seconds = max_age;
          }
          if (auto it = options.route_timeouts.find(route->name);
              it != options.route_timeouts.end()) {
            route->default_timeout = it->second;
          } else if (!route->server_streaming) {
            route->default_timeout = options.default_timeout;
          }

          if (absl::Status st = table->router_.Add(route->http_method, *path, route->id);
              !st.ok()) {
            return Bad(m, st.message());
          }
          route->path = *std::move(path);
          table->routes_.push_back(std::move(route));
          has_route = true;
        }
      }
      if (has_route) {
        table->services_.push_back(service->full_name());
      }
    }
  }
  return table;
}

}  // namespace kurt::edge
