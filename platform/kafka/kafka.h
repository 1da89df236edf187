// Kafka through librdkafka: an idempotent producer (acks=all) that never blocks its caller, and a
// consumer-group loop that commits offsets only after its handler has made the work durable.
//
// KafkaProducer: lives as long as its users; Produce is thread-safe; a thread of its own serves
// delivery reports. KafkaConsumer: Run is called from one thread and returns after Stop.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

ABSL_DECLARE_FLAG(std::string, kafka_brokers);
ABSL_DECLARE_FLAG(std::string, kafka_security_protocol);
ABSL_DECLARE_FLAG(std::string, kafka_sasl_mechanism);
ABSL_DECLARE_FLAG(std::string, kafka_sasl_username);
ABSL_DECLARE_FLAG(std::string, kafka_sasl_password);
ABSL_DECLARE_FLAG(std::string, kafka_ssl_ca_location);

namespace RdKafka {
class Producer;
class KafkaConsumer;
class Conf;
}  // namespace RdKafka

namespace kurt::kafka {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct Message {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  std::string key;
  std::string value;
  Headers headers;
  int64_t timestamp_ms = 0;

  // The first header with this name, if any.
  std::optional<absl::string_view> Header(absl::string_view name) const;
};

// How a client proves itself to the brokers and protects the connection: librdkafka's
// security.protocol (plaintext, ssl, sasl_plaintext, sasl_ssl) and, with SASL, the mechanism
// (SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN) and the credentials. Every client of a process uses
// the same: the defaults of ProducerOptions and ConsumerOptions come from the --kafka_* flags.
struct ClientSecurity {
  std::string protocol = "plaintext";
  std::string sasl_mechanism = "SCRAM-SHA-512";
  std::string sasl_username;
  std::string sasl_password;  // never logged
  // PEM file of the CAs that sign the brokers' certificates; empty: the system's store.
  std::string ssl_ca_location;

  static ClientSecurity FromFlags();
  // Adds the librdkafka settings; INVALID_ARGUMENT naming the flag when they do not fit
  // together (an unknown protocol or mechanism, SASL without a username or password).
  absl::Status AddTo(std::map<std::string, std::string>* config) const;
};

struct ProducerOptions {
  std::string brokers;
  ClientSecurity security = ClientSecurity::FromFlags();
  std::string client_id = "kurt";
  absl::Duration linger = absl::Milliseconds(5);
  // librdkafka properties layered on top (e.g. "compression.type").
  std::map<std::string, std::string> extra;
};

// Called on the producer's delivery thread once the broker acknowledged (OK) or gave up.
using DeliveryCallback = std::function<void(const absl::Status&)>;

class KafkaProducer {
 public:
  static absl::StatusOr<std::unique_ptr<KafkaProducer>> Create(const ProducerOptions& options);
  ~KafkaProducer();

  // Queues a message without blocking; RESOURCE_EXHAUSTED when the local queue is full.
  absl::Status Produce(absl::string_view topic, absl::string_view key, absl::string_view value,
                       const Headers& headers = {}, DeliveryCallback on_delivery = nullptr);
  // Waits until every queued message is acknowledged or `timeout` passes.
  absl::Status Flush(absl::Duration timeout);
  // Messages queued and not yet acknowledged.
  int OutQueueLength() const;

 private:
  KafkaProducer() = default;
  void PollLoop();

  std::unique_ptr<RdKafka::Producer> producer_;
  std::unique_ptr<class DeliveryReporter> reporter_;
  std::atomic<bool> stop_{false};
  std::thread poller_;
};

// The librdkafka configuration the producer uses (exposed for tests): idempotent, acks=all.
std::map<std::string, std::string> ProducerConfig(const ProducerOptions& options);

struct TopicPartition {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = -1;  // next offset to read; -1: the committed one (or auto.offset.reset)
  bool operator<(const TopicPartition& o) const {
    return std::tie(topic, partition) < std::tie(o.topic, o.partition);
  }
};

struct ConsumerOptions {
  std::string brokers;
  ClientSecurity security = ClientSecurity::FromFlags();
  std::string group_id;
  std::vector<std::string> topics;
  std::string client_id = "kurt";
  // Up to this many messages (or whatever arrives within batch_wait) go to one handler call.
  int max_batch = 500;
  absl::Duration batch_wait = absl::Milliseconds(50);
  // After a failed handler, the batch is retried after this delay (doubling up to 10 s).
  absl::Duration retry_backoff = absl::Milliseconds(200);
  // Commit offsets to Kafka after each successful batch. Off when the handler stores offsets
  // itself (in the same database transaction as its work).
  bool commit_to_kafka = true;
  // Fetch the next batch while the handler works on this one (on a thread of its own), so that
  // a handler bound by a database does not leave it idle while messages are fetched. Batches
  // are still handled one at a time and in order; before partitions are revoked, the batch in
  // the handler finishes (and is committed). A failed batch discards the one fetched behind it,
  // and both come again.
  bool pipelined = false;
  // "cooperative-sticky" for incremental rebalancing; empty: librdkafka's default.
  std::string assignment_strategy;
  std::string auto_offset_reset = "earliest";
  std::map<std::string, std::string> extra;
};

// Gets to decide where each newly assigned partition starts (e.g. from offsets kept in a
// database); partitions it leaves at -1 start from Kafka's committed offset.
using AssignHandler = std::function<absl::Status(std::vector<TopicPartition>* partitions)>;
// Told which partitions were taken away (after the last batch of them was handled).
using RevokeHandler = std::function<void(const std::vector<TopicPartition>& partitions)>;
// Handles a batch; on error nothing is committed and the same batch comes again.
using BatchHandler = std::function<absl::Status(const std::vector<Message>& batch)>;

class KafkaConsumer {
 public:
  static absl::StatusOr<std::unique_ptr<KafkaConsumer>> Create(ConsumerOptions options,
                                                               BatchHandler handler,
                                                               AssignHandler on_assign = nullptr,
                                                               RevokeHandler on_revoke = nullptr);
  ~KafkaConsumer();

  // Consumes until Stop; then commits what was handled and leaves the group. A batch never
  // holds messages of a partition fetched before it was revoked (even if it came back since), so
  // no message is in a batch twice.
  void Run();
  void Stop() { stop_ = true; }

  // Messages behind the high watermark (asked of the broker), per assigned partition (for the lag
  // metric). Blocks for up to 2 s per partition; call it off the consuming thread.
  std::vector<std::pair<TopicPartition, int64_t>> Lag();

 private:
  KafkaConsumer() = default;
  absl::Status HandleWithRetry(const std::vector<Message>& batch);
  void Rewind(const std::vector<Message>& batch);
  void Commit(const std::vector<Message>& batch);
  // Pipelined mode: waits for the batch in the handler; commits it, or keeps it in failed_ for
  // Run to rewind. Runs on the Run thread (also inside rebalance callbacks).
  void Settle();

  struct InFlight {
    std::vector<Message> batch;
    absl::Status result;
    std::thread worker;
  };

  ConsumerOptions options_;
  BatchHandler handler_;
  std::unique_ptr<class RebalanceHandler> rebalance_;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer_;
  std::atomic<bool> stop_{false};
  std::unique_ptr<InFlight> in_flight_;
  std::vector<Message> failed_;  // a pipelined batch that failed, to be rewound
};

}  // namespace kurt::kafka
