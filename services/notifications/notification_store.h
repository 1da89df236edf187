// Where notifications, webhooks and webhook deliveries live: the interface the RPCs, the event
// consumer and the webhook sender use, and its PostgreSQL implementation (all of the
// notifications SQL is in notification_store.cc; everything runs on the primary). A
// PgNotificationStore lives as long as its pool; every method may run on many threads at once.
//
// Storing a batch of events is one transaction: a notification per event (an event seen before
// is skipped by its event id), a webhook delivery for each when the account has a webhook, and a
// NOTIFY on channel `notifications` (payload: the account id) that wakes the live streams of
// every replica once the rows are committed.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "kurt/events/v1/report_events.pb.h"
#include "kurt/notifications/v1/notifications.pb.h"
#include "platform/pg/pg.h"

namespace kurt::notifications {

// The LISTEN/NOTIFY channel of new notifications.
inline constexpr char kNotifyChannel[] = "notifications";

struct NotificationRecord {
  int64_t id = 0;
  std::string account_id;
  std::string event_id;
  std::string type;
  std::string message;
  std::string report_id;
  std::string report_kind;
  std::string report_state;
  int64_t row_count = 0;
  int64_t size_bytes = 0;
  std::string error;
  absl::Time create_time;
  std::optional<absl::Time> ack_time;
};

// The API view of a stored notification.
void ToProto(const NotificationRecord& record, v1::Notification* out);
// The one-line message of a completed report.
std::string MessageFor(const events::v1::ReportCompleted& event);

struct Delivery {
  int64_t id = 0;
  std::string account_id;
  std::string url;
  // Including the one just claimed. Also the claim's fencing token: recording an outcome
  // succeeds only while the row's attempts still equal it (no other sender claimed it since).
  int attempts = 0;
  // The account's current webhook secret ("" when the webhook was removed since).
  std::string secret;
  NotificationRecord notification;
};

struct WebhookRecord {
  std::string url;
  absl::Time update_time;
};

class NotificationStore {
 public:
  virtual ~NotificationStore() = default;
  // Stores a notification per event not stored before; returns how many were new.
  virtual absl::StatusOr<int> StoreCompleted(
      const std::vector<events::v1::ReportCompleted>& events) = 0;
  // Newest first, ids below `before` (0: from the newest).
  virtual absl::StatusOr<std::vector<NotificationRecord>> List(const std::string& account_id,
                                                               int limit, int64_t before,
                                                               bool unacked_only) = 0;
  // Oldest first, ids above `after`.
  virtual absl::StatusOr<std::vector<NotificationRecord>> After(const std::string& account_id,
                                                                int64_t after, int limit) = 0;
  // The account's newest id (0 when none).
  virtual absl::StatusOr<int64_t> LastId(const std::string& account_id) = 0;
  // NOT_FOUND unless the account owns it; acknowledging twice keeps the first time.
  virtual absl::StatusOr<NotificationRecord> Ack(const std::string& account_id, int64_t id) = 0;

  // An empty url removes the webhook (and `secret` is ignored).
  virtual absl::StatusOr<WebhookRecord> SetWebhook(const std::string& account_id,
                                                   const std::string& url,
                                                   const std::string& secret) = 0;
  virtual absl::StatusOr<std::optional<WebhookRecord>> GetWebhook(
      const std::string& account_id) = 0;

  // Claims up to `limit` due deliveries, the oldest due of each account not in `busy` (at most
  // one per account): counts the attempt and pushes the next attempt `lease` ahead, so that a
  // sender that dies mid-POST leaves the delivery to be retried after it.
  virtual absl::StatusOr<std::vector<Delivery>> ClaimDeliveries(
      int limit, absl::Duration lease, const std::vector<std::string>& busy) = 0;
  // Both record the outcome of the claim `attempt` (Delivery::attempts) only if no other sender
  // claimed the delivery since (its lease lapsed): ABORTED otherwise, and nothing changes.
  virtual absl::Status MarkDelivered(int64_t delivery_id, int attempt, int http_status) = 0;
  // Schedules another attempt after `retry_in`, or (nullopt) marks the delivery FAILED.
  virtual absl::Status MarkAttemptFailed(int64_t delivery_id, int attempt, int http_status,
                                         const std::string& error,
                                         std::optional<absl::Duration> retry_in) = 0;
};

class PgNotificationStore : public NotificationStore {
 public:
  // `primary` outlives the store.
  explicit PgNotificationStore(pg::PgPool* primary);

  absl::StatusOr<int> StoreCompleted(
      const std::vector<events::v1::ReportCompleted>& events) override;
  absl::StatusOr<std::vector<NotificationRecord>> List(const std::string& account_id, int limit,
                                                       int64_t before, bool unacked_only) override;
  absl::StatusOr<std::vector<NotificationRecord>> After(const std::string& account_id,
                                                        int64_t after, int limit) override;
  absl::StatusOr<int64_t> LastId(const std::string& account_id) override;
  absl::StatusOr<NotificationRecord> Ack(const std::string& account_id, int64_t id) override;
  absl::StatusOr<WebhookRecord> SetWebhook(const std::string& account_id, const std::string& url,
                                           const std::string& secret) override;
  absl::StatusOr<std::optional<WebhookRecord>> GetWebhook(const std::string& account_id) override;
  absl::StatusOr<std::vector<Delivery>> ClaimDeliveries(
      int limit, absl::Duration lease, const std::vector<std::string>& busy) override;
  absl::Status MarkDelivered(int64_t delivery_id, int attempt, int http_status) override;
  absl::Status MarkAttemptFailed(int64_t delivery_id, int attempt, int http_status,
                                 const std::string& error,
                                 std::optional<absl::Duration> retry_in) override;

 private:
  pg::PgPool* primary_;
};

}  // namespace kurt::notifications
