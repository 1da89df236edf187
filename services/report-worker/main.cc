// kurt-report-worker: a member of the report workers' Kafka consumer group. Claims report jobs,
// scans a replica, writes the artifacts, and publishes the outcomes through the outbox; gRPC
// health on its gRPC port, metrics on its HTTP port.
#include <unistd.h>

#include <thread>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "platform/core/config.h"
#include "platform/grpc/server.h"
#include "platform/kafka/kafka.h"
#include "platform/core/log.h"
#include "platform/outbox/outbox.h"
#include "platform/pg/pg.h"
#include "services/report-worker/job_store.h"
#include "services/report-worker/report_runner.h"
#include "services/report-worker/report_source.h"
#include "services/report-worker/worker.h"
#include "services/reports/artifact_storage.h"
#include "platform/kafka/first_assignment.h"

ABSL_FLAG(std::string, artifact_dir, "",
          "Directory of report artifacts, shared with the reports service (default: "
          "$KURT_STATE_DIR/reports, else .kurt/reports)");
ABSL_FLAG(bool, artifact_fsync, true, "fsync artifacts before reporting them done");
ABSL_FLAG(std::string, requested_topic, kurt::reports::kRequestedTopic,
          "Kafka topic of report requests (consumed)");
ABSL_FLAG(std::string, completed_topic, kurt::reports::kCompletedTopic,
          "Kafka topic of finished reports (written through the outbox)");
ABSL_FLAG(std::string, dlq_topic, kurt::reports::kDeadLetterTopic,
          "Dead-letter topic for requests that cannot be run");
ABSL_FLAG(std::string, consumer_group, "kurt-report-worker", "Kafka consumer group");
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
ABSL_FLAG(bool, outbox_relay, true, "Run an outbox relay in this process");
ABSL_FLAG(int, pg_pool_size, 8, "Connections per database pool");

namespace {

std::string DefaultWorkerId() {
  char host[256] = {0};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  return absl::StrCat(host[0] ? host : "worker", "-", getpid());
}

}  // namespace

int main(int argc, char** argv) {
  kurt::platform::SetFlagDefault(&FLAGS_grpc_port, 7105);
  kurt::platform::SetFlagDefault(&FLAGS_metrics_port, 9105);
  kurt::platform::InitProcess(argc, argv, "report-worker",
                              "kurt-report-worker: runs report jobs from Kafka");

  kurt::metrics::Registry registry;
  kurt::pg::PgCluster cluster(
      kurt::pg::PgCluster::OptionsFromFlags(absl::GetFlag(FLAGS_pg_pool_size)));

  kurt::reports::DirectoryStorageOptions storage_options;
  storage_options.dir = kurt::reports::ArtifactDirOrDefault(absl::GetFlag(FLAGS_artifact_dir));
  storage_options.fsync = absl::GetFlag(FLAGS_artifact_fsync);
  kurt::reports::DirectoryStorage storage(storage_options);
  if (absl::Status s = storage.Init(); !s.ok()) {
    KURT_LOG(kError, "bad --artifact_dir", {"error", s.ToString()});
    return 2;
  }

  kurt::kafka::ProducerOptions producer_options;
  producer_options.brokers = absl::GetFlag(FLAGS_kafka_brokers);
  producer_options.client_id = "kurt-report-worker";
  auto producer = kurt::kafka::KafkaProducer::Create(producer_options);
  if (!producer.ok()) {
    KURT_LOG(kError, "kafka producer", {"error", producer.status().ToString()});
    return 2;
  }
  kurt::outbox::KafkaPublisher publisher(producer->get());
  kurt::outbox::RelayOptions relay_options;
  relay_options.table = kurt::reports::kOutboxTable;
  relay_options.listen_url = absl::GetFlag(FLAGS_pg_primary_url);
  kurt::outbox::OutboxRelay relay(relay_options, &cluster.primary(), &publisher, &registry);

  kurt::reports::PgJobStoreOptions store_options;
  store_options.worker_id = absl::GetFlag(FLAGS_worker_id).empty()
                                ? DefaultWorkerId()
                                : absl::GetFlag(FLAGS_worker_id);
  store_options.lease = absl::GetFlag(FLAGS_lease);
  store_options.max_attempts = absl::GetFlag(FLAGS_max_attempts);
  store_options.requested_topic = absl::GetFlag(FLAGS_requested_topic);
  store_options.completed_topic = absl::GetFlag(FLAGS_completed_topic);
  store_options.dead_letter_topic = absl::GetFlag(FLAGS_dlq_topic);
  kurt::reports::PgJobStore store(store_options, &cluster.primary());

  kurt::reports::PgReportSourceOptions source_options;
  source_options.chunk_rows = std::max<int64_t>(1, absl::GetFlag(FLAGS_scan_chunk_rows));
  source_options.max_rows_per_second = absl::GetFlag(FLAGS_scan_max_rows_per_second);
  source_options.statement_timeout = absl::GetFlag(FLAGS_scan_statement_timeout);
  kurt::reports::PgReportSource source(source_options, &cluster);

  kurt::reports::RunnerOptions runner_options;
  runner_options.max_attempts = store_options.max_attempts;
  runner_options.retry_backoff = absl::GetFlag(FLAGS_retry_backoff);
  kurt::reports::ReportRunner runner(runner_options, &store, &source, &storage, &registry);

  kurt::reports::WorkerOptions worker_options;
  worker_options.max_concurrent_jobs = std::max(1, absl::GetFlag(FLAGS_max_concurrent_jobs));
  worker_options.heartbeat_interval = absl::GetFlag(FLAGS_heartbeat_interval);
  worker_options.lease_scan_interval = absl::GetFlag(FLAGS_lease_scan_interval);
  kurt::reports::Worker worker(worker_options, &store, &runner, &registry);

  kurt::kafka::ConsumerOptions consumer_options;
  consumer_options.brokers = absl::GetFlag(FLAGS_kafka_brokers);
  consumer_options.group_id = absl::GetFlag(FLAGS_consumer_group);
  consumer_options.topics = {absl::GetFlag(FLAGS_requested_topic)};
  consumer_options.client_id = store_options.worker_id;
  consumer_options.max_batch = 50;
  consumer_options.assignment_strategy = "cooperative-sticky";
  kurt::kafka::FirstAssignment first_assignment;
  auto consumer = kurt::kafka::KafkaConsumer::Create(
      consumer_options,
      [&](const std::vector<kurt::kafka::Message>& batch) { return worker.HandleBatch(batch); },
      first_assignment.Handler());
  if (!consumer.ok()) {
    KURT_LOG(kError, "kafka consumer", {"error", consumer.status().ToString()});
    return 2;
  }

  kurt::platform::GrpcServer server(
      kurt::platform::GrpcServerOptions::FromFlags("report-worker"), &registry);
  std::thread consuming;
  // Hooks run in reverse order: stop consuming, give running jobs back, publish what is left.
  server.OnShutdown([&] {
    absl::Status s = (*producer)->Flush(absl::Seconds(10));
    if (!s.ok()) KURT_LOG(kWarn, "events left unsent", {"error", s.ToString()});
  });
  server.OnShutdown([&] { relay.Stop(); });
  server.OnShutdown([&] { worker.Stop(); });
  server.OnShutdown([&] { first_assignment.StopAndClose(&*consumer, &consuming); });
  if (absl::Status s = server.Start(); !s.ok()) {
    KURT_LOG(kError, "cannot start", {"error", s.ToString()});
    return 1;
  }
  if (absl::GetFlag(FLAGS_outbox_relay)) relay.Start();
  worker.Start();
  consuming = std::thread([&] { (*consumer)->Run(); });
  KURT_LOG(kInfo, "report worker running", {"worker", store_options.worker_id},
           {"group", consumer_options.group_id});
  server.Wait();
  return 0;
}
