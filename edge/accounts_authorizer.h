// Authentication by API key at the edge: `Authorization: Bearer <key>` is checked
// through kurt-accounts' Authenticate, and the account id goes upstream as x-kurt-account-id,
// together with the edge's shared secret (x-kurt-edge-secret) that services check before
// trusting it. Public routes pass without a key. Answers are cached in the edge for a short TTL,
// so a revoked key stops working within that TTL plus accounts' Redis TTL.
//
// Lives as long as the EdgeServer using it; Authorize is called from any I/O thread and never
// blocks: the accounts call is asynchronous and `done` runs on one of the upstream calls'
// completion threads (or inline on a cache hit).
#pragma once

#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "edge/auth.h"
#include "edge/rate_limiter.h"
#include "grpcpp/security/credentials.h"

namespace kurt::edge {

// Who a raw API key belongs to (the account id), or UNAUTHENTICATED / UNAVAILABLE.
class KeyAuthenticator {
 public:
  virtual ~KeyAuthenticator() = default;
  // Calls `done` exactly once, on any thread.
  virtual void Authenticate(const std::string& key,
                            std::function<void(absl::StatusOr<std::string>)> done) = 0;
  // The completion queues its calls go through (Authorizer::AttachUpstreams).
  virtual void AttachUpstreams(Upstreams* /*upstreams*/) {}
};

struct GrpcKeyAuthenticatorOptions {
  std::string address;      // host:port of kurt-accounts
  std::string edge_secret;  // sent as x-kurt-edge-secret
  // The channel's credentials (platform/grpc/tls.h); null: plaintext.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  absl::Duration timeout = absl::Seconds(2);
};

// KeyAuthenticator over kurt.accounts.v1.AccountsService/Authenticate, on its own channel. Its
// calls go through the upstream calls' completion queues, not gRPC's callback API, whose first use
// would start gRPC's own polling threads and cost every upstream call a thread hop
// (Upstreams::AsyncUnary); until AttachUpstreams gives the queues, every key is UNAVAILABLE.
std::unique_ptr<KeyAuthenticator> MakeGrpcKeyAuthenticator(GrpcKeyAuthenticatorOptions options);

struct AccountsAuthorizerOptions {
  std::string edge_secret;  // added to every upstream call; empty: not sent
  absl::Duration cache_ttl = absl::Seconds(5);
  size_t cache_entries = 100000;
  // Token buckets per client address (every routed request) and per account (authenticated
  // ones); null: no limits. Over the limit: RESOURCE_EXHAUSTED (429).
  RateLimiter* limiter = nullptr;
  RateLimit per_address{50, 100};
  RateLimit per_account{20, 40};
};

class AccountsAuthorizer : public Authorizer {
 public:
  // `authenticator` outlives the authorizer.
  AccountsAuthorizer(AccountsAuthorizerOptions options, KeyAuthenticator* authenticator,
                     std::function<absl::Time()> clock = absl::Now);

  void Authorize(const AuthRequest& request, std::function<void(AuthDecision)> done) override;
  // kurt_edge_rate_limit_refusals_total{reason="limited"|"overloaded"}.
  void AttachMetrics(metrics::Registry* registry) override;
  // Passed on to the KeyAuthenticator.
  void AttachUpstreams(Upstreams* upstreams) override {
    authenticator_->AttachUpstreams(upstreams);
  }

 private:
  struct Entry {
    absl::StatusOr<std::string> account;
    absl::Time expires;
    std::list<std::string>::iterator lru;
  };
  AuthDecision Decide(const absl::StatusOr<std::string>& account) const;
  // The answer to a request the limiter did not allow (429, or 503 when it is overloaded),
  // counted.
  AuthDecision Refused(const RateDecision& rate, absl::string_view who);
  // Authenticates (after the address's bucket allowed the request).
  void Authenticate(bool is_public, const std::string& authorization,
                    std::function<void(AuthDecision)> done);
  // Takes a token of the account's bucket, then calls done.
  void Limit(AuthDecision decision, const std::string& account,
             std::function<void(AuthDecision)> done);
  bool Lookup(const std::string& digest, absl::StatusOr<std::string>* account);
  void Remember(const std::string& digest, const absl::StatusOr<std::string>& account);

  const AccountsAuthorizerOptions options_;
  KeyAuthenticator* authenticator_;
  std::function<absl::Time()> clock_;
  metrics::Counter* limited_ = nullptr;     // set by AttachMetrics, if ever
  metrics::Counter* overloaded_ = nullptr;  // set by AttachMetrics, if ever
  std::mutex mu_;
  // Keyed by SHA-256 of the key, so the edge's memory holds no usable key; LRU-bounded.
  absl::flat_hash_map<std::string, Entry> cache_;
  std::list<std::string> lru_;  // front: most recent
};

}  // namespace kurt::edge
