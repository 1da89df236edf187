// Proto3 JSON <-> protobuf for a route, following google.api.http: path variables, query
// parameters and the body go into the request; the response (or its response_body field)
// becomes JSON, or raw content for google.api.HttpBody.
//
// JSON goes through protobuf's util converters (JsonToBinaryString / BinaryToJsonString, the
// functions under JsonStringToMessage / MessageToJsonString) with a resolver that has every type
// ready, so no message or descriptor is built per request. Path and query values are encoded
// straight to wire format (field_encoding.h) and appended, which merges them into the message.
//
// Stateless after construction; every method is const and thread-safe.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "edge/api_descriptors.h"
#include "edge/route.h"
#include "google/protobuf/util/json_util.h"

namespace kurt::edge {

struct HttpPayload {
  std::string content_type;
  std::string body;
};

class Transcoder {
 public:
  explicit Transcoder(const ApiDescriptors* api);

  // The serialized request message. INVALID_ARGUMENT (naming the parameter or field) when a
  // value does not fit its field, a name is unknown, or the JSON is malformed.
  absl::StatusOr<std::string> Request(const Route& route,
                                      const std::vector<std::string>& path_values,
                                      absl::string_view query, absl::string_view body,
                                      absl::string_view content_type) const;

  // The HTTP body of a unary response (not for redirects: see Location).
  absl::StatusOr<HttpPayload> Response(const Route& route, absl::string_view message) const;

  // One message of a server stream: JSON for SSE, or the raw data of a google.api.HttpBody.
  absl::StatusOr<HttpPayload> StreamMessage(const Route& route, absl::string_view message) const;
  // The SSE id of one stream message ("" when the route has no event id field).
  std::string EventId(const Route& route, absl::string_view message) const;

  // The redirect target from the response ("" when unset).
  static std::string Location(const Route& route, absl::string_view message);
  // A redirect route's page (HttpRedirect.body_field) from the response: false when the route
  // has none or the response does not hold it.
  static bool Page(const Route& route, absl::string_view message, HttpPayload* page);
  // The first google.api.HttpBody among the details of a serialized google.rpc.Status (an
  // error's page, for a redirect route with a body_field): false when there is none.
  static bool ErrorPage(absl::string_view status_details, HttpPayload* page);

  // {"code": <grpc code>, "message": ..., "details": [...]} with details from a serialized
  // google.rpc.Status (grpc-status-details-bin), each Any as JSON where its type is known.
  std::string ErrorBody(int grpc_code, absl::string_view message,
                        absl::string_view status_details) const;

  // Any message of the API as JSON (checked first: it may come from anywhere).
  absl::StatusOr<std::string> ToJson(absl::string_view type_url, absl::string_view message) const;

 private:
  const google::protobuf::Descriptor* FindType(absl::string_view type_url) const;
  // Without the well-formedness check: for bytes already checked. Straight from the bytes
  // (PrintJsonFromWire), else parsed and printed by reflection (PrintJson), else by the util
  // printer for what PrintJson leaves to it.
  absl::StatusOr<std::string> Render(const google::protobuf::Descriptor* type,
                                     absl::string_view message) const;
  // Render without the first step, for bytes PrintJsonFromWire declined.
  absl::StatusOr<std::string> RenderParsed(const google::protobuf::Descriptor* type,
                                           absl::string_view message) const;
  absl::StatusOr<std::string> RenderWithUtil(absl::string_view type_url,
                                             absl::string_view message) const;
  absl::StatusOr<std::string> BodyJsonToBinary(const Route& route, absl::string_view body) const;
  absl::Status AppendQuery(const Route& route, absl::string_view query, std::string* out) const;
  // An HTML form's body (body_accepts_form): each name a field of the request, as in a query.
  absl::Status AppendForm(const Route& route, absl::string_view body, std::string* out) const;

  const ApiDescriptors* api_;
  google::protobuf::util::JsonPrintOptions print_options_;
  google::protobuf::util::JsonPrintOptions print_all_options_;
  google::protobuf::util::JsonParseOptions parse_options_;
};

// Splits a query string into decoded (name, value) pairs ('+' is a space). False on a bad escape.
bool ParseQuery(absl::string_view query, std::vector<std::pair<std::string, std::string>>* out);

}  // namespace kurt::edge
