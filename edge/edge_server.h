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
#include "platform/http/admin_http.h"

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
  // The admin HTTP server (/readyz with each upstream's health, /metrics, /healthz), never public:
  // its port, 0 for a free one (tests), negative for none.
  int admin_port = -1;
  // On Shutdown, how long the edge goes on serving with /readyz answering 503 before it stops
  // taking connections: long enough for its balancer's health checks to take it out (an
  // ingress with endpoint removal needs none; the --ha shape's HAProxy checks every second).
  absl::Duration drain_delay = absl::ZeroDuration();
  // Sent as x-kurt-edge-secret with the account DevAccountHeaderAuthorizer takes, so services
  // that check the secret still believe it (the AccountsAuthorizer is given its own).
  std::string edge_secret;
};

// The edge's rule for its authorizer: without --accounts_address every route is open (no API
// keys, no rate limits), which only development may want: --dev_mode, or
// --dev_trust_account_header (itself development only). Otherwise InvalidArgument naming
// --accounts_address.
absl::Status CheckAuthorizerConfigured(bool has_accounts_address, bool dev_trust_account_header,
                                       bool dev_mode);

class EdgeServer {
 public:
  // Builds everything and starts listening. `authorizer` may be null (pass-through).
  static absl::StatusOr<std::unique_ptr<EdgeServer>> Start(EdgeServerConfig config,
                                                           Authorizer* authorizer = nullptr);
  ~EdgeServer();

  int port() const { return http_->port(); }
  int admin_port() const { return admin_port_; }
  // Graceful: /readyz turns 503 and, for drain_delay, requests are still served; then no new
  // connections, and requests in flight finish (up to grace). Zero grace: at once.
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
  std::unique_ptr<platform::AdminHttpServer> admin_;
  int admin_port_ = -1;
  absl::Duration drain_delay_;
  bool shut_down_ = false;
};

}  // namespace kurt::edge
