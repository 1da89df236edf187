// The transactional outbox: a message is written to a table in the same database transaction as
// the state change it announces (Enqueue), and relays publish the table's rows to Kafka
// (OutboxRelay), so that a change is announced if and only if it was committed.
//
// Several relays may serve one table. Each claims a batch of unpublished rows with
// FOR UPDATE SKIP LOCKED, produces them with the idempotent producer, waits for the broker's
// acknowledgement of each, and marks the acknowledged rows published in the same transaction:
// every row is published, and marked, once. Only a crash between an acknowledgement and the
// commit publishes a row again; consumers drop that duplicate by its event-id header.
//
// The table (any name; migrations/0005_reports.sql creates `outbox`):
//   id bigserial PRIMARY KEY, topic text, message_key text, payload bytea, event_id text UNIQUE,
//   headers jsonb (more headers as {"name": "value"}), create_time timestamptz,
//   published_time timestamptz (NULL until published), and an index on (id) WHERE
//   published_time IS NULL.
// Enqueue also NOTIFYs the channel named like the table, on which relays LISTEN (platform/pg/
// listener.h) for prompt wake-ups; they poll as well.
//
// An OutboxRelay lives as long as its pool and publisher; Start/Stop from one thread, Wake from
// any.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "platform/core/metrics.h"
#include "platform/kafka/kafka.h"
#include "platform/pg/listener.h"
#include "platform/pg/pg.h"

namespace kurt::outbox {

struct OutboxMessage {
  std::string topic;
  std::string key;
  std::string payload;
  // Unique per message; sent as the Kafka header event-id.
  std::string event_id;
  // Further headers (e.g. traceparent).
  kafka::Headers headers;
};

// The header every published message carries.
inline constexpr absl::string_view kEventIdHeader = "event-id";

// Whether `name` can name an outbox table: [a-z_][a-z0-9_]*, at most 63 characters.
bool IsValidTableName(absl::string_view name);

// Writes `message` into `table` inside the caller's transaction and NOTIFYs the table's channel
// (delivered at commit). Returns false, writing nothing, when a row with this event id exists.
// Throws like libpqxx: call it inside PgPool::Transact. `table` must be valid (it aborts if not:
// table names come from code, never from input).
bool Enqueue(pqxx::work& tx, absl::string_view table, const OutboxMessage& message);

// Where a relay sends messages. Publish must not block; `on_delivery` is called exactly once,
// from any thread, with OK once the broker acknowledged the message.
class Publisher {
 public:
  virtual ~Publisher() = default;
  virtual absl::Status Publish(const OutboxMessage& message,
                               kafka::DeliveryCallback on_delivery) = 0;
};

// Publishes through a KafkaProducer (idempotent, acks=all), adding the event-id header.
class KafkaPublisher : public Publisher {
 public:
  explicit KafkaPublisher(kafka::KafkaProducer* producer) : producer_(producer) {}
  absl::Status Publish(const OutboxMessage& message, kafka::DeliveryCallback on_delivery) override;

 private:
  kafka::KafkaProducer* producer_;
};

struct RelayOptions {
  std::string table = "outbox";
  // Rows claimed per round.
  int batch_size = 500;
  // How long an idle relay waits before looking again (LISTEN wakes it earlier).
  absl::Duration poll_interval = absl::Milliseconds(500);
  // How long a round waits for acknowledgements; rows not acknowledged by then stay unpublished
  // and are claimed again (their late delivery is the duplicate consumers drop).
  absl::Duration ack_timeout = absl::Minutes(5);
  // Published rows older than this are deleted.
  absl::Duration retention = absl::Hours(24);
  // The primary, directly, for LISTEN (pg::ListenUrlFromFlags()); empty: poll only.
  std::string listen_url;
};

class OutboxRelay {
 public:
  // `pool` (the primary) and `publisher` outlive the relay. Metrics: kurt_outbox_*{table}.
  OutboxRelay(RelayOptions options, pg::PgPool* pool, Publisher* publisher,
              metrics::Registry* registry);
  ~OutboxRelay();
  OutboxRelay(const OutboxRelay&) = delete;
  OutboxRelay& operator=(const OutboxRelay&) = delete;

  // Relays in a background thread until Stop.
  void Start();
  // Finishes the current round (its messages acknowledged and marked) and joins the thread.
  void Stop();
  // Makes an idle relay look at the table now (e.g. after this process enqueued something).
  void Wake();

  // One round: claims up to batch_size rows, publishes them, marks the acknowledged ones.
  // Returns how many were published. Exposed for tests and for callers without a thread.
  absl::StatusOr<int> RelayOnce();

  // Deletes published rows older than the retention; returns how many.
  absl::StatusOr<int64_t> DeletePublished();

 private:
  void Loop();
  // Waits up to `timeout` for a NOTIFY, a Wake or Stop.
  void WaitForWork(absl::Duration timeout);

  const RelayOptions options_;
  pg::PgPool* pool_;
  Publisher* publisher_;
  metrics::Counter* published_;
  metrics::Counter* failures_;
  metrics::Counter* errors_;
  metrics::Gauge* backlog_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool woken_ = false;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  // Wakes the relay on each NOTIFY, and after each (re)connection.
  std::unique_ptr<pg::Listener> listener_;
};

}  // namespace kurt::outbox
