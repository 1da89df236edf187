#include "services/notifications/notifications_service.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "platform/grpc/server.h"
#include "platform/core/log.h"
#include "platform/grpc/handler.h"
#include "platform/grpc/pagination.h"
#include "platform/grpc/timestamps.h"
#include "services/notifications/webhook_target.h"

namespace kurt::notifications {
namespace {

using platform::CallerAccount;
using platform::Metadata;
using platform::RequestIdOf;
using platform::SetTimestamp;
using platform::ToGrpcStatus;

constexpr int kStreamBatch = 100;

// Notification ids are positive decimal numbers.
std::optional<int64_t> ParseId(absl::string_view text) {
  int64_t id = 0;
  if (!absl::SimpleAtoi(text, &id) || id <= 0) return std::nullopt;
  return id;
}

}  // namespace

NotificationsService::NotificationsService(NotificationsServiceOptions options,
                                           NotificationStore* store, NotificationHub* hub,
                                           metrics::Registry* registry)
    : options_(std::move(options)),
      store_(store),
      hub_(hub),
      streamed_(&registry
                     ->AddCounter("kurt_notifications_streamed_total",
                                  "Notifications written to live streams")
                     .Get()) {}

grpc::Status NotificationsService::ListNotifications(grpc::ServerContext* context,
                                                     const v1::ListNotificationsRequest* request,
                                                     v1::ListNotificationsResponse* response) {
  log::RequestScope scope(RequestIdOf(*context));
  auto account = CallerAccount(*context);
  if (!account.ok()) return ToGrpcStatus(account.status());
  absl::StatusOr<int> page_size = platform::PageSize(request->page_size());
  if (!page_size.ok()) return ToGrpcStatus(page_size.status());
  const int size = *page_size;
  int64_t before = 0;
  if (!request->page_token().empty()) {
    auto id = ParseId(request->page_token());
    if (!id) {
      return ToGrpcStatus(
          absl::InvalidArgumentError("page_token: not a token from a previous page"));
    }
    before = *id;
  }
  auto list = store_->List(*account, size + 1, before, request->unacked_only());
  if (!list.ok()) return ToGrpcStatus(list.status());
  bool more = static_cast<int>(list->size()) > size;
  if (more) list->pop_back();
  for (const NotificationRecord& n : *list) ToProto(n, response->add_notifications());
  if (more) response->set_next_page_token(absl::StrCat(list->back().id));
  return grpc::Status::OK;
}

grpc::Status NotificationsService::AckNotification(grpc::ServerContext* context,
                                                   const v1::AckNotificationRequest* request,
                                                   v1::Notification* response) {
  log::RequestScope scope(RequestIdOf(*context));
  auto account = CallerAccount(*context);
  if (!account.ok()) return ToGrpcStatus(account.status());
  if (request->id().empty()) return ToGrpcStatus(absl::InvalidArgumentError("id: required"));
  auto id = ParseId(request->id());
  if (!id) {
    return ToGrpcStatus(
        absl::NotFoundError(absl::StrCat("no notification with id '", request->id(), "'")));
  }
  auto n = store_->Ack(*account, *id);
  if (!n.ok()) return ToGrpcStatus(n.status());
  ToProto(*n, response);
  return grpc::Status::OK;
}

grpc::Status NotificationsService::StreamNotifications(
    grpc::ServerContext* context, const v1::StreamNotificationsRequest* request,
    grpc::ServerWriter<v1::Notification>* writer) {
  log::RequestScope scope(RequestIdOf(*context));
  auto account = CallerAccount(*context);
  if (!account.ok()) return ToGrpcStatus(account.status());
  std::string resume = Metadata(*context, "last-event-id");
  if (resume.empty()) resume = request->after_id();
  // Subscribe before the first look at the table, so that no wake-up falls in between.
  auto subscription = hub_->Subscribe(*account);
  int64_t after = 0;
  if (!resume.empty()) {
    int64_t parsed = 0;
    if (!absl::SimpleAtoi(resume, &parsed) || parsed < 0) {
      return ToGrpcStatus(absl::InvalidArgumentError(
          absl::StrCat("last-event-id: '", resume, "' is not a notification id")));
    }
    after = parsed;
  } else {
    auto last = store_->LastId(*account);
    if (!last.ok()) return ToGrpcStatus(last.status());
    after = *last;
  }
  // Send the stream's headers at once: the client (and the edge's SSE) knows it is connected.
  writer->SendInitialMetadata();
  KURT_LOG(kDebug, "notification stream opened", {"account", *account}, {"after", after});
  for (;;) {
    if (context->IsCancelled()) return grpc::Status::CANCELLED;
    auto batch = store_->After(*account, after, kStreamBatch);
    if (!batch.ok()) {
      // A database hiccup should not end a long-lived stream; try again shortly.
      KURT_LOG(kWarn, "notification stream read failed", {"error", batch.status().ToString()});
    } else {
      for (const NotificationRecord& n : *batch) {
        v1::Notification out;
        ToProto(n, &out);
        if (!writer->Write(out)) return grpc::Status::CANCELLED;
        streamed_->Increment();
        after = n.id;
      }
      if (static_cast<int>(batch->size()) == kStreamBatch) continue;
    }
    // Wake-ups come from the hub; the short slices notice a client that went away.
    const absl::Time until = absl::Now() + options_.stream_poll;
    for (;;) {
      if (context->IsCancelled()) return grpc::Status::CANCELLED;
      absl::Duration left = until - absl::Now();
      if (left <= absl::ZeroDuration()) break;
      auto result = subscription->Wait(std::min(absl::Seconds(1), left));
      if (result == NotificationHub::Subscription::kStopping) {
        return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is shutting down");
      }
      if (result == NotificationHub::Subscription::kWoken) break;
    }
  }
}

grpc::Status NotificationsService::SetWebhook(grpc::ServerContext* context,
                                              const v1::SetWebhookRequest* request,
                                              v1::Webhook* response) {
  log::RequestScope scope(RequestIdOf(*context));
  auto account = CallerAccount(*context);
  if (!account.ok()) return ToGrpcStatus(account.status());
  if (!request->url().empty()) {
    auto url = ParseWebhookUrl(request->url());
    if (!url.ok()) return ToGrpcStatus(url.status());
    auto endpoints = ResolveWebhook(*url, options_.allow_internal_webhooks);
    if (!endpoints.ok()) return ToGrpcStatus(endpoints.status());
  }
  auto hook = store_->SetWebhook(*account, request->url());
  if (!hook.ok()) return ToGrpcStatus(hook.status());
  KURT_LOG(kInfo, request->url().empty() ? "webhook removed" : "webhook set",
           {"account", *account});
  response->set_url(hook->url);
  SetTimestamp(hook->update_time, response->mutable_update_time());
  return grpc::Status::OK;
}

grpc::Status NotificationsService::GetWebhook(grpc::ServerContext* context,
                                              const v1::GetWebhookRequest*,
                                              v1::Webhook* response) {
  log::RequestScope scope(RequestIdOf(*context));
  auto account = CallerAccount(*context);
  if (!account.ok()) return ToGrpcStatus(account.status());
  auto hook = store_->GetWebhook(*account);
  if (!hook.ok()) return ToGrpcStatus(hook.status());
  if (*hook) {
    response->set_url((*hook)->url);
    SetTimestamp((*hook)->update_time, response->mutable_update_time());
  }
  return grpc::Status::OK;
}

}  // namespace kurt::notifications
