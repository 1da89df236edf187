// kurt-analytics: the click consumer (kurt.clicks.v1 → raw clicks, hourly aggregates and the
// consumed offsets, in one transaction per partition of each batch) and the stats gRPC service.
#include "absl/flags/flag.h"
#include "absl/time/time.h"
#include "platform/core/config.h"
#include "platform/core/log.h"
#include "platform/grpc/server.h"
#include "platform/kafka/kafka.h"
#include "platform/pg/pg.h"
#include "services/analytics/analytics_module.h"
#include "services/common/mesh.h"

ABSL_FLAG(std::string, clicks_topic, kurt::mesh::kClicksTopic, "Kafka topic of click events");
ABSL_FLAG(std::string, dead_letter_topic, kurt::mesh::kClicksDeadLetterTopic,
          "Kafka topic for click events that cannot be counted");
ABSL_FLAG(std::string, consumer_group, "kurt-analytics",
          "Kafka consumer group of the click consumer");
ABSL_FLAG(bool, consume, true, "Run the click consumer (false: serve stats only)");
ABSL_FLAG(int, batch_max_messages, 100000,
          "Most click events handled in one database transaction (bounds memory)");
ABSL_FLAG(int, write_parallelism, 3,
          "Transactions a batch is written in at once, one partition each (1: one transaction "
          "per batch)");
ABSL_FLAG(absl::Duration, batch_wait, absl::Milliseconds(100),
          "How long a batch waits to fill before it is handled");
ABSL_FLAG(absl::Duration, lag_refresh, absl::Seconds(5),
          "How often kurt_kafka_consumer_lag is refreshed");
ABSL_FLAG(int, partition_days_ahead, 7,
          "Daily partitions of the clicks table kept ready ahead of the current day");
ABSL_FLAG(bool, mirror_offsets_to_kafka, false,
          "Also commit consumed offsets to Kafka after each batch (for broker-side lag tools); "
          "the database stays where the consumer resumes from");
ABSL_FLAG(absl::Duration, max_replica_lag, absl::Seconds(5),
          "A replica further behind is not read");
ABSL_FLAG(std::string, uap_regexes_file, kurt::analytics::AnalyticsConfig().uap_regexes_file,
          "uap-core's regexes.yaml: clicks whose device it calls Spider are counted as bots' "
          "(empty: bots are known preview agents and HEAD requests only)");
ABSL_FLAG(int, pg_pool_size, 8, "Connections per database pool");

int main(int argc, char** argv) {
  kurt::platform::SetFlagDefault(&FLAGS_grpc_port, kurt::mesh::kAnalytics.grpc_port);
  kurt::platform::SetFlagDefault(&FLAGS_metrics_port, kurt::mesh::kAnalytics.metrics_port);
  kurt::platform::InitProcess(argc, argv, "analytics",
                              "kurt-analytics: click consumer and stats gRPC service");

  kurt::analytics::AnalyticsConfig config;
  config.consume = absl::GetFlag(FLAGS_consume);
  config.kafka_brokers = absl::GetFlag(FLAGS_kafka_brokers);
  config.clicks_topic = absl::GetFlag(FLAGS_clicks_topic);
  config.dead_letter_topic = absl::GetFlag(FLAGS_dead_letter_topic);
  config.consumer_group = absl::GetFlag(FLAGS_consumer_group);
  config.batch_max_messages = absl::GetFlag(FLAGS_batch_max_messages);
  config.write_parallelism = absl::GetFlag(FLAGS_write_parallelism);
  config.batch_wait = absl::GetFlag(FLAGS_batch_wait);
  config.lag_refresh = absl::GetFlag(FLAGS_lag_refresh);
  config.partition_days_ahead = absl::GetFlag(FLAGS_partition_days_ahead);
  config.mirror_offsets_to_kafka = absl::GetFlag(FLAGS_mirror_offsets_to_kafka);
  config.uap_regexes_file = absl::GetFlag(FLAGS_uap_regexes_file);

  kurt::metrics::Registry registry;
  kurt::pg::ClusterOptions pg_options =
      kurt::pg::PgCluster::OptionsFromFlags(absl::GetFlag(FLAGS_pg_pool_size));
  pg_options.max_replica_lag = absl::GetFlag(FLAGS_max_replica_lag);
  // A batch may wait for a former owner's lock on its offsets; give it time.
  pg_options.primary.statement_timeout = absl::Seconds(30);
  kurt::pg::PgCluster cluster(pg_options);

  kurt::kafka::ProducerOptions producer_options;
  producer_options.brokers = config.kafka_brokers;
  producer_options.client_id = std::string(kurt::mesh::kAnalytics.binary);
  auto producer = kurt::kafka::KafkaProducer::Create(producer_options);
  if (!producer.ok()) {
    KURT_LOG(kError, "kafka producer", {"error", producer.status().ToString()});
    return 2;
  }

  auto analytics =
      kurt::analytics::AnalyticsModule::Create(config, {&cluster, producer->get(), &registry});

  kurt::platform::GrpcServer server(kurt::platform::GrpcServerOptions::FromFlags("analytics"),
                                    &registry);
  server.AddService(analytics->service());
  server.OnShutdown([&] { analytics->Stop(); });
  if (absl::Status s = server.Start(); !s.ok()) {
    KURT_LOG(kError, "cannot start", {"error", s.ToString()});
    return 1;
  }
  if (absl::Status s = analytics->Start(); !s.ok()) {
    KURT_LOG(kError, "cannot start the click consumer", {"error", s.ToString()});
    return 1;
  }
  server.Wait();
  return 0;
}
