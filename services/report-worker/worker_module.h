// The one place a report worker is wired: the artifact storage it writes, its job store, the
// replica scans, the runner and the worker, its member of the workers' Kafka consumer group, the
// outbox relay that publishes the outcomes, and the janitor that sweeps dead writers' temporaries
// and expires old artifacts. kurt-report-worker's main and the test harnesses build it from a
// WorkerConfig and the clients they made.
//
// Lives as long as the process's server (main's whole run); Start and Stop from one thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "platform/core/metrics.h"
#include "platform/kafka/first_assignment.h"
#include "platform/kafka/kafka.h"
#include "platform/outbox/outbox.h"
#include "platform/pg/pg.h"
#include "services/common/mesh.h"
#include "services/report-worker/artifact_janitor.h"
#include "services/report-worker/janitor_store.h"
#include "services/report-worker/job_store.h"
#include "services/report-worker/report_runner.h"
#include "services/report-worker/report_source.h"
#include "services/report-worker/worker.h"
#include "services/reports/artifact_storage.h"
#include "services/reports/s3_artifact_storage.h"

namespace kurt::report_worker {

// What kurt-report-worker's flags say.
struct WorkerConfig {
  // Where report artifacts go, shared with the reports service (a directory, or an S3 bucket).
  reports::ArtifactStoreConfig artifacts;
  std::string kafka_brokers;
  std::string requested_topic = mesh::kReportsRequestedTopic;
  std::string completed_topic = mesh::kReportsCompletedTopic;
  std::string dead_letter_topic = mesh::kReportsDeadLetterTopic;
  std::string consumer_group{mesh::kReportWorker.binary};
  // This worker's name in report_jobs; empty: host-pid.
  std::string worker_id;
  int max_concurrent_jobs = 2;
  // A running report whose worker stops renewing its lease is taken over after this.
  absl::Duration lease = absl::Seconds(15);
  absl::Duration heartbeat_interval = absl::Seconds(2);
  absl::Duration lease_scan_interval = absl::Seconds(5);
  // Attempts before a report fails for good; the wait before the second, doubled for each further.
  int max_attempts = 3;
  absl::Duration retry_backoff = absl::Seconds(2);
  // Rows between progress and cancellation checks; rows per second at most (0: unlimited); a
  // bound on one report's queries (0: none).
  int64_t scan_chunk_rows = 10000;
  int64_t scan_max_rows_per_second = 0;
  absl::Duration scan_statement_timeout = absl::ZeroDuration();
  // The janitor (artifact_janitor.h): how often it runs, the age below which it leaves a
  // temporary alone, and how long a SUCCEEDED report keeps its artifact (zero: for ever).
  absl::Duration janitor_interval = absl::Minutes(1);
  absl::Duration temp_sweep_age = absl::Hours(1);
  absl::Duration report_retention = absl::Hours(24 * 30);
  // Run an outbox relay in this process.
  bool outbox_relay = true;
  // The primary, directly, where the relay LISTENs for new outbox rows
  // (pg::ListenUrlFromFlags()); empty: it polls only.
  std::string outbox_listen_url;
};

// The clients the module uses; each outlives it.
struct WorkerDeps {
  pg::PgCluster* cluster = nullptr;
  // The relay's producer (unused without a relay).
  kafka::KafkaProducer* producer = nullptr;
  metrics::Registry* registry = nullptr;
};

class WorkerModule {
 public:
  // Fails when the artifact storage cannot be used or the consumer cannot be made.
  static absl::StatusOr<std::unique_ptr<WorkerModule>> Create(const WorkerConfig& config,
                                                              WorkerDeps deps);
  ~WorkerModule();
  WorkerModule(const WorkerModule&) = delete;
  WorkerModule& operator=(const WorkerModule&) = delete;

  // Starts the relay (if the config runs one), the worker's threads, and consuming.
  void Start();
  // Stops consuming, gives running jobs back, then stops the relay after its current round (a
  // shutdown hook, before the producer's flush). Idempotent.
  void Stop();

  // Whether the consumer got its first partitions within `timeout` (a harness waits for it
  // before producing).
  bool WaitForAssignment(absl::Duration timeout) const { return first_assignment_.Wait(timeout); }

  Worker& worker() { return worker_; }
  ArtifactJanitor& janitor() { return janitor_; }
  const std::string& worker_id() const { return store_.options().worker_id; }

 private:
  WorkerModule(const WorkerConfig& config, WorkerDeps deps,
               std::unique_ptr<reports::ArtifactStorage> storage);

  std::unique_ptr<reports::ArtifactStorage> storage_;
  PgJobStore store_;
  PgReportSource source_;
  ReportRunner runner_;
  Worker worker_;
  PgJanitorStore janitor_store_;
  ArtifactJanitor janitor_;
  std::unique_ptr<outbox::KafkaPublisher> publisher_;
  std::unique_ptr<outbox::OutboxRelay> relay_;  // null without a relay
  kafka::FirstAssignment first_assignment_;
  std::unique_ptr<kafka::KafkaConsumer> consumer_;
  std::thread consuming_;
  bool started_ = false;
};

}  // namespace kurt::report_worker
