#include "services/notifications/notifications_service.h"

#include "platform/grpc/handler.h"

namespace kurt::notifications {

using platform::Handle;
using platform::HandleStream;

grpc::Status NotificationsService::ListNotifications(grpc::ServerContext* context,
                                                     const v1::ListNotificationsRequest* request,
                                                     v1::ListNotificationsResponse* response) {
  return Handle(context, *request, response, rpcs_, &NotificationsRpcs::ListNotifications);
}

grpc::Status NotificationsService::AckNotification(grpc::ServerContext* context,
                                                   const v1::AckNotificationRequest* request,
                                                   v1::Notification* response) {
  return Handle(context, *request, response, rpcs_, &NotificationsRpcs::AckNotification);
}

grpc::Status NotificationsService::StreamNotifications(
    grpc::ServerContext* context, const v1::StreamNotificationsRequest* request,
    grpc::ServerWriter<v1::Notification>* writer) {
  return HandleStream(context, *request, writer, rpcs_, &NotificationsRpcs::StreamNotifications);
}

grpc::Status NotificationsService::SetWebhook(grpc::ServerContext* context,
                                              const v1::SetWebhookRequest* request,
                                              v1::Webhook* response) {
  return Handle(context, *request, response, rpcs_, &NotificationsRpcs::SetWebhook);
}

grpc::Status NotificationsService::GetWebhook(grpc::ServerContext* context,
                                              const v1::GetWebhookRequest* request,
                                              v1::Webhook* response) {
  return Handle(context, *request, response, rpcs_, &NotificationsRpcs::GetWebhook);
}

}  // namespace kurt::notifications
