#include "edge/edge_server.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "kurt/proto/descriptor_set.h"
#include "platform/core/log.h"

namespace kurt::edge {

absl::Status CheckAuthorizerConfigured(bool has_accounts_address, bool dev_trust_account_header,
                                       bool dev_mode) {
  if (has_accounts_address || dev_trust_account_header || dev_mode) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      "--accounts_address (KURT_ACCOUNTS_ADDRESS) is empty: without kurt-accounts the edge would "
      "serve every route without authentication or rate limits. Set it, or pass --dev_mode "
      "(KURT_DEV_MODE=true) for local development");
}

absl::StatusOr<std::unique_ptr<EdgeServer>> EdgeServer::Start(EdgeServerConfig config,
                                                              Authorizer* authorizer) {
  std::unique_ptr<EdgeServer> s(new EdgeServer());
  absl::StatusOr<std::unique_ptr<ApiDescriptors>> api =
      ApiDescriptors::CreateWithFiles(kurt::proto::DescriptorSet(), config.extra_descriptor_sets);
  if (!api.ok()) {
    return api.status();
  }
  s->api_ = *std::move(api);

  absl::StatusOr<std::unique_ptr<RouteTable>> routes = RouteTable::Build(*s->api_, config.routes);
  if (!routes.ok()) {
    return routes.status();
  }
  s->routes_ = *std::move(routes);

  absl::StatusOr<std::map<std::string, std::string>> targets = ParseUpstreams(config.upstreams);
  if (!targets.ok()) {
    return targets.status();
  }
  std::vector<std::string> missing;
  for (const std::string& service : s->routes_->services()) {
    if (targets->contains(service)) {
      continue;
    }
    std::string address = config.default_upstream_host.empty()
                              ? ""
                              : DefaultUpstreamAddress(service, config.default_upstream_host);
    if (address.empty()) {
      missing.push_back(service);
    } else {
      (*targets)[service] = address;
    }
  }
  for (const auto& [service, address] : *targets) {
    KURT_LOG(kInfo, "upstream", {"service", service}, {"target", ChannelTarget(address)});
  }
  if (!missing.empty()) {
    KURT_LOG(kWarn, "services without an upstream answer 503",
             {"services", absl::StrJoin(missing, ",")});
  }
  for (const auto& route : s->routes_->routes()) {
    if (route->redirect) {
      // "/pkg.Service/Method": its calls carry a click id, and a second one counts once.
      std::vector<std::string>& methods = config.upstream.retried_methods[route->service];
      std::string method = route->grpc_method.substr(route->grpc_method.rfind('/') + 1);
      if (std::find(methods.begin(), methods.end(), method) == methods.end()) {
        methods.push_back(std::move(method));
      }
    }
  }
  s->upstreams_ = std::make_unique<Upstreams>(*targets, config.upstream);
  s->drain_delay_ = config.drain_delay;

  if (authorizer == nullptr && config.dev_trust_account_header) {
    KURT_LOG(kWarn, "--dev_trust_account_header: X-Kurt-Account-Id is trusted (development only)");
    s->own_authorizer_ = std::make_unique<DevAccountHeaderAuthorizer>(config.edge_secret);
    authorizer = s->own_authorizer_.get();
  } else if (authorizer == nullptr) {
    s->own_authorizer_ = std::make_unique<PassThroughAuthorizer>();
    authorizer = s->own_authorizer_.get();
  }
  authorizer->AttachMetrics(&s->registry_);
  authorizer->AttachUpstreams(s->upstreams_.get());
  config.edge.edge_secret = config.edge_secret;
  s->edge_ = std::make_unique<Edge>(config.edge, s->api_.get(), s->routes_.get(),
                                    s->upstreams_.get(), authorizer, &s->registry_);
  s->http_ = std::make_unique<HttpServer>(config.http, s->edge_.get(), &s->registry_);
  absl::StatusOr<int> port = s->http_->Start();
  if (!port.ok()) {
    return port.status();
  }
  if (config.admin_port >= 0) {
    Edge* edge = s->edge_.get();
    s->admin_ = std::make_unique<platform::AdminHttpServer>(
        &s->registry_, [edge] { return !edge->draining(); },
        [edge] { return edge->upstream_health().Report(); });
    absl::StatusOr<int> admin_port = s->admin_->Start(config.http.host, config.admin_port);
    if (!admin_port.ok()) {
      return admin_port.status();
    }
    s->admin_port_ = *admin_port;
  }
  KURT_LOG(kInfo, "edge listening", {"address", absl::StrCat(config.http.host, ":", *port)},
           {"admin_port", s->admin_port_}, {"routes", s->routes_->routes().size()},
           {"io_threads", config.http.threads});
  return s;
}

EdgeServer::~EdgeServer() { Shutdown(absl::ZeroDuration()); }

void EdgeServer::Shutdown(absl::Duration grace) {
  if (shut_down_) {
    return;
  }
  shut_down_ = true;
  edge_->SetDraining();
  if (grace > absl::ZeroDuration() && drain_delay_ > absl::ZeroDuration()) {
    KURT_LOG(kInfo, "draining: /readyz answers 503; still serving",
             {"for", absl::FormatDuration(drain_delay_)});
    absl::SleepFor(drain_delay_);
  }
  // Streams have no deadline and would hold the grace period: end them (clients resume with
  // Last-Event-ID elsewhere).
  edge_->CancelStreams();
  http_->Stop(grace);
  if (admin_) {
    admin_->Stop();
  }
  // The I/O threads have stopped but their io_contexts (and the connections' sockets) live until
  // http_ goes: the calls still in flight are cancelled, and their completions (which write to
  // their connections, or post to them) are waited for. A cancelled call completes at once.
  edge_->CancelUpstreamCalls();
  edge_->WaitIdle(absl::Seconds(5));
  // Reports of cached redirects still pending go when the Edge is destroyed (HitReporter's last
  // round, with a short deadline that fits the pod's termination grace period).
}

const std::map<std::string, std::string>& EdgeServer::upstream_targets() const {
  return upstreams_->targets();
}

}  // namespace kurt::edge
