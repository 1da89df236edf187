// kurt-notifications: stores a notification per finished report (a Kafka consumer group on
// kurt.reports.completed.v1), serves them (list, ack, a live stream) over gRPC, and POSTs them
// to the accounts' webhooks. Wiring only: notifications_module.h is where the parts meet.
#include <algorithm>
#include <string>

#include "absl/flags/flag.h"
#include "absl/time/time.h"
#include "platform/core/config.h"
#include "platform/core/log.h"
#include "platform/core/metrics.h"
#include "platform/grpc/server.h"
#include "platform/kafka/kafka.h"
#include "platform/pg/listener.h"
#include "platform/pg/pg.h"
#include "services/common/mesh.h"
#include "services/notifications/notifications_module.h"

ABSL_FLAG(std::string, completed_topic, kurt::mesh::kReportsCompletedTopic,
          "Kafka topic of finished reports (consumed)");
ABSL_FLAG(std::string, consumer_group, std::string{kurt::mesh::kNotifications.binary},
          "Kafka consumer group");
ABSL_FLAG(bool, allow_private_webhooks, false,
          "Let webhooks reach private, loopback and link-local addresses (tests only)");
ABSL_FLAG(int, webhook_max_attempts, 8, "POSTs of one notification before giving up");
ABSL_FLAG(absl::Duration, webhook_backoff, absl::Seconds(1),
          "Wait before a webhook's second attempt; doubled for each further one (up to 1 h)");
ABSL_FLAG(absl::Duration, webhook_timeout, absl::Seconds(5), "Time for one webhook POST");
ABSL_FLAG(absl::Duration, webhook_resolve_timeout, absl::Seconds(3),
          "Time for resolving a webhook's host before each POST");
ABSL_FLAG(int, webhook_concurrency, 8,
          "Webhook POSTs in flight at once, each to a different account (a slow endpoint holds "
          "one)");
ABSL_FLAG(int, max_streams_per_account, 10,
          "Live notification streams one account may hold open on a replica (0: no limit)");
ABSL_FLAG(absl::Duration, stream_poll, absl::Seconds(5),
          "Live streams look at the table at least this often (wake-ups come sooner)");
ABSL_FLAG(int, pg_pool_size, 16, "Connections per database pool");

namespace {

kurt::notifications::NotificationsConfig ConfigFromFlags() {
  kurt::notifications::NotificationsConfig config;
  config.kafka_brokers = absl::GetFlag(FLAGS_kafka_brokers);
  config.completed_topic = absl::GetFlag(FLAGS_completed_topic);
  config.consumer_group = absl::GetFlag(FLAGS_consumer_group);
  config.listen_url = kurt::pg::ListenUrlFromFlags();
  const bool allow_private = absl::GetFlag(FLAGS_allow_private_webhooks);
  config.rpcs.allow_internal_webhooks = allow_private;
  config.rpcs.stream_poll = absl::GetFlag(FLAGS_stream_poll);
  config.webhook_sender.allow_internal = allow_private;
  config.webhook_sender.max_attempts = absl::GetFlag(FLAGS_webhook_max_attempts);
  config.webhook_sender.backoff = absl::GetFlag(FLAGS_webhook_backoff);
  config.webhook_sender.timeout = absl::GetFlag(FLAGS_webhook_timeout);
  config.webhook_sender.resolve_timeout = absl::GetFlag(FLAGS_webhook_resolve_timeout);
  config.webhook_sender.concurrency = std::max(1, absl::GetFlag(FLAGS_webhook_concurrency));
  config.rpcs.max_streams_per_account = absl::GetFlag(FLAGS_max_streams_per_account);
  config.webhook_sender.lease =
      std::max(absl::Seconds(30),
               (config.webhook_sender.resolve_timeout + config.webhook_sender.timeout) * 3);
  return config;
}

}  // namespace

int main(int argc, char** argv) {
  kurt::platform::SetFlagDefault(&FLAGS_grpc_port, kurt::mesh::kNotifications.grpc_port);
  kurt::platform::SetFlagDefault(&FLAGS_metrics_port, kurt::mesh::kNotifications.metrics_port);
  kurt::platform::InitProcess(argc, argv, "notifications",
                              "kurt-notifications: notifications of finished reports");

  kurt::metrics::Registry registry;
  kurt::pg::PoolOptions pool_options;
  pool_options.url = absl::GetFlag(FLAGS_pg_primary_url);
  pool_options.max_connections = absl::GetFlag(FLAGS_pg_pool_size);
  kurt::pg::PgPool primary(pool_options);

  auto module = kurt::notifications::NotificationsModule::Create(
      ConfigFromFlags(), {.primary = &primary, .registry = &registry});
  if (!module.ok()) {
    KURT_LOG(kError, "cannot build the service", {"error", module.status().ToString()});
    return 2;
  }

  kurt::platform::GrpcServer server(kurt::platform::GrpcServerOptions::FromFlags("notifications"),
                                    &registry);
  server.AddService((*module)->service());
  server.OnShutdown([&] { (*module)->Stop(); });
  if (absl::Status s = server.Start(); !s.ok()) {
    KURT_LOG(kError, "cannot start", {"error", s.ToString()});
    return 1;
  }
  (*module)->Start();

  int sig = kurt::platform::WaitForShutdownSignal();
  KURT_LOG(kInfo, "shutting down", {"signal", sig});
  // Live streams never end by themselves: end them first, so the drain does not wait for them.
  (*module)->StopStreams();
  server.Shutdown();
  return 0;
}
