// One HTTP route: an RPC and one of its google.api.http bindings, with everything the request
// path needs resolved at start (field descriptors, type URLs, options), so that serving a request
// looks nothing up by name.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "edge/path_template.h"
#include "google/protobuf/descriptor.h"

namespace kurt::edge {

// A chain of fields from the request message down, e.g. {thing, id} for "thing.id".
using FieldPath = std::vector<const google::protobuf::FieldDescriptor*>;

struct Route {
  enum class Body { kNone, kAll, kField };
  struct Redirect {
    int location_field_number = 0;
    int status_code = 302;
    int cache_max_age_seconds = 0;
    // "/pkg.Service/Method" that hears of the redirects served from the edge's cache; "" none.
    std::string cached_hits_method;
    // The response's optional int32 field bounding the max-age (HttpRedirect.max_age_field); 0
    // none.
    int max_age_field_number = 0;
    // The response's google.api.HttpBody field answered instead of a redirect when the location
    // is empty, and whose kind an error's details may carry (HttpRedirect.body_field); 0 none.
    int body_field_number = 0;
    // Those pages' Content-Security-Policy header; "" none.
    std::string content_security_policy;
  };

  int id = 0;
  std::string http_method;  // GET, POST, ... or a custom one
  PathTemplate path;
  const google::protobuf::MethodDescriptor* method = nullptr;
  std::string grpc_method;  // "/kurt.links.v1.LinksService/GetLink"
  std::string service;      // "kurt.links.v1.LinksService"
  std::string name;         // "kurt.links.v1.LinksService.GetLink": logs and metric labels
  std::string request_type_url;
  std::string response_type_url;

  // One per variable of `path`, in the same order.
  std::vector<FieldPath> bindings;
  Body body = Body::kNone;
  const google::protobuf::FieldDescriptor* body_field = nullptr;  // kField
  // The body is raw content: the request is a google.api.HttpBody (body "*") or body_field is.
  bool body_is_http_body = false;
  // A body "*" may also be an HTML form's (HttpRedirect.accepts_form).
  bool body_accepts_form = false;

  const google::protobuf::FieldDescriptor* response_body = nullptr;
  // The response (or its response_body field) is a google.api.HttpBody.
  bool response_is_http_body = false;
  bool server_streaming = false;
  // SSE `id:` comes from this response field when the message has one (event_id, else id).
  const google::protobuf::FieldDescriptor* event_id_field = nullptr;

  std::optional<Redirect> redirect;  // (kurt.api.v1.http_redirect)
  bool is_public = false;            // (kurt.api.v1.access).public
  // (kurt.api.v1.http_cache).max_age_seconds: GETs answer `public, max-age=N`; 0: no-cache.
  int cache_max_age_seconds = 0;
  // Deadline when the request names none; zero: none (server streams).
  absl::Duration default_timeout = absl::ZeroDuration();
};

}  // namespace kurt::edge
