// kurt-accounts: the accounts gRPC service (accounts, API keys, the edge's Authenticate).
#include "absl/flags/flag.h"
#include "platform/core/config.h"
#include "platform/grpc/server.h"
#include "platform/core/log.h"
#include "platform/pg/pg.h"
#include "platform/redis/redis.h"
#include "services/accounts/accounts_service.h"
#include "services/accounts/accounts_store.h"
#include "services/accounts/key_cache.h"

ABSL_FLAG(std::string, admin_token, "",
          "Bearer token that may create accounts (POST /v1/accounts); empty: nobody can unless "
          "--open_signup");
ABSL_FLAG(bool, open_signup, false, "Anyone may create an account");
ABSL_FLAG(int, key_cache_ttl_seconds, 10, "How long Redis keeps a key lookup");
ABSL_FLAG(int, pg_pool_size, 8, "Connections per database pool");

int main(int argc, char** argv) {
  kurt::platform::SetFlagDefault(&FLAGS_grpc_port, 7102);
  kurt::platform::SetFlagDefault(&FLAGS_metrics_port, 9102);
  kurt::platform::InitProcess(argc, argv, "accounts", "kurt-accounts: the accounts gRPC service");

  kurt::metrics::Registry registry;
  kurt::pg::PgCluster cluster(
      kurt::pg::PgCluster::OptionsFromFlags(absl::GetFlag(FLAGS_pg_pool_size)));
  auto redis_options = kurt::redis::Options::FromUrl(absl::GetFlag(FLAGS_redis_url));
  if (!redis_options.ok()) {
    KURT_LOG(kError, "bad --redis_url", {"error", redis_options.status().ToString()});
    return 2;
  }
  kurt::redis::RedisClient redis(*redis_options);

  kurt::accounts::PgAccountsStore store(&cluster);
  kurt::accounts::RedisKeyCache cache(&redis,
                                      absl::Seconds(absl::GetFlag(FLAGS_key_cache_ttl_seconds)));
  kurt::accounts::AccountsServiceOptions options;
  options.admin_token = absl::GetFlag(FLAGS_admin_token);
  options.open_signup = absl::GetFlag(FLAGS_open_signup);
  options.edge_secret = absl::GetFlag(FLAGS_edge_secret);  // platform's, shared with the edge
  kurt::accounts::AccountsService service(options, &store, &cache);

  kurt::platform::GrpcServer server(kurt::platform::GrpcServerOptions::FromFlags("accounts"),
                                    &registry);
  server.AddService(&service);
  if (absl::Status s = server.Start(); !s.ok()) {
    KURT_LOG(kError, "cannot start", {"error", s.ToString()});
    return 1;
  }
  server.Wait();
  return 0;
}
