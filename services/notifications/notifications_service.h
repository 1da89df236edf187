// kurt.notifications.v1.NotificationsService: lists and acknowledges the caller's
// notifications, streams them live (from the hub's wake-ups, resuming after last-event-id), and
// sets the caller's webhook (validated: http/https, never an internal address unless allowed).
// The caller's account arrives as metadata x-kurt-account-id.
#pragma once

#include "kurt/notifications/v1/notifications.grpc.pb.h"
#include "platform/core/metrics.h"
#include "services/notifications/notification_hub.h"
#include "services/notifications/notification_store.h"

namespace kurt::notifications {

struct NotificationsServiceOptions {
  // Let webhooks point at private, loopback and link-local addresses (tests only).
  bool allow_internal_webhooks = false;
  // Streams look at the table at least this often, whatever the wake-ups.
  absl::Duration stream_poll = absl::Seconds(5);
};

class NotificationsService final : public v1::NotificationsService::Service {
 public:
  // Every pointer outlives the service.
  NotificationsService(NotificationsServiceOptions options, NotificationStore* store,
                       NotificationHub* hub, metrics::Registry* registry);

  grpc::Status ListNotifications(grpc::ServerContext* context,
                                 const v1::ListNotificationsRequest* request,
                                 v1::ListNotificationsResponse* response) override;
  grpc::Status AckNotification(grpc::ServerContext* context,
                               const v1::AckNotificationRequest* request,
                               v1::Notification* response) override;
  grpc::Status StreamNotifications(grpc::ServerContext* context,
                                   const v1::StreamNotificationsRequest* request,
                                   grpc::ServerWriter<v1::Notification>* writer) override;
  grpc::Status SetWebhook(grpc::ServerContext* context, const v1::SetWebhookRequest* request,
                          v1::Webhook* response) override;
  grpc::Status GetWebhook(grpc::ServerContext* context, const v1::GetWebhookRequest* request,
                          v1::Webhook* response) override;

 private:
  const NotificationsServiceOptions options_;
  NotificationStore* store_;
  NotificationHub* hub_;
  metrics::Counter* streamed_;
};

}  // namespace kurt::notifications
