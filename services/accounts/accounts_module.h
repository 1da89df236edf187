// The one place the accounts service is wired: its store (PostgreSQL), its key cache and sign-in
// limits (Redis), its password hasher, its RPCs and their gRPC service, and the janitor that
// deletes expired session tokens and refresh tokens. main and every test harness that serves
// accounts call Create.
//
// Created and destroyed on one thread, after the clients in AccountsDeps and before they go; the
// service it hands out is called on gRPC's threads.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "platform/pg/pg.h"
#include "platform/redis/redis.h"
#include "services/accounts/accounts_rpcs.h"
#include "services/accounts/accounts_service.h"
#include "services/accounts/accounts_store.h"
#include "services/accounts/key_cache.h"
#include "services/accounts/signin_throttle.h"
#include "services/common/failure_throttle.h"
#include "services/common/password_hasher.h"

namespace kurt::accounts {

// Everything the accounts service is configured with (main fills it from flags).
struct AccountsConfig {
  // Bearer token that may create accounts; empty: only open sign-up can.
  std::string admin_token;
  bool open_signup = false;
  // Shared with the edge; empty disables the check (local development).
  std::string edge_secret;
  // How long Redis keeps a key lookup.
  absl::Duration key_cache_ttl = absl::Seconds(10);
  // Where in Redis the lookups are kept (tests take a prefix of their own).
  std::string key_cache_prefix = "kurt:apikey:";
  // Seals the cached key records (--redis_record_secret; the same on every replica).
  std::string record_secret = redis::kDevelopmentRecordSecret;
  absl::Duration session_token_ttl = absl::Minutes(15);
  absl::Duration refresh_token_ttl = absl::Hours(24 * 30);
  SignInLimits signin_limits;
  // Where in Redis failed sign-ins are counted (tests take a prefix of their own).
  std::string signin_key_prefix = "kurt:signin:";
  PasswordHasherOptions passwords;
  // How often the janitor deletes expired tokens (zero: never).
  absl::Duration sweep_interval = absl::Minutes(10);
};

// The clients main built; each outlives the module.
struct AccountsDeps {
  pg::PgCluster* cluster = nullptr;
  redis::RedisClient* redis = nullptr;
};

class AccountsModule {
 public:
  static std::unique_ptr<AccountsModule> Create(const AccountsConfig& config, AccountsDeps deps);
  ~AccountsModule();

  // kurt.accounts.v1.AccountsService, to add to a GrpcServer.
  grpc::Service* service() { return &service_; }

 private:
  AccountsModule(const AccountsConfig& config, AccountsDeps deps);

  void Sweep();

  PgAccountsStore store_;
  RedisKeyCache cache_;
  PasswordHasher passwords_;
  RedisFailureThrottle signin_failures_;
  SignInThrottle throttle_;
  AccountsRpcs rpcs_;
  AccountsService service_;
  const absl::Duration sweep_interval_;
  absl::Notification stop_;
  std::thread janitor_;
};

}  // namespace kurt::accounts
