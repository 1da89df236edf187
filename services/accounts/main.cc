// kurt-accounts: the accounts gRPC service (accounts, API keys, the edge's Authenticate).
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
