#include "edge/accounts_authorizer.h"

#include <algorithm>
#include <atomic>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "edge/upstream.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "kurt/accounts/v1/accounts.grpc.pb.h"
#include "platform/core/sha256.h"
#include "platform/grpc/edge_trust.h"

namespace kurt::edge {
namespace {

std::string Digest(absl::string_view key) {
  const platform::Sha256Digest digest = platform::Sha256(key);
  return std::string(reinterpret_cast<const char*>(digest.data()), digest.size());
}

std::shared_ptr<grpc::Channel> AccountsChannel(const GrpcKeyAuthenticatorOptions& options) {
  const std::string target = ChannelTarget(options.address);
  grpc::ChannelArguments args;
  CheckServersAsService(target, "kurt.accounts.v1.AccountsService", &args);
  // Round robin over the replicas that serve, as for every upstream (not pick_first: one
  // replica would take every check of every edge).
  args.SetServiceConfigJSON(UpstreamServiceConfig("kurt.accounts.v1.AccountsService", {}));
  return grpc::CreateCustomChannel(
      target, options.credentials ? options.credentials : grpc::InsecureChannelCredentials(), args);
}

class GrpcKeyAuthenticator : public KeyAuthenticator {
 public:
  explicit GrpcKeyAuthenticator(GrpcKeyAuthenticatorOptions options)
      : options_(std::move(options)), stub_(AccountsChannel(options_)) {}

  void AttachUpstreams(Upstreams* upstreams) override {
    upstreams_.store(upstreams, std::memory_order_release);
  }

  void Authenticate(const std::string& key,
                    std::function<void(absl::StatusOr<std::string>)> done) override {
    Upstreams* upstreams = upstreams_.load(std::memory_order_acquire);
    if (upstreams == nullptr) {
      // No completion queues to call on (not attached to an EdgeServer): the edge's problem.
      return done(Unavailable());
    }
    struct CallState {
      grpc::ClientContext context;
      grpc::ByteBuffer request;
      grpc::ByteBuffer response;
    };
    auto state = std::make_shared<CallState>();
    accounts::v1::AuthenticateRequest request;
    request.set_key(key);
    state->request = ToByteBuffer(request.SerializeAsString());
    state->context.set_deadline(std::chrono::system_clock::now() +
                                absl::ToChronoMilliseconds(options_.timeout));
    if (!options_.edge_secret.empty()) {
      state->context.AddMetadata(std::string(platform::kEdgeSecretMetadata), options_.edge_secret);
    }
    // On the unary calls' completion queues (their threads), as every call of the edge.
    upstreams->AsyncUnary(&stub_, &state->context, method_, state->request, &state->response,
                          [state, done = std::move(done)](const grpc::Status& status) {
                            done(Outcome(status, state->response));
                          });
  }

 private:
  // Anything but an answer or UNAUTHENTICATED (accounts down, slow, misconfigured) is the edge's
  // problem, not the caller's: 503, and never cached.
  static absl::Status Unavailable() {
    return absl::UnavailableError("cannot check the API key right now; retry");
  }

  // The account, or why not, from a finished call.
  static absl::StatusOr<std::string> Outcome(const grpc::Status& status,
                                             const grpc::ByteBuffer& response) {
    if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED) {
      return absl::UnauthenticatedError(status.error_message());
    }
    accounts::v1::AuthenticateResponse parsed;
    // An answer that does not parse: what the typed stub made of it (INTERNAL), unavailable.
    if (!status.ok() || !parsed.ParseFromString(FromByteBuffer(response))) {
      return Unavailable();
    }
    return parsed.account_id();
  }

  const GrpcKeyAuthenticatorOptions options_;
  grpc::GenericStub stub_;
  const std::string method_ =
      absl::StrCat("/", accounts::v1::AccountsService::service_full_name(), "/Authenticate");
  std::atomic<Upstreams*> upstreams_{nullptr};
};

}  // namespace

std::unique_ptr<KeyAuthenticator> MakeGrpcKeyAuthenticator(GrpcKeyAuthenticatorOptions options) {
  return std::make_unique<GrpcKeyAuthenticator>(std::move(options));
}

AccountsAuthorizer::AccountsAuthorizer(AccountsAuthorizerOptions options,
                                       KeyAuthenticator* authenticator,
                                       std::function<absl::Time()> clock)
    : options_(std::move(options)), authenticator_(authenticator), clock_(std::move(clock)) {}

AuthDecision AccountsAuthorizer::Decide(const absl::StatusOr<std::string>& account) const {
  AuthDecision decision;
  if (!account.ok()) {
    decision.status = account.status();
    return decision;
  }
  decision.metadata.emplace_back(platform::kAccountIdMetadata, *account);
  if (!options_.edge_secret.empty()) {
    decision.metadata.emplace_back(platform::kEdgeSecretMetadata, options_.edge_secret);
  }
  return decision;
}

bool AccountsAuthorizer::Lookup(const std::string& digest, absl::StatusOr<std::string>* account) {
  std::lock_guard lock(mu_);
  auto it = cache_.find(digest);
  if (it == cache_.end()) {
    return false;
  }
  if (it->second.expires <= clock_()) {
    lru_.erase(it->second.lru);
    cache_.erase(it);
    return false;
  }
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  *account = it->second.account;
  return true;
}

void AccountsAuthorizer::Remember(const std::string& digest,
                                  const absl::StatusOr<std::string>& account) {
  if (options_.cache_entries == 0 || options_.cache_ttl <= absl::ZeroDuration()) {
    return;
  }
  std::lock_guard lock(mu_);
  auto it = cache_.find(digest);
  if (it != cache_.end()) {
    lru_.erase(it->second.lru);
    cache_.erase(it);
  }
  while (cache_.size() >= options_.cache_entries && !lru_.empty()) {
    cache_.erase(lru_.back());
    lru_.pop_back();
  }
  lru_.push_front(digest);
  cache_.emplace(digest, Entry{account, clock_() + options_.cache_ttl, lru_.begin()});
}

void AccountsAuthorizer::AttachMetrics(metrics::Registry* registry) {
  auto& refusals = registry->AddCounter(
      "kurt_edge_rate_limit_refusals_total",
      "Requests refused by the rate limits: over a bucket (429) or with the limiter's queue "
      "full (503)",
      {"reason"});
  limited_ = &refusals.WithLabels({"limited"});
  overloaded_ = &refusals.WithLabels({"overloaded"});
}

namespace {

// A 503 for a request whose rate limit could not be checked: too many checks already wait.
AuthDecision Overloaded() {
  AuthDecision decision;
  decision.status = absl::UnavailableError(
      "this server has too many rate-limit checks waiting; retry in a moment");
  decision.response_headers.emplace_back("Retry-After", "1");
  return decision;
}

// A 429 that says, in its message and in Retry-After, when to come back.
AuthDecision TooMany(absl::string_view who, absl::Duration retry_after) {
  int64_t seconds =
      std::max<int64_t>(1, absl::ToInt64Seconds(absl::Ceil(retry_after, absl::Seconds(1))));
  AuthDecision decision;
  decision.status = absl::ResourceExhaustedError(
      absl::StrCat("rate limit exceeded for this ", who, "; retry after ", seconds, " s"));
  decision.response_headers.emplace_back("Retry-After", absl::StrCat(seconds));
  return decision;
}

}  // namespace

AuthDecision AccountsAuthorizer::Refused(const RateDecision& rate, absl::string_view who) {
  if (rate.overloaded) {
    if (overloaded_ != nullptr) {
      overloaded_->Increment();
    }
    return Overloaded();
  }
  if (limited_ != nullptr) {
    limited_->Increment();
  }
  return TooMany(who, rate.retry_after);
}

void AccountsAuthorizer::Authorize(const AuthRequest& request,
                                   std::function<void(AuthDecision)> done) {
  bool is_public = request.route != nullptr && request.route->is_public;
  std::string authorization(request.authorization);
  if (options_.limiter == nullptr || options_.per_address.per_second <= 0) {
    return Authenticate(is_public, authorization, std::move(done));
  }
  options_.limiter->Take(absl::StrCat("ip:", request.client_ip), options_.per_address,
                         [this, is_public, authorization = std::move(authorization),
                          done = std::move(done)](RateDecision rate) mutable {
                           if (!rate.allowed) {
                             return done(Refused(rate, "client address"));
                           }
                           Authenticate(is_public, authorization, std::move(done));
                         });
}

void AccountsAuthorizer::Limit(AuthDecision decision, const std::string& account,
                               std::function<void(AuthDecision)> done) {
  if (options_.limiter == nullptr || options_.per_account.per_second <= 0 ||
      !decision.status.ok()) {
    return done(std::move(decision));
  }
  options_.limiter->Take(
      absl::StrCat("acct:", account), options_.per_account,
      [this, decision = std::move(decision), done = std::move(done)](RateDecision rate) mutable {
        if (!rate.allowed) {
          return done(Refused(rate, "API key's account"));
        }
        done(std::move(decision));
      });
}

void AccountsAuthorizer::Authenticate(bool is_public, const std::string& authorization,
                                      std::function<void(AuthDecision)> done) {
  if (is_public) {
    // Public routes carry no account; the secret still marks the call as the edge's.
    AuthDecision decision;
    if (!options_.edge_secret.empty()) {
      decision.metadata.emplace_back(platform::kEdgeSecretMetadata, options_.edge_secret);
    }
    return done(std::move(decision));
  }
  constexpr absl::string_view kBearer = "Bearer ";
  if (authorization.empty()) {
    return done(Decide(
        absl::UnauthenticatedError("this route needs an API key: Authorization: Bearer <key>")));
  }
  if (!absl::StartsWithIgnoreCase(authorization, kBearer)) {
    return done(Decide(absl::UnauthenticatedError(
        "unsupported Authorization scheme (want: Authorization: Bearer <key>)")));
  }
  std::string key(
      absl::StripAsciiWhitespace(absl::string_view(authorization).substr(kBearer.size())));
  std::string digest = Digest(key);
  absl::StatusOr<std::string> cached;
  if (Lookup(digest, &cached)) {
    std::string account = cached.ok() ? *cached : "";
    return Limit(Decide(cached), account, std::move(done));
  }
  authenticator_->Authenticate(
      key, [this, digest, done = std::move(done)](absl::StatusOr<std::string> account) mutable {
        if (account.ok() || absl::IsUnauthenticated(account.status())) {
          Remember(digest, account);
        }
        std::string id = account.ok() ? *account : "";
        Limit(Decide(account), id, std::move(done));
      });
}

}  // namespace kurt::edge
