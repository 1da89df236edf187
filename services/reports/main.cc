// kurt-reports: the reports gRPC service (report jobs, their status and their content) and an
// outbox relay that publishes the jobs' events.
#include <algorithm>

#include "absl/flags/flag.h"
#include "platform/core/config.h"
#include "platform/core/log.h"
#include "platform/grpc/server.h"
#include "platform/kafka/kafka.h"
#include "platform/pg/listener.h"
#include "platform/pg/pg.h"
#include "services/common/mesh.h"
#include "services/reports/reports_module.h"

ABSL_FLAG(std::string, artifact_dir, "",
          "Directory of report artifacts, shared with the report workers (default: "
          "$KURT_STATE_DIR/reports, else .kurt/reports); unused with --s3_bucket");
ABSL_FLAG(std::string, requested_topic, kurt::mesh::kReportsRequestedTopic,
          "Kafka topic of report requests");
ABSL_FLAG(bool, outbox_relay, true, "Run an outbox relay in this process");
ABSL_FLAG(absl::Duration, pending_grace, absl::Seconds(60),
          "How long a new job waits for its Kafka message before workers claim it by scanning");
ABSL_FLAG(int, max_range_days, 366, "Longest time range of a report, in days");
ABSL_FLAG(int, max_report_streams_per_account, 10,
          "Report streams (GET /v1/reports/{id}:stream) one account may have open at once");
ABSL_FLAG(int, max_active_reports, 10,
          "Reports an account may have PENDING or RUNNING at once; one more is refused "
          "(RESOURCE_EXHAUSTED, 429 at the edge). 0: no limit");
ABSL_FLAG(int, max_reports_per_day, 200,
          "Reports an account may create in any 24 hours; one more is refused "
          "(RESOURCE_EXHAUSTED, 429 at the edge). 0: no limit");
ABSL_FLAG(int, pg_pool_size, 16, "Connections per database pool");

int main(int argc, char** argv) {
  kurt::platform::SetFlagDefault(&FLAGS_grpc_port, kurt::mesh::kReports.grpc_port);
  kurt::platform::SetFlagDefault(&FLAGS_metrics_port, kurt::mesh::kReports.metrics_port);
  kurt::platform::InitProcess(argc, argv, "reports", "kurt-reports: the reports gRPC service");

  kurt::reports::ReportsConfig config;
  auto artifacts = kurt::reports::ArtifactStoreFromFlags(absl::GetFlag(FLAGS_artifact_dir));
  if (!artifacts.ok()) {
    KURT_LOG(kError, "bad S3 settings for report artifacts",
             {"error", artifacts.status().ToString()});
    return 2;
  }
  config.artifacts = *std::move(artifacts);
  config.requested_topic = absl::GetFlag(FLAGS_requested_topic);
  config.pending_grace = absl::GetFlag(FLAGS_pending_grace);
  config.max_range = absl::Hours(24 * absl::GetFlag(FLAGS_max_range_days));
  config.quota.max_active = std::max(0, absl::GetFlag(FLAGS_max_active_reports));
  config.max_streams_per_account = std::max(1, absl::GetFlag(FLAGS_max_report_streams_per_account));
  config.quota.max_per_day = std::max(0, absl::GetFlag(FLAGS_max_reports_per_day));
  config.outbox_relay = absl::GetFlag(FLAGS_outbox_relay);
  config.outbox_listen_url = kurt::pg::ListenUrlFromFlags();

  kurt::metrics::Registry registry;
  kurt::pg::PgCluster cluster(
      kurt::pg::PgCluster::OptionsFromFlags(absl::GetFlag(FLAGS_pg_pool_size)));
  kurt::kafka::ProducerOptions producer_options;
  producer_options.brokers = absl::GetFlag(FLAGS_kafka_brokers);
  producer_options.client_id = std::string(kurt::mesh::kReports.binary);
  auto producer = kurt::kafka::KafkaProducer::Create(producer_options);
  if (!producer.ok()) {
    KURT_LOG(kError, "kafka producer", {"error", producer.status().ToString()});
    return 2;
  }
  auto module = kurt::reports::ReportsModule::Create(
      config, {.cluster = &cluster, .producer = producer->get(), .registry = &registry});
  if (!module.ok()) {
    KURT_LOG(kError, "report artifacts cannot be stored", {"error", module.status().ToString()});
    return 2;
  }

  kurt::platform::GrpcServer server(kurt::platform::GrpcServerOptions::FromFlags("reports"),
                                    &registry);
  server.AddService((*module)->service());
  server.OnShutdown([&] {
    (*module)->Stop();
    if (absl::Status s = (*producer)->Flush(absl::Seconds(10)); !s.ok()) {
      KURT_LOG(kWarn, "events left unsent", {"error", s.ToString()});
    }
  });
  if (absl::Status s = server.Start(); !s.ok()) {
    KURT_LOG(kError, "cannot start", {"error", s.ToString()});
    return 1;
  }
  (*module)->Start();
  server.Wait();
  return 0;
}
