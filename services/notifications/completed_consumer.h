// The handler of the notifications consumer group on kurt.reports.completed.v1: stores a batch of
// events as notifications in one transaction (the consumer commits its offsets only after), and
// nudges this replica's webhook sender. A redelivered event is recognised by its event id and
// stored once. A message that is not a ReportCompleted is logged and counted, then skipped.
#pragma once

#include <vector>

#include "absl/status/status.h"
#include "platform/core/metrics.h"
#include "platform/kafka/kafka.h"
#include "services/notifications/notification_store.h"
#include "services/notifications/webhook_sender.h"

namespace kurt::notifications {

class CompletedConsumer {
 public:
  // Every pointer outlives the handler; `sender` may be null.
  CompletedConsumer(NotificationStore* store, WebhookSender* sender, metrics::Registry* registry);

  absl::Status HandleBatch(const std::vector<kafka::Message>& batch);

 private:
  NotificationStore* store_;
  WebhookSender* sender_;
  metrics::Counter* stored_;
  metrics::Counter* duplicates_;
  metrics::Counter* unreadable_;
};

}  // namespace kurt::notifications
