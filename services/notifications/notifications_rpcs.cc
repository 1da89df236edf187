#include "services/notifications/notifications_rpcs.h"

#include <algorithm>
#include <optional>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "platform/core/log.h"
#include "platform/grpc/pagination.h"
#include "platform/grpc/timestamps.h"
#include "services/notifications/webhook_signature.h"
#include "services/notifications/webhook_target.h"

namespace kurt::notifications {
namespace {

using platform::Caller;

constexpr int kStreamBatch = 100;

// Notification ids are positive decimal numbers.
std::optional<int64_t> ParseId(absl::string_view text) {
  int64_t id = 0;
  if (!absl::SimpleAtoi(text, &id) || id <= 0) {
    return std::nullopt;
  }
  return id;
}

bool IsId(absl::string_view text) { return ParseId(text).has_value(); }

bool Cancelled(const Caller& caller) {
  return caller.context() != nullptr && caller.context()->IsCancelled();
}

v1::Webhook ToProto(const WebhookRecord& hook) {
  v1::Webhook out;
  out.set_url(hook.url);
  platform::SetTimestamp(hook.update_time, out.mutable_update_time());
  return out;
}

}  // namespace

NotificationsRpcs::NotificationsRpcs(NotificationsRpcsOptions options, NotificationStore* store,
                                     NotificationHub* hub, metrics::Registry* registry)
    : options_(options),
      store_(store),
      hub_(hub),
      streamed_(&registry
                     ->AddCounter("kurt_notifications_streamed_total",
                                  "Notifications written to live streams")
                     .Get()),
      streams_refused_(&registry
                            ->AddCounter("kurt_notifications_streams_refused_total",
                                         "Live streams refused: the account had its maximum open")
                            .Get()) {}

absl::StatusOr<v1::ListNotificationsResponse> NotificationsRpcs::ListNotifications(
    const Caller& caller, const v1::ListNotificationsRequest& request) {
  absl::StatusOr<platform::PageRequest> page =
      platform::ReadPageRequest(request.page_size(), request.page_token(), IsId);
  if (!page.ok()) {
    return page.status();
  }
  // Ids increase with time, so the id alone says where the page ended.
  const int64_t before = page->after ? *ParseId(page->after->key) : 0;
  absl::StatusOr<std::vector<NotificationRecord>> rows =
      store_->List(caller.account_id(), page->size + 1, before, request.unacked_only());
  if (!rows.ok()) {
    return rows.status();
  }
  v1::ListNotificationsResponse response;
  response.set_next_page_token(
      platform::FinishPage(&*rows, page->size, [](const NotificationRecord& n) {
        return platform::PageKey{n.create_time, absl::StrCat(n.id)};
      }));
  for (const NotificationRecord& n : *rows) {
    ToProto(n, response.add_notifications());
  }
  return response;
}

absl::StatusOr<v1::Notification> NotificationsRpcs::AckNotification(
    const Caller& caller, const v1::AckNotificationRequest& request) {
  if (request.id().empty()) {
    return absl::InvalidArgumentError("id: required");
  }
  std::optional<int64_t> id = ParseId(request.id());
  if (!id) {
    return absl::NotFoundError(absl::StrCat("no notification with id '", request.id(), "'"));
  }
  absl::StatusOr<NotificationRecord> acked = store_->Ack(caller.account_id(), *id);
  if (!acked.ok()) {
    return acked.status();
  }
  v1::Notification response;
  ToProto(*acked, &response);
  return response;
}

absl::Status NotificationsRpcs::StreamNotifications(
    const Caller& caller, const v1::StreamNotificationsRequest& request,
    grpc::ServerWriterInterface<v1::Notification>* writer) {
  const std::string& account = caller.account_id();
  std::string resume = caller.Metadata("last-event-id");
  if (resume.empty()) {
    resume = request.after_id();
  }
  // Subscribe before the first look at the table, so that no wake-up falls in between.
  std::unique_ptr<NotificationHub::Subscription> subscription =
      hub_->Subscribe(account, options_.max_streams_per_account);
  if (subscription == nullptr) {
    streams_refused_->Increment();
    return absl::ResourceExhaustedError(
        absl::StrCat("this account already has ", options_.max_streams_per_account,
                     " live notification streams open; close one before opening another"));
  }
  int64_t after = 0;
  if (!resume.empty()) {
    if (!absl::SimpleAtoi(resume, &after) || after < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("last-event-id: '", resume, "' is not a notification id"));
    }
  } else {
    absl::StatusOr<int64_t> last = store_->LastId(account);
    if (!last.ok()) {
      return last.status();
    }
    after = *last;
  }
  // Send the stream's headers at once: the client (and the edge's SSE) knows it is connected.
  writer->SendInitialMetadata();
  KURT_LOG(kDebug, "notification stream opened", {"account", account}, {"after", after});
  for (;;) {
    if (Cancelled(caller)) {
      return absl::CancelledError("the client went away");
    }
    absl::StatusOr<std::vector<NotificationRecord>> batch =
        store_->After(account, after, kStreamBatch);
    if (!batch.ok()) {
      // A database hiccup should not end a long-lived stream; try again shortly.
      KURT_LOG(kWarn, "notification stream read failed", {"error", batch.status().ToString()});
    } else {
      for (const NotificationRecord& n : *batch) {
        v1::Notification out;
        ToProto(n, &out);
        if (!writer->Write(out)) {
          return absl::CancelledError("the client went away");
        }
        streamed_->Increment();
        after = n.id;
      }
      if (static_cast<int>(batch->size()) == kStreamBatch) {
        continue;
      }
    }
    // Wake-ups come from the hub; the short slices notice a client that went away.
    const absl::Time until = absl::Now() + options_.stream_poll;
    for (;;) {
      if (Cancelled(caller)) {
        return absl::CancelledError("the client went away");
      }
      const absl::Duration left = until - absl::Now();
      if (left <= absl::ZeroDuration()) {
        break;
      }
      NotificationHub::Subscription::WaitResult result =
          subscription->Wait(std::min(absl::Seconds(1), left));
      if (result == NotificationHub::Subscription::kStopping) {
        return absl::UnavailableError("the server is shutting down");
      }
      if (result == NotificationHub::Subscription::kWoken) {
        break;
      }
    }
  }
}

absl::StatusOr<v1::Webhook> NotificationsRpcs::SetWebhook(const Caller& caller,
                                                          const v1::SetWebhookRequest& request) {
  if (!request.url().empty()) {
    absl::StatusOr<WebhookUrl> url = ParseWebhookUrl(request.url());
    if (!url.ok()) {
      return url.status();
    }
    auto endpoints = ResolveWebhook(*url, options_.allow_internal_webhooks);
    if (!endpoints.ok()) {
      return endpoints.status();
    }
  }
  const std::string secret = request.url().empty() ? "" : NewWebhookSecret();
  absl::StatusOr<WebhookRecord> hook =
      store_->SetWebhook(caller.account_id(), request.url(), secret);
  if (!hook.ok()) {
    return hook.status();
  }
  KURT_LOG(kInfo, request.url().empty() ? "webhook removed" : "webhook set",
           {"account", caller.account_id()});
  // The secret is shown here, once: the store keeps it for signing and never reads it back.
  v1::Webhook out = ToProto(*hook);
  out.set_secret(secret);
  return out;
}

absl::StatusOr<v1::Webhook> NotificationsRpcs::GetWebhook(const Caller& caller,
                                                          const v1::GetWebhookRequest&) {
  absl::StatusOr<std::optional<WebhookRecord>> hook = store_->GetWebhook(caller.account_id());
  if (!hook.ok()) {
    return hook.status();
  }
  return *hook ? ToProto(**hook) : v1::Webhook();
}

}  // namespace kurt::notifications
