#include "services/notifications/completed_consumer.h"

#include "platform/core/log.h"
#include "platform/outbox/outbox.h"

namespace kurt::notifications {

CompletedConsumer::CompletedConsumer(NotificationStore* store, WebhookSender* sender,
                                     metrics::Registry* registry)
    : store_(store),
      sender_(sender),
      stored_(&registry
                   ->AddCounter("kurt_notifications_stored_total",
                                "Notifications stored from completed-report events")
                   .Get()),
      duplicates_(&registry
                       ->AddCounter("kurt_notifications_duplicate_events_total",
                                    "Events seen again (redeliveries, re-publishes) and skipped")
                       .Get()),
      unreadable_(&registry
                       ->AddCounter("kurt_notifications_unreadable_events_total",
                                    "Messages that are not ReportCompleted events (skipped)")
                       .Get()) {}

absl::Status CompletedConsumer::HandleBatch(const std::vector<kafka::Message>& batch) {
  std::vector<events::v1::ReportCompleted> events;
  events.reserve(batch.size());
  for (const kafka::Message& m : batch) {
    events::v1::ReportCompleted e;
    if (!e.ParseFromString(m.value) || e.event_id().empty() || e.account_id().empty()) {
      unreadable_->Increment();
      KURT_LOG(kError, "unreadable completed-report event skipped", {"topic", m.topic},
               {"partition", m.partition}, {"offset", m.offset});
      continue;
    }
    // The header is the outbox's id for the message; the payload's id is the same by design.
    if (auto header = m.Header(outbox::kEventIdHeader); header && *header != e.event_id()) {
      KURT_LOG(kWarn, "event-id header differs from the event's id; using the event's",
               {"header", *header}, {"event", e.event_id()});
    }
    events.push_back(std::move(e));
  }
  if (events.empty()) {
    return absl::OkStatus();
  }
  absl::StatusOr<int> stored = store_->StoreCompleted(events);
  if (!stored.ok()) {
    return stored.status();
  }
  stored_->Increment(*stored);
  duplicates_->Increment(static_cast<double>(events.size() - *stored));
  if (*stored > 0 && sender_ != nullptr) {
    sender_->Wake();
  }
  return absl::OkStatus();
}

}  // namespace kurt::notifications
