// kurt-notifications: stores a notification per finished report (a Kafka consumer group on
// kurt.reports.completed.v1), serves them (list, ack, a live stream) over gRPC, and POSTs them
// to the accounts' webhooks.
#include <thread>

#include "absl/flags/flag.h"
#include "platform/core/config.h"
#include "platform/grpc/server.h"
#include "platform/kafka/kafka.h"
#include "platform/core/log.h"
#include "platform/pg/pg.h"
#include "services/notifications/completed_consumer.h"
#include "services/notifications/http_client.h"
#include "services/notifications/notification_hub.h"
#include "services/notifications/notification_store.h"
#include "services/notifications/notifications_service.h"
#include "services/notifications/webhook_sender.h"
#include "platform/kafka/first_assignment.h"

ABSL_FLAG(std::string, completed_topic, "kurt.reports.completed.v1",
          "Kafka topic of finished reports (consumed)");
ABSL_FLAG(std::string, consumer_group, "kurt-notifications", "Kafka consumer group");
ABSL_FLAG(bool, allow_private_webhooks, false,
          "Let webhooks reach private, loopback and link-local addresses (tests only)");
ABSL_FLAG(int, webhook_max_attempts, 8, "POSTs of one notification before giving up");
ABSL_FLAG(absl::Duration, webhook_backoff, absl::Seconds(1),
          "Wait before a webhook's second attempt; doubled for each further one (up to 1 h)");
ABSL_FLAG(absl::Duration, webhook_timeout, absl::Seconds(5), "Time for one webhook POST");
ABSL_FLAG(absl::Duration, stream_poll, absl::Seconds(5),
          "Live streams look at the table at least this often (wake-ups come sooner)");
ABSL_FLAG(int, pg_pool_size, 16, "Connections per database pool");

int main(int argc, char** argv) {
  kurt::platform::SetFlagDefault(&FLAGS_grpc_port, 7106);
  kurt::platform::SetFlagDefault(&FLAGS_metrics_port, 9106);
  kurt::platform::InitProcess(argc, argv, "notifications",
                              "kurt-notifications: notifications of finished reports");

  kurt::metrics::Registry registry;
  kurt::pg::PoolOptions pool_options;
  pool_options.url = absl::GetFlag(FLAGS_pg_primary_url);
  pool_options.max_connections = absl::GetFlag(FLAGS_pg_pool_size);
  kurt::pg::PgPool primary(pool_options);
  kurt::notifications::PgNotificationStore store(&primary);

  kurt::notifications::NotificationHub hub(absl::GetFlag(FLAGS_pg_primary_url), &registry);
  kurt::notifications::BeastHttpPoster poster;
  kurt::notifications::WebhookSenderOptions sender_options;
  sender_options.allow_internal = absl::GetFlag(FLAGS_allow_private_webhooks);
  sender_options.max_attempts = absl::GetFlag(FLAGS_webhook_max_attempts);
  sender_options.backoff = absl::GetFlag(FLAGS_webhook_backoff);
  sender_options.timeout = absl::GetFlag(FLAGS_webhook_timeout);
  sender_options.lease = std::max(absl::Seconds(30), sender_options.timeout * 3);
  kurt::notifications::WebhookSender sender(sender_options, &store, &poster, &registry);

  kurt::notifications::NotificationsServiceOptions options;
  options.allow_internal_webhooks = sender_options.allow_internal;
  options.stream_poll = absl::GetFlag(FLAGS_stream_poll);
  kurt::notifications::NotificationsService service(options, &store, &hub, &registry);

  kurt::notifications::CompletedConsumer handler(&store, &sender, &registry);
  kurt::kafka::ConsumerOptions consumer_options;
  consumer_options.brokers = absl::GetFlag(FLAGS_kafka_brokers);
  consumer_options.group_id = absl::GetFlag(FLAGS_consumer_group);
  consumer_options.topics = {absl::GetFlag(FLAGS_completed_topic)};
  consumer_options.client_id = "kurt-notifications";
  consumer_options.assignment_strategy = "cooperative-sticky";
  kurt::kafka::FirstAssignment first_assignment;
  auto consumer = kurt::kafka::KafkaConsumer::Create(
      consumer_options,
      [&](const std::vector<kurt::kafka::Message>& batch) { return handler.HandleBatch(batch); },
      first_assignment.Handler());
  if (!consumer.ok()) {
    KURT_LOG(kError, "kafka consumer", {"error", consumer.status().ToString()});
    return 2;
  }

  kurt::platform::GrpcServer server(
      kurt::platform::GrpcServerOptions::FromFlags("notifications"), &registry);
  server.AddService(&service);
  std::thread consuming;
  server.OnShutdown([&] { sender.Stop(); });
  server.OnShutdown([&] { first_assignment.StopAndClose(&*consumer, &consuming); });
  if (absl::Status s = server.Start(); !s.ok()) {
    KURT_LOG(kError, "cannot start", {"error", s.ToString()});
    return 1;
  }
  hub.Start();
  sender.Start();
  consuming = std::thread([&] { (*consumer)->Run(); });

  int sig = kurt::platform::WaitForShutdownSignal();
  KURT_LOG(kInfo, "shutting down", {"signal", sig});
  // Live streams never end by themselves: end them first, so the drain does not wait for them.
  hub.Stop();
  server.Shutdown();
  return 0;
}
