// kurt-report-worker: a member of the report workers' Kafka consumer group. Claims report jobs,
// scans a replica, writes the artifacts, and publishes the outcomes through the outbox; gRPC
// health on its gRPC port, metrics on its HTTP port.
#include "absl/flags/flag.h"
#include "platform/core/config.h"
#include "platform/core/log.h"
#include "platform/grpc/server.h"
#include "platform/kafka/kafka.h"
#include "platform/pg/listener.h"
#include "platform/pg/pg.h"
#include "services/common/mesh.h"
#include "services/report-worker/worker_module.h"
#include "services/reports/artifact_storage.h"

ABSL_FLAG(std::string, artifact_dir, "",
          "Directory of report artifacts, shared with the reports service (default: "
          "$KURT_STATE_DIR/reports, else .kurt/reports); unused with --s3_bucket");
ABSL_FLAG(bool, artifact_fsync, true, "fsync artifacts before reporting them done");
ABSL_FLAG(std::string, requested_topic, kurt::mesh::kReportsRequestedTopic,
          "Kafka topic of report requests (consumed)");
ABSL_FLAG(std::string, completed_topic, kurt::mesh::kReportsCompletedTopic,
          "Kafka topic of finished reports (written through the outbox)");
ABSL_FLAG(std::string, dead_letter_topic, kurt::mesh::kReportsDeadLetterTopic,
          "Dead-letter topic for requests that cannot be run");
ABSL_FLAG(std::string, consumer_group, std::string(kurt::mesh::kReportWorker.binary),
          "Kafka consumer group");
ABSL_FLAG(std::string, worker_id, "", "This worker's name in report_jobs (default: host-pid)");
ABSL_FLAG(int, max_concurrent_jobs, 2, "Reports run at once by this worker");
ABSL_FLAG(absl::Duration, lease, absl::Seconds(15),
          "A running report whose worker stops renewing its lease is taken over after this");
ABSL_FLAG(absl::Duration, heartbeat_interval, absl::Seconds(2),
          "How often running reports' leases are renewed and their progress recorded");
ABSL_FLAG(absl::Duration, lease_scan_interval, absl::Seconds(5),
          "How often reports with an expired lease are looked for");
ABSL_FLAG(int, max_attempts, 3, "Attempts before a report fails for good");
ABSL_FLAG(absl::Duration, retry_backoff, absl::Seconds(2),
          "Wait before a report's second attempt; doubled for each further one");
ABSL_FLAG(int64_t, scan_chunk_rows, 10000, "Rows between progress and cancellation checks");
ABSL_FLAG(int64_t, scan_max_rows_per_second, 0,
          "Rows per second one report may read (0: unlimited), to spare the replica");
ABSL_FLAG(absl::Duration, scan_statement_timeout, absl::ZeroDuration(),
          "Bound on one report's queries (0: none)");
ABSL_FLAG(absl::Duration, report_retention, absl::Hours(24 * 30),
          "How long a SUCCEEDED report keeps its artifact; then the artifact is deleted and the "
          "report becomes EXPIRED (0: kept for ever)");
ABSL_FLAG(absl::Duration, temp_sweep_age, absl::Hours(1),
          "Temporary artifacts (files, multipart uploads) of attempts that are over are removed "
          "once older than this");
ABSL_FLAG(absl::Duration, janitor_interval, absl::Minutes(1),
          "Between passes of the temporary sweep and the retention period");
ABSL_FLAG(bool, outbox_relay, true, "Run an outbox relay in this process");
ABSL_FLAG(int, pg_pool_size, 8, "Connections per database pool");

int main(int argc, char** argv) {
  kurt::platform::SetFlagDefault(&FLAGS_grpc_port, kurt::mesh::kReportWorker.grpc_port);
  kurt::platform::SetFlagDefault(&FLAGS_metrics_port, kurt::mesh::kReportWorker.metrics_port);
  kurt::platform::InitProcess(argc, argv, "report-worker",
                              "kurt-report-worker: runs report jobs from Kafka");

  kurt::report_worker::WorkerConfig config;
  auto artifacts = kurt::reports::ArtifactStoreFromFlags(absl::GetFlag(FLAGS_artifact_dir));
  if (!artifacts.ok()) {
    KURT_LOG(kError, "bad S3 settings for report artifacts",
             {"error", artifacts.status().ToString()});
    return 2;
  }
  config.artifacts = *std::move(artifacts);
  config.artifacts.fsync = absl::GetFlag(FLAGS_artifact_fsync);
  config.kafka_brokers = absl::GetFlag(FLAGS_kafka_brokers);
  config.requested_topic = absl::GetFlag(FLAGS_requested_topic);
  config.completed_topic = absl::GetFlag(FLAGS_completed_topic);
  config.dead_letter_topic = absl::GetFlag(FLAGS_dead_letter_topic);
  config.consumer_group = absl::GetFlag(FLAGS_consumer_group);
  config.worker_id = absl::GetFlag(FLAGS_worker_id);
  config.max_concurrent_jobs = absl::GetFlag(FLAGS_max_concurrent_jobs);
  config.lease = absl::GetFlag(FLAGS_lease);
  config.heartbeat_interval = absl::GetFlag(FLAGS_heartbeat_interval);
  config.lease_scan_interval = absl::GetFlag(FLAGS_lease_scan_interval);
  config.max_attempts = absl::GetFlag(FLAGS_max_attempts);
  config.retry_backoff = absl::GetFlag(FLAGS_retry_backoff);
  config.scan_chunk_rows = absl::GetFlag(FLAGS_scan_chunk_rows);
  config.scan_max_rows_per_second = absl::GetFlag(FLAGS_scan_max_rows_per_second);
  config.scan_statement_timeout = absl::GetFlag(FLAGS_scan_statement_timeout);
  config.report_retention = absl::GetFlag(FLAGS_report_retention);
  config.temp_sweep_age = absl::GetFlag(FLAGS_temp_sweep_age);
  config.janitor_interval = absl::GetFlag(FLAGS_janitor_interval);
  config.outbox_relay = absl::GetFlag(FLAGS_outbox_relay);
  config.outbox_listen_url = kurt::pg::ListenUrlFromFlags();

  kurt::metrics::Registry registry;
  kurt::pg::PgCluster cluster(
      kurt::pg::PgCluster::OptionsFromFlags(absl::GetFlag(FLAGS_pg_pool_size)));
  kurt::kafka::ProducerOptions producer_options;
  producer_options.brokers = absl::GetFlag(FLAGS_kafka_brokers);
  producer_options.client_id = std::string(kurt::mesh::kReportWorker.binary);
  auto producer = kurt::kafka::KafkaProducer::Create(producer_options);
  if (!producer.ok()) {
    KURT_LOG(kError, "kafka producer", {"error", producer.status().ToString()});
    return 2;
  }
  auto module = kurt::report_worker::WorkerModule::Create(
      config, {.cluster = &cluster, .producer = producer->get(), .registry = &registry});
  if (!module.ok()) {
    KURT_LOG(kError, "cannot wire the worker", {"error", module.status().ToString()});
    return 2;
  }

  kurt::platform::GrpcServer server(kurt::platform::GrpcServerOptions::FromFlags("report-worker"),
                                    &registry);
  // Hooks run in reverse order: stop consuming, give running jobs back and stop the relay, then
  // publish what is left.
  server.OnShutdown([&] {
    if (absl::Status s = (*producer)->Flush(absl::Seconds(10)); !s.ok()) {
      KURT_LOG(kWarn, "events left unsent", {"error", s.ToString()});
    }
  });
  server.OnShutdown([&] { (*module)->Stop(); });
  if (absl::Status s = server.Start(); !s.ok()) {
    KURT_LOG(kError, "cannot start", {"error", s.ToString()});
    return 1;
  }
  (*module)->Start();
  KURT_LOG(kInfo, "report worker running", {"worker", (*module)->worker_id()},
           {"group", config.consumer_group});
  server.Wait();
  return 0;
}
