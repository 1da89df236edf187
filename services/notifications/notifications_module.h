// The one place the notifications service is wired: its store, the hub that wakes live streams,
// the webhook sender, the consumer of completed reports, the RPCs and their gRPC service. main.cc
// and every test harness build it with NotificationsModule::Create.
//
// Lives as long as the server that serves service(); Start, StopStreams and Stop from one thread
// (main's, or a harness's); the background loops run on threads of their own.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/impl/service_type.h"
#include "platform/core/metrics.h"
#include "platform/kafka/first_assignment.h"
#include "platform/kafka/kafka.h"
#include "platform/pg/pg.h"
#include "services/common/mesh.h"
#include "services/notifications/completed_consumer.h"
#include "services/notifications/http_client.h"
#include "services/notifications/notification_hub.h"
#include "services/notifications/notification_store.h"
#include "services/notifications/notifications_rpcs.h"
#include "services/notifications/notifications_service.h"
#include "services/notifications/webhook_sender.h"

namespace kurt::notifications {

// Everything main's flags decide.
struct NotificationsConfig {
  std::string kafka_brokers;
  // Consumed: the report workers' ReportCompleted events.
  std::string completed_topic = mesh::kReportsCompletedTopic;
  std::string consumer_group = std::string{mesh::kNotifications.binary};
  // The primary, directly, for the hub's LISTEN (pg::ListenUrlFromFlags()); empty: live streams
  // only poll.
  std::string listen_url;
  // SetWebhook's rule on internal addresses, and how often streams poll.
  NotificationsRpcsOptions rpcs;
  // Deliveries (with their own rule on internal addresses, checked again at each POST).
  WebhookSenderOptions webhook_sender;
};

// What the module uses and does not own; every pointer outlives the module.
struct NotificationsDeps {
  // The notifications tables.
  pg::PgPool* primary = nullptr;
  metrics::Registry* registry = nullptr;
  // Where webhooks are POSTed; null: a BeastHttpPoster of the module's own.
  HttpPoster* poster = nullptr;
};

class NotificationsModule {
 public:
  // Fails when the Kafka consumer cannot be created.
  static absl::StatusOr<std::unique_ptr<NotificationsModule>> Create(
      const NotificationsConfig& config, NotificationsDeps deps);
  ~NotificationsModule();
  NotificationsModule(const NotificationsModule&) = delete;
  NotificationsModule& operator=(const NotificationsModule&) = delete;

  // To be added to a GrpcServer.
  grpc::Service* service() { return &service_; }
  NotificationStore& store() { return *store_; }

  // Starts the hub's LISTEN, the webhook sender and the consumer. Call once the server serves.
  void Start();
  // Whether the consumer got its first partitions within `timeout` (a harness waits for it
  // before producing).
  bool WaitForAssignment(absl::Duration timeout) const { return assignment_.Wait(timeout); }
  // Ends the live streams, which never end by themselves: call before the server drains.
  void StopStreams() { hub_.Stop(); }
  // Stops the consumer (it commits and leaves its group), the sender and the hub. Idempotent;
  // the destructor calls it.
  void Stop();

 private:
  NotificationsModule(const NotificationsConfig& config, NotificationsDeps deps);

  std::unique_ptr<HttpPoster> own_poster_;
  std::unique_ptr<NotificationStore> store_;
  NotificationHub hub_;
  WebhookSender sender_;
  CompletedConsumer handler_;
  NotificationsRpcs rpcs_;
  NotificationsService service_;
  kafka::FirstAssignment assignment_;
  std::unique_ptr<kafka::KafkaConsumer> consumer_;
  std::thread consuming_;
  bool started_ = false;
};

}  // namespace kurt::notifications
