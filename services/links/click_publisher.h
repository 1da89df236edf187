// Publishes a click event per resolve to the clicks topic (mesh::kClicksTopic; key: the code)
// without blocking or failing the resolve: a click that cannot be queued is counted and logged,
// never waited for. The clicks of the edge's cached redirects are published and waited for
// (PublishAll): the edge forgets them once this service has answered, so they must be in Kafka
// by then.
//
// A sink lives as long as the service; Publish and PublishAll are called from any thread.
#pragma once

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "platform/core/metrics.h"
#include "platform/kafka/kafka.h"

namespace kurt::links {

struct Click {
  std::string code;
  absl::Time time;
  std::string referrer;
  std::string user_agent;
  std::string client_ip;  // hashed before it leaves the process
  std::string traceparent;
};

class ClickSink {
 public:
  virtual ~ClickSink() = default;
  // Queues the click; never blocks.
  virtual void Publish(const Click& click) = 0;
  // Publishes every click and returns once Kafka has all of them (acks=all): OK only then.
  // UNAVAILABLE when one could not be queued, failed, or was not delivered by `deadline`; the
  // caller may send them all again (those already delivered then count twice).
  virtual absl::Status PublishAll(const std::vector<Click>& clicks, absl::Time deadline) = 0;
};

class KafkaClickSink : public ClickSink {
 public:
  // `producer` outlives the sink. `salt` keeps client hashes from being reversed by hashing
  // every address; replicas must share it so one client hashes alike everywhere.
  KafkaClickSink(kafka::KafkaProducer* producer, std::string topic, std::string salt,
                 metrics::Registry* registry);
  void Publish(const Click& click) override;
  absl::Status PublishAll(const std::vector<Click>& clicks, absl::Time deadline) override;

  // Hex SHA-256 of salt + address.
  static std::string HashClient(absl::string_view salt, absl::string_view ip);

 private:
  absl::Status Produce(const Click& click, kafka::DeliveryCallback on_delivery);

  kafka::KafkaProducer* producer_;
  const std::string topic_;
  const std::string salt_;
  metrics::Counter* queued_;
  metrics::Counter* dropped_;
  metrics::Counter* failed_;
};

}  // namespace kurt::links
