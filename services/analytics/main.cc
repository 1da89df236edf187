// kurt-analytics: the click consumer (kurt.clicks.v1 → raw clicks, hourly aggregates and the
// consumed offsets, in one transaction per partition of each batch) and the stats gRPC service.

#include "absl/flags/flag.h"
#include "platform/core/config.h"
#include "platform/grpc/server.h"
#include "platform/kafka/kafka.h"
#include "platform/core/log.h"
#include "platform/pg/pg.h"
#include "services/analytics/analytics_service.h"
#include "services/analytics/click_consumer.h"
#include "services/analytics/click_processor.h"
#include "services/analytics/click_store.h"
#include "services/analytics/dead_letters.h"
#include "services/analytics/stats_store.h"

ABSL_FLAG(std::string, clicks_topic, "kurt.clicks.v1", "Kafka topic of click events");
ABSL_FLAG(std::string, dlq_topic, "kurt.clicks.dlq.v1",
          "Kafka topic for click events that cannot be counted");
ABSL_FLAG(std::string, group_id, "kurt-analytics", "Kafka consumer group of the click consumer");
ABSL_FLAG(bool, consume, true, "Run the click consumer (false: serve stats only)");
ABSL_FLAG(int, batch_max_messages, 100000,
          "Most click events handled in one database transaction (bounds memory)");
ABSL_FLAG(int, write_parallelism, 3,
          "Transactions a batch is written in at once, one partition each (1: one transaction "
          "per batch)");
ABSL_FLAG(int, batch_wait_ms, 100, "How long a batch waits to fill before it is handled");
ABSL_FLAG(int, lag_refresh_seconds, 5, "How often kurt_kafka_consumer_lag is refreshed");
ABSL_FLAG(int, partition_months_ahead, 3,
          "Monthly partitions of the clicks table kept ready ahead of the current month");
ABSL_FLAG(bool, mirror_offsets_to_kafka, false,
          "Also commit consumed offsets to Kafka after each batch (for broker-side lag tools); "
          "the database stays where the consumer resumes from");
ABSL_FLAG(int, max_replica_lag_ms, 5000, "A replica further behind is not read");
ABSL_FLAG(int, pg_pool_size, 8, "Connections per database pool");

int main(int argc, char** argv) {
  kurt::platform::SetFlagDefault(&FLAGS_grpc_port, 7103);
  kurt::platform::SetFlagDefault(&FLAGS_metrics_port, 9103);
  kurt::platform::InitProcess(argc, argv, "analytics",
                              "kurt-analytics: click consumer and stats gRPC service");

  kurt::metrics::Registry registry;
  kurt::pg::ClusterOptions pg_options =
      kurt::pg::PgCluster::OptionsFromFlags(absl::GetFlag(FLAGS_pg_pool_size));
  pg_options.max_replica_lag = absl::Milliseconds(absl::GetFlag(FLAGS_max_replica_lag_ms));
  // A batch may wait for a former owner's lock on its offsets; give it time.
  pg_options.primary.statement_timeout = absl::Seconds(30);
  kurt::pg::PgCluster cluster(pg_options);

  kurt::kafka::ProducerOptions producer_options;
  producer_options.brokers = absl::GetFlag(FLAGS_kafka_brokers);
  producer_options.client_id = "kurt-analytics";
  auto producer = kurt::kafka::KafkaProducer::Create(producer_options);
  if (!producer.ok()) {
    KURT_LOG(kError, "kafka producer", {"error", producer.status().ToString()});
    return 2;
  }

  kurt::analytics::PgClickStore click_store(&cluster.primary());
  kurt::analytics::KafkaDeadLetterSink dead_letters(producer->get(),
                                                    absl::GetFlag(FLAGS_dlq_topic));
  kurt::analytics::ClickProcessor processor(absl::GetFlag(FLAGS_group_id), &click_store,
                                            &dead_letters, &registry,
                                            absl::GetFlag(FLAGS_write_parallelism));
  kurt::analytics::ClickConsumerOptions consumer_options;
  consumer_options.brokers = absl::GetFlag(FLAGS_kafka_brokers);
  consumer_options.group_id = absl::GetFlag(FLAGS_group_id);
  consumer_options.topic = absl::GetFlag(FLAGS_clicks_topic);
  consumer_options.max_batch = absl::GetFlag(FLAGS_batch_max_messages);
  consumer_options.batch_wait = absl::Milliseconds(absl::GetFlag(FLAGS_batch_wait_ms));
  consumer_options.lag_refresh = absl::Seconds(absl::GetFlag(FLAGS_lag_refresh_seconds));
  consumer_options.partition_months_ahead = absl::GetFlag(FLAGS_partition_months_ahead);
  consumer_options.mirror_offsets_to_kafka = absl::GetFlag(FLAGS_mirror_offsets_to_kafka);
  kurt::analytics::ClickConsumer consumer(consumer_options, &click_store, &processor, &registry);

  kurt::analytics::PgStatsStore stats_store(&cluster);
  kurt::analytics::AnalyticsService service(&stats_store);

  kurt::platform::GrpcServer server(kurt::platform::GrpcServerOptions::FromFlags("analytics"),
                                    &registry);
  server.AddService(&service);
  // Hooks run in reverse: the consumer finishes its batch, then dead letters are flushed.
  server.OnShutdown([&] {
    absl::Status s = (*producer)->Flush(absl::Seconds(10));
    if (!s.ok()) KURT_LOG(kWarn, "dead letters left unsent", {"error", s.ToString()});
  });
  server.OnShutdown([&] { consumer.Stop(); });
  if (absl::Status s = server.Start(); !s.ok()) {
    KURT_LOG(kError, "cannot start", {"error", s.ToString()});
    return 1;
  }
  if (absl::GetFlag(FLAGS_consume)) {
    if (absl::Status s = consumer.Start(); !s.ok()) {
      KURT_LOG(kError, "cannot start the click consumer", {"error", s.ToString()});
      return 1;
    }
  }
  server.Wait();
  return 0;
}
