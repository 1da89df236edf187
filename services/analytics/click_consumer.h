// The click consumer: a member of a Kafka consumer group on kurt.clicks.v1 whose offsets live in
// the database (never committed to Kafka), with a background thread that publishes the lag metric
// kurt_kafka_consumer_lag{topic,partition,group}, creates daily partitions of the clicks table
// ahead of time and builds the (code, click_time) B-tree of each day once it has ended (that
// thread's lag figures stand still while it builds one, a minute or so a day).
//
// Owned by AnalyticsModule; Start and Stop from one thread. Stop lets the batch in hand finish
// (commit or roll back), then leaves the group.
#pragma once

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "platform/core/metrics.h"
#include "platform/kafka/kafka.h"
#include "services/analytics/click_processor.h"
#include "services/analytics/click_store.h"
#include "services/common/mesh.h"

namespace kurt::analytics {

struct ClickConsumerOptions {
  std::string brokers;
  std::string group_id = "kurt-analytics";
  std::string topic = mesh::kClicksTopic;
  std::string client_id = std::string(mesh::kAnalytics.binary);
  // A batch is at most this many messages, so memory stays bounded however far behind we are.
  int max_batch = 5000;
  absl::Duration batch_wait = absl::Milliseconds(100);
  absl::Duration lag_refresh = absl::Seconds(5);
  // Daily partitions are kept this many days ahead of the current one.
  int partition_days_ahead = 7;
  absl::Duration partition_check = absl::Hours(1);
  // Also commit each batch's offsets to Kafka, for broker-side lag tools (kafka-exporter); the
  // database stays the only source consumers resume from.
  bool mirror_offsets_to_kafka = false;
};

class ClickConsumer {
 public:
  // `store`, `processor` and `registry` outlive the consumer.
  ClickConsumer(ClickConsumerOptions options, ClickStore* store, ClickProcessor* processor,
                metrics::Registry* registry);
  ~ClickConsumer();

  // Joins the group and consumes on a thread of its own.
  absl::Status Start();
  // Finishes the batch in hand and leaves the group; idempotent.
  void Stop();

 private:
  // The AssignHandler: starts each newly assigned partition at the offset stored in the database.
  absl::Status OnAssign(std::vector<kafka::TopicPartition>* partitions);
  void MaintenanceLoop();
  void RefreshLag();
  // Creates the days ahead, then builds the B-trees of ended days, every partition_check.
  void EnsurePartitions();

  const ClickConsumerOptions options_;
  ClickStore* store_;
  ClickProcessor* processor_;
  metrics::Family<metrics::Gauge>* lag_;
  std::map<std::pair<std::string, int32_t>, bool> lag_reported_;
  absl::Time next_partition_check_ = absl::InfinitePast();

  std::unique_ptr<kafka::KafkaConsumer> consumer_;
  std::thread consume_thread_;
  std::thread maintenance_thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
};

}  // namespace kurt::analytics
