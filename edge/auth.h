// The seam where authentication and rate limits plug in: the edge asks an Authorizer about every
// routed request before it calls the upstream. With kurt-accounts configured that is the
// AccountsAuthorizer (edge/accounts_authorizer.h); without it the PassThroughAuthorizer, and the
// services see the Authorization header themselves.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "edge/route.h"
#include "platform/core/metrics.h"
#include "platform/grpc/edge_trust.h"

namespace kurt::edge {

class Upstreams;

struct AuthRequest {
  const Route* route = nullptr;     // route->is_public: (kurt.api.v1.access).public
  absl::string_view authorization;  // the Authorization header ("" when absent)
  absl::string_view client_ip;
  absl::string_view request_id;
  // Any request header by name ("" when absent).
  std::function<absl::string_view(absl::string_view name)> header;
};

struct AuthDecision {
  // Not OK: the request is answered with this status (UNAUTHENTICATED 401, PERMISSION_DENIED
  // 403, RESOURCE_EXHAUSTED 429, ...) and the upstream is not called.
  absl::Status status;
  // Added to the upstream call's metadata (e.g. the authenticated account).
  std::vector<std::pair<std::string, std::string>> metadata;
  // Added to the error response when status is not OK (e.g. Retry-After with a 429).
  std::vector<std::pair<std::string, std::string>> response_headers;
};

class Authorizer {
 public:
  virtual ~Authorizer() = default;
  // Calls `done` exactly once, on any thread (possibly before returning). `request` is valid
  // only during this call: copy what an asynchronous check needs.
  virtual void Authorize(const AuthRequest& request, std::function<void(AuthDecision)> done) = 0;
  // Registers the authorizer's metrics in the edge's registry; called once by EdgeServer::Start,
  // before any request.
  virtual void AttachMetrics(metrics::Registry* /*registry*/) {}
  // Gives an authorizer that calls a service the edge's completion queues, which it must use
  // instead of gRPC's callback API (Upstreams::AsyncUnary says why); called by EdgeServer::Start,
  // before any request. `upstreams` lives until that EdgeServer is destroyed.
  virtual void AttachUpstreams(Upstreams* /*upstreams*/) {}
};

class PassThroughAuthorizer : public Authorizer {
 public:
  void Authorize(const AuthRequest&, std::function<void(AuthDecision)> done) override {
    done(AuthDecision{});
  }
};

// Development and benchmarks only (--dev_trust_account_header): trusts the client's
// X-Kurt-Account-Id header as the authenticated account, so that benchmarks and tests can
// exercise the services without API keys. Never enable it where clients are not trusted.
class DevAccountHeaderAuthorizer : public Authorizer {
 public:
  // `edge_secret` (empty: none) goes with the account, as the AccountsAuthorizer sends it.
  explicit DevAccountHeaderAuthorizer(std::string edge_secret = "")
      : edge_secret_(std::move(edge_secret)) {}

  void Authorize(const AuthRequest& request, std::function<void(AuthDecision)> done) override {
    AuthDecision decision;
    absl::string_view account = request.header ? request.header(platform::kAccountIdMetadata) : "";
    if (!account.empty()) {
      decision.metadata.emplace_back(platform::kAccountIdMetadata, std::string(account));
      if (!edge_secret_.empty()) {
        decision.metadata.emplace_back(platform::kEdgeSecretMetadata, edge_secret_);
      }
    }
    done(std::move(decision));
  }

 private:
  const std::string edge_secret_;
};

}  // namespace kurt::edge
