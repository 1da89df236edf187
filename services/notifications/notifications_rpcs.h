// The RPCs of kurt.notifications.v1.NotificationsService as plain functions of (caller, request):
// list and acknowledge the caller's notifications, stream them live (woken by the hub, resuming
// after last-event-id), and set the caller's webhook (http/https, never an internal address unless
// allowed). Each validates, calls the store and answers with a Status that says what is wrong;
// NotificationsService (notifications_service.h) serves them over gRPC.
//
// Lives as long as the service; every method may run on many threads at once.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/support/sync_stream.h"
#include "kurt/notifications/v1/notifications.pb.h"
#include "platform/core/metrics.h"
#include "platform/grpc/handler.h"
#include "services/notifications/notification_hub.h"
#include "services/notifications/notification_store.h"

namespace kurt::notifications {

struct NotificationsRpcsOptions {
  // Let webhooks point at private, loopback and link-local addresses (tests only).
  bool allow_internal_webhooks = false;
  // Streams look at the table at least this often, whatever the wake-ups.
  absl::Duration stream_poll = absl::Seconds(5);
  // Live streams one account may hold open on this replica at once (0: no limit); one more is
  // refused with RESOURCE_EXHAUSTED (429 at the edge).
  int max_streams_per_account = 10;
};

class NotificationsRpcs {
 public:
  // Every pointer outlives the RPCs. Metrics: kurt_notifications_streamed_total,
  // kurt_notifications_streams_refused_total.
  NotificationsRpcs(NotificationsRpcsOptions options, NotificationStore* store,
                    NotificationHub* hub, metrics::Registry* registry);

  // Newest first, a page at a time (opaque page tokens).
  absl::StatusOr<v1::ListNotificationsResponse> ListNotifications(
      const platform::Caller& caller, const v1::ListNotificationsRequest& request);
  // NOT_FOUND unless the caller owns the notification.
  absl::StatusOr<v1::Notification> AckNotification(const platform::Caller& caller,
                                                   const v1::AckNotificationRequest& request);
  // Writes the caller's notifications after last-event-id (metadata) or after_id, else only new
  // ones, until the client goes away (CANCELLED) or the hub stops (UNAVAILABLE).
  // RESOURCE_EXHAUSTED when the account already has max_streams_per_account streams here.
  absl::Status StreamNotifications(const platform::Caller& caller,
                                   const v1::StreamNotificationsRequest& request,
                                   grpc::ServerWriterInterface<v1::Notification>* writer);
  // An empty url removes the webhook. A new signing secret each time, in the response only.
  absl::StatusOr<v1::Webhook> SetWebhook(const platform::Caller& caller,
                                         const v1::SetWebhookRequest& request);
  // url is empty when the caller has no webhook.
  absl::StatusOr<v1::Webhook> GetWebhook(const platform::Caller& caller,
                                         const v1::GetWebhookRequest& request);

 private:
  const NotificationsRpcsOptions options_;
  NotificationStore* store_;
  NotificationHub* hub_;
  metrics::Counter* streamed_;
  metrics::Counter* streams_refused_;
};

}  // namespace kurt::notifications
