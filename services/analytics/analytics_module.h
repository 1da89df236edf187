// The one place the analytics service is wired: the click consumer (kurt.clicks.v1 into raw
// clicks, hourly aggregates and offsets, what cannot be counted to the dead-letter topic) and the
// stats RPC over gRPC. main and every test harness that runs analytics call Create, then Start
// and Stop around serving.
//
// Created, started, stopped and destroyed on one thread, after the clients in AnalyticsDeps and
// before they go. The consumer runs on threads of its own between Start and Stop; the service it
// hands out is called on gRPC's threads.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "platform/core/metrics.h"
#include "platform/kafka/kafka.h"
#include "platform/pg/pg.h"
#include "services/analytics/analytics_rpcs.h"
#include "services/analytics/analytics_service.h"
#include "services/analytics/bot_classifier.h"
#include "services/analytics/click_consumer.h"
#include "services/analytics/click_processor.h"
#include "services/analytics/click_store.h"
#include "services/analytics/dead_letters.h"
#include "services/analytics/stats_store.h"
#include "services/common/mesh.h"

namespace kurt::analytics {

// Everything the analytics service is configured with (main fills it from flags).
struct AnalyticsConfig {
  // Whether Start runs the click consumer (false: serve stats only).
  bool consume = true;
  std::string kafka_brokers;
  std::string clicks_topic = mesh::kClicksTopic;
  std::string dead_letter_topic = mesh::kClicksDeadLetterTopic;
  std::string consumer_group = "kurt-analytics";
  // Most click events handled in one database transaction (bounds memory).
  int batch_max_messages = 100000;
  // Transactions a batch is written in at once, one partition each (1: one per batch).
  int write_parallelism = 3;
  // How long a batch waits to fill before it is handled.
  absl::Duration batch_wait = absl::Milliseconds(100);
  // How often kurt_kafka_consumer_lag is refreshed.
  absl::Duration lag_refresh = absl::Seconds(5);
  // Daily partitions of the clicks table kept ready ahead of the current day.
  int partition_days_ahead = 7;
  // Also commit consumed offsets to Kafka after each batch (for broker-side lag tools).
  bool mirror_offsets_to_kafka = false;
  // uap-core's regexes.yaml (Debian's uap-core), whose "Spider" devices are counted as bots
  // (user_agent::UapRegexes). Empty: bots are told by known preview agents and HEAD only. A file
  // that cannot be loaded stops the process at Create: it would count crawlers as people.
  std::string uap_regexes_file = "/usr/share/uap-core/regexes.yaml";
  // The clock that stats ranges without an end end at (tests pin it).
  std::function<absl::Time()> now = absl::Now;
};

// The clients main built; each outlives the module.
struct AnalyticsDeps {
  pg::PgCluster* cluster = nullptr;
  kafka::KafkaProducer* producer = nullptr;  // publishes the dead letters
  metrics::Registry* registry = nullptr;
};

class AnalyticsModule {
 public:
  static std::unique_ptr<AnalyticsModule> Create(const AnalyticsConfig& config, AnalyticsDeps deps);
  // Stops first.
  ~AnalyticsModule();

  // kurt.analytics.v1.AnalyticsService, to add to a GrpcServer.
  grpc::Service* service() { return &service_; }

  // Joins the consumer group and consumes on threads of its own (nothing when config.consume is
  // false). Call once.
  absl::Status Start();
  // Lets the batch in hand finish, leaves the group, then waits (up to 10 s) for dead letters
  // still in flight; idempotent.
  void Stop();

  // The consumer's batch handler (tests hand it batches of their own).
  ClickProcessor& processor() { return processor_; }

 private:
  AnalyticsModule(const AnalyticsConfig& config, AnalyticsDeps deps);

  const bool consume_;
  kafka::KafkaProducer* producer_;
  std::unique_ptr<user_agent::UapRegexes> spiders_;  // null: none configured
  PgClickStore click_store_;
  KafkaDeadLetterSink dead_letters_;
  ClickProcessor processor_;
  ClickConsumer consumer_;
  PgStatsStore stats_store_;
  AnalyticsRpcs rpcs_;
  AnalyticsService service_;
  bool stopped_ = false;
};

}  // namespace kurt::analytics
