// kurt-accounts: the accounts gRPC service (accounts, sign-up and sessions, API keys, the edge's
// Authenticate).
#include <algorithm>

#include "absl/flags/flag.h"
#include "absl/time/time.h"
#include "platform/core/config.h"
#include "platform/core/log.h"
#include "platform/grpc/edge_trust.h"
#include "platform/grpc/server.h"
#include "platform/pg/pg.h"
#include "platform/redis/record_seal.h"
#include "platform/redis/redis.h"
#include "services/accounts/accounts_module.h"
#include "services/common/mesh.h"

ABSL_FLAG(std::string, admin_token, "",
          "Bearer token that may create accounts (POST /v1/accounts); empty: nobody can unless "
          "--open_signup");
ABSL_FLAG(bool, open_signup, false, "Anyone may create an account");
ABSL_FLAG(absl::Duration, key_cache_ttl, absl::Seconds(10), "How long Redis keeps a key lookup");
ABSL_FLAG(int, pg_pool_size, 8, "Connections per database pool");
ABSL_FLAG(absl::Duration, session_token_ttl, absl::Minutes(15),
          "How long a session token (sign-in) is accepted before it must be refreshed");
ABSL_FLAG(absl::Duration, refresh_token_ttl, absl::Hours(24 * 30),
          "How long a refresh token may be used: a session ends when nobody refreshed it for this "
          "long");
ABSL_FLAG(int, signin_failures_per_email, 10,
          "Failed sign-ins for one email address within --signin_failure_window before its "
          "sign-ins are refused (429) until the window ends");
ABSL_FLAG(int, signin_failures_per_client, 100,
          "Failed sign-ins from one client address within --signin_failure_window before its "
          "sign-ins are refused (429) until the window ends");
ABSL_FLAG(absl::Duration, signin_failure_window, absl::Minutes(15),
          "The window failed sign-ins are counted in, from the first");
ABSL_FLAG(int, password_hash_concurrency, 2,
          "Password hashes computed at once (each takes 64 MiB); more wait");

int main(int argc, char** argv) {
  kurt::platform::SetFlagDefault(&FLAGS_grpc_port, kurt::mesh::kAccounts.grpc_port);
  kurt::platform::SetFlagDefault(&FLAGS_metrics_port, kurt::mesh::kAccounts.metrics_port);
  kurt::platform::InitProcess(argc, argv, "accounts", "kurt-accounts: the accounts gRPC service");

  kurt::accounts::AccountsConfig config;
  config.admin_token = absl::GetFlag(FLAGS_admin_token);
  config.open_signup = absl::GetFlag(FLAGS_open_signup);
  config.edge_secret = absl::GetFlag(FLAGS_edge_secret);  // platform's, shared with the edge
  config.key_cache_ttl = absl::GetFlag(FLAGS_key_cache_ttl);
  config.record_secret = kurt::redis::RecordSeal::SecretFromFlags();
  config.session_token_ttl = absl::GetFlag(FLAGS_session_token_ttl);
  config.refresh_token_ttl = absl::GetFlag(FLAGS_refresh_token_ttl);
  config.signin_limits.per_email = absl::GetFlag(FLAGS_signin_failures_per_email);
  config.signin_limits.per_client = absl::GetFlag(FLAGS_signin_failures_per_client);
  config.signin_limits.window = absl::GetFlag(FLAGS_signin_failure_window);
  config.passwords.concurrency = std::max(1, absl::GetFlag(FLAGS_password_hash_concurrency));
  if (config.session_token_ttl <= absl::ZeroDuration() ||
      config.refresh_token_ttl < config.session_token_ttl) {
    KURT_LOG(kError, "--session_token_ttl must be positive and at most --refresh_token_ttl");
    return 2;
  }
  if (config.signin_limits.per_email < 1 || config.signin_limits.per_client < 1 ||
      config.signin_limits.window <= absl::ZeroDuration()) {
    KURT_LOG(kError,
             "--signin_failures_per_email and --signin_failures_per_client must be at least 1, "
             "--signin_failure_window positive");
    return 2;
  }

  // First: a wrong Redis password is a configuration error, found before anything slow.
  auto redis = kurt::redis::RedisClient::FromFlags();
  if (!redis.ok()) {
    KURT_LOG(kError, "cannot use Redis", {"error", redis.status().ToString()});
    return 2;
  }

  kurt::metrics::Registry registry;
  kurt::pg::PgCluster cluster(
      kurt::pg::PgCluster::OptionsFromFlags(absl::GetFlag(FLAGS_pg_pool_size)));

  auto accounts = kurt::accounts::AccountsModule::Create(config, {&cluster, redis->get()});

  kurt::platform::GrpcServer server(kurt::platform::GrpcServerOptions::FromFlags("accounts"),
                                    &registry);
  server.AddService(accounts->service());
  if (absl::Status s = server.Start(); !s.ok()) {
    KURT_LOG(kError, "cannot start", {"error", s.ToString()});
    return 1;
  }
  server.Wait();
  return 0;
}
