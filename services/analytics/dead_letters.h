// The dead-letter topic for click events that cannot be counted (kurt.clicks.dlq.v1): the
// original key, value and headers, plus dlq-reason (bad-protobuf, invalid-event, unknown-code),
// dlq-detail and where the message came from (dlq-topic, dlq-partition, dlq-offset).
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "platform/kafka/kafka.h"
#include "services/analytics/click_batch.h"

namespace kurt::analytics {

class DeadLetterSink {
 public:
  virtual ~DeadLetterSink() = default;
  // Publishes the letters and returns once the broker has acknowledged every one (OK), or an
  // error; then the batch is not committed and comes again (a letter may then be published
  // twice: consumers of the dead-letter topic tell copies apart by dlq-partition/dlq-offset).
  virtual absl::Status Publish(const std::vector<DeadLetter>& letters) = 0;
};

class KafkaDeadLetterSink : public DeadLetterSink {
 public:
  // `producer` outlives the sink. Publish is thread-safe.
  KafkaDeadLetterSink(kafka::KafkaProducer* producer, std::string topic,
                      absl::Duration ack_timeout = absl::Seconds(30));

  absl::Status Publish(const std::vector<DeadLetter>& letters) override;

  // The headers a dead letter carries (exposed for tests).
  static kafka::Headers HeadersFor(const DeadLetter& letter);

 private:
  kafka::KafkaProducer* producer_;
  const std::string topic_;
  const absl::Duration ack_timeout_;
};

}  // namespace kurt::analytics
