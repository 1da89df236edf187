// kurt.notifications.v1.NotificationsService over gRPC: each RPC is one call of the generic
// handler (platform/grpc/handler.h) into NotificationsRpcs, where the behaviour is. Every RPC acts
// on behalf of the caller's account (x-kurt-account-id).
//
// Lives as long as the server that serves it; gRPC calls it from many threads.
#pragma once

#include "kurt/notifications/v1/notifications.grpc.pb.h"
#include "services/notifications/notifications_rpcs.h"

namespace kurt::notifications {

class NotificationsService final : public v1::NotificationsService::Service {
 public:
  // `rpcs` outlives the service.
  explicit NotificationsService(NotificationsRpcs* rpcs) : rpcs_(*rpcs) {}

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
  NotificationsRpcs& rpcs_;
};

}  // namespace kurt::notifications
