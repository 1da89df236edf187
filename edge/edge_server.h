// Everything the edge binary runs, wired together: descriptors, routes, upstream channels, the
// pipeline and the HTTP server. main builds one from flags; tests build one on port 0 with
// their own upstreams and descriptor sets.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "edge/api_descriptors.h"
#include "edge/auth.h"
#include "edge/edge.h"
#include "edge/http_server.h"
#include "edge/route_table.h"
#include "edge/upstream.h"
#include "platform/core/metrics.h"

namespace kurt::edge {

struct EdgeServerConfig {
  HttpServerOptions http;
  EdgeOptions edge;
  RouteTableOptions routes;
  UpstreamOptions upstream;
  // Files holding extra serialized FileDescriptorSets (tests' own services).
  std::vector<std::string> extra_descriptor_sets;
  // --upstream entries ("Service=host:port[,host:port]").
  std::vector<std::string> upstreams;
  // Where Kurt's own services are when --upstream does not say (their default ports); empty:
  // nowhere (their routes answer 503).
  std::string default_upstream_host = "127.0.0.1";
  // See DevAccountHeaderAuthorizer (auth.h); ignored when Start is given an authorizer.
  bool dev_trust_account_header = false;
  // Sent as x-kurt-edge-secret with the account DevAccountHeaderAuthorizer takes, so services
  // that check the secret still believe it (the AccountsAuthorizer is given its own).
  std::string edge_secret;
};

class EdgeServer {
 public:
  // Builds everything and starts listening. `authorizer` may be null (pass-through).
  static absl::StatusOr<std::unique_ptr<EdgeServer>> Start(EdgeServerConfig config,
                                                           Authorizer* authorizer = nullptr);
  ~EdgeServer();

  int port() const { return http_->port(); }
  // Graceful: /readyz turns 503, no new connections, requests in flight finish (up to grace).
  void Shutdown(absl::Duration grace);

  Edge& edge() { return *edge_; }
  const RouteTable& routes() const { return *routes_; }
  const std::map<std::string, std::string>& upstream_targets() const;
  metrics::Registry& registry() { return registry_; }

 private:
  EdgeServer() = default;

  metrics::Registry registry_;
  std::unique_ptr<ApiDescriptors> api_;
  std::unique_ptr<RouteTable> routes_;
  std::unique_ptr<Upstreams> upstreams_;
  std::unique_ptr<Authorizer> own_authorizer_;
  std::unique_ptr<Edge> edge_;
  std::unique_ptr<HttpServer> http_;
  bool shut_down_ = false;
};

}  // namespace kurt::edge
