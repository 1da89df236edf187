// Every route of the API, built at start from the google.api.http annotations of each service
// in the descriptors, and the router that finds them. Immutable once built; read by every thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "edge/api_descriptors.h"
#include "edge/route.h"
#include "edge/router.h"

namespace kurt::edge {

struct RouteTableOptions {
  // Deadline of unary calls when the request sets none.
  absl::Duration default_timeout = absl::Seconds(10);
  // Per-route defaults, by RPC full name ("kurt.links.v1.LinksService.CreateLink").
  absl::flat_hash_map<std::string, absl::Duration> route_timeouts;
};

class RouteTable {
 public:
  // Fails, naming the RPC, on an annotation the edge cannot serve (a bad template, a body or
  // response_body naming no field, a client-streaming RPC, two routes on one method and path).
  static absl::StatusOr<std::unique_ptr<RouteTable>> Build(const ApiDescriptors& api,
                                                           const RouteTableOptions& options);

  const std::vector<std::unique_ptr<Route>>& routes() const { return routes_; }
  const Router& router() const { return router_; }
  // Full names of the services that have at least one route.
  const std::vector<std::string>& services() const { return services_; }

 private:
  RouteTable() = default;

  std::vector<std::unique_ptr<Route>> routes_;
  std::vector<std::string> services_;
  Router router_;
};

// Finds a field of `message` by its proto name or its JSON name.
const google::protobuf::FieldDescriptor* FindField(const google::protobuf::Descriptor* message,
                                                   absl::string_view name);

bool IsHttpBody(const google::protobuf::Descriptor* message);

}  // namespace kurt::edge
