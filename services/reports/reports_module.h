// The one place the reports service is wired: its store, the artifact storage it reads, the
// outbox relay that publishes the jobs' events, its RPCs and their gRPC service. kurt-reports'
// main and the test harnesses build it from a ReportsConfig and the clients they made.
//
// Lives as long as the server it serves on (main's whole run); Start and Stop from one thread.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "platform/core/metrics.h"
#include "platform/kafka/kafka.h"
#include "platform/outbox/outbox.h"
#include "platform/pg/pg.h"
#include "services/common/mesh.h"
#include "services/reports/artifact_storage.h"
#include "services/reports/reports_rpcs.h"
#include "services/reports/reports_service.h"
#include "services/reports/reports_store.h"
#include "services/reports/s3_artifact_storage.h"

namespace kurt::reports {

// What kurt-reports' flags say.
struct ReportsConfig {
  // Where report artifacts are, shared with the report workers (a directory, or an S3 bucket).
  ArtifactStoreConfig artifacts;
  std::string requested_topic = mesh::kReportsRequestedTopic;
  // How long a new job waits for its Kafka message before workers claim it by scanning.
  absl::Duration pending_grace = absl::Seconds(60);
  // Longest range a report may cover.
  absl::Duration max_range = absl::Hours(24 * 366);
  // How many reports an account may have in progress, and create a day.
  ReportQuota quota;
  // StreamReport: how often it reads the report, and how many one account may have open.
  absl::Duration stream_poll = absl::Seconds(1);
  int max_streams_per_account = 10;
  // Run an outbox relay in this process.
  bool outbox_relay = true;
  // The primary, directly, where the relay LISTENs for new outbox rows
  // (pg::ListenUrlFromFlags()); empty: it polls only.
  std::string outbox_listen_url;
};

// The clients the module uses; each outlives it.
struct ReportsDeps {
  pg::PgCluster* cluster = nullptr;
  // The relay's producer (unused without a relay).
  kafka::KafkaProducer* producer = nullptr;
  metrics::Registry* registry = nullptr;
};

class ReportsModule {
 public:
  // Fails when the artifact directory cannot be created or written, or the bucket reached.
  static absl::StatusOr<std::unique_ptr<ReportsModule>> Create(const ReportsConfig& config,
                                                               ReportsDeps deps);
  ~ReportsModule();
  ReportsModule(const ReportsModule&) = delete;
  ReportsModule& operator=(const ReportsModule&) = delete;

  // kurt.reports.v1.ReportsService, to add to a GrpcServer.
  grpc::Service* service() { return &service_; }
  ReportsRpcs& rpcs() { return rpcs_; }

  // Starts the outbox relay, if the config runs one.
  void Start();
  // Stops the relay after its current round (a shutdown hook, before the producer's flush).
  void Stop();

 private:
  ReportsModule(const ReportsConfig& config, ReportsDeps deps,
                std::unique_ptr<ArtifactStorage> storage);

  std::unique_ptr<ArtifactStorage> storage_;
  PgReportsStore store_;
  std::unique_ptr<outbox::KafkaPublisher> publisher_;
  std::unique_ptr<outbox::OutboxRelay> relay_;  // null without a relay
  ReportsRpcs rpcs_;
  ReportsService service_;
};

}  // namespace kurt::reports
