// kurt-reports: the reports gRPC service (report jobs, their status and their content) and an
// outbox relay that publishes the jobs' events.
#include "absl/flags/flag.h"
#include "platform/core/config.h"
#include "platform/grpc/server.h"
#include "platform/kafka/kafka.h"
#include "platform/core/log.h"
#include "platform/outbox/outbox.h"
#include "platform/pg/pg.h"
#include "services/reports/artifact_storage.h"
#include "services/reports/reports_service.h"
#include "services/reports/reports_store.h"

ABSL_FLAG(std::string, artifact_dir, "",
          "Directory of report artifacts, shared with the report workers (default: "
          "$KURT_STATE_DIR/reports, else .kurt/reports)");
ABSL_FLAG(std::string, requested_topic, kurt::reports::kRequestedTopic,
          "Kafka topic of report requests");
ABSL_FLAG(bool, outbox_relay, true, "Run an outbox relay in this process");
ABSL_FLAG(int, pending_grace_seconds, 60,
          "How long a new job waits for its Kafka message before workers claim it by scanning");
ABSL_FLAG(int, max_range_days, 366, "Longest time range of a report");
ABSL_FLAG(int, pg_pool_size, 16, "Connections per database pool");

int main(int argc, char** argv) {
  kurt::platform::SetFlagDefault(&FLAGS_grpc_port, 7104);
  kurt::platform::SetFlagDefault(&FLAGS_metrics_port, 9104);
  kurt::platform::InitProcess(argc, argv, "reports", "kurt-reports: the reports gRPC service");

  kurt::metrics::Registry registry;
  kurt::pg::PgCluster cluster(
      kurt::pg::PgCluster::OptionsFromFlags(absl::GetFlag(FLAGS_pg_pool_size)));

  kurt::reports::DirectoryStorageOptions storage_options;
  storage_options.dir = kurt::reports::ArtifactDirOrDefault(absl::GetFlag(FLAGS_artifact_dir));
  kurt::reports::DirectoryStorage storage(storage_options);
  if (absl::Status s = storage.Init(); !s.ok()) {
    KURT_LOG(kError, "bad --artifact_dir", {"error", s.ToString()});
    return 2;
  }

  kurt::kafka::ProducerOptions producer_options;
  producer_options.brokers = absl::GetFlag(FLAGS_kafka_brokers);
  producer_options.client_id = "kurt-reports";
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
  const bool run_relay = absl::GetFlag(FLAGS_outbox_relay);

  kurt::reports::PgReportsStoreOptions store_options;
  store_options.requested_topic = absl::GetFlag(FLAGS_requested_topic);
  store_options.pending_grace = absl::Seconds(absl::GetFlag(FLAGS_pending_grace_seconds));
  kurt::reports::PgReportsStore store(store_options, &cluster);
  kurt::reports::ReportsServiceOptions options;
  options.max_range = absl::Hours(24 * absl::GetFlag(FLAGS_max_range_days));
  kurt::reports::ReportsService service(options, &store, &storage,
                                        run_relay ? &relay : nullptr, &registry);

  kurt::platform::GrpcServer server(kurt::platform::GrpcServerOptions::FromFlags("reports"),
                                    &registry);
  server.AddService(&service);
  server.OnShutdown([&] {
    relay.Stop();
    absl::Status s = (*producer)->Flush(absl::Seconds(10));
    if (!s.ok()) KURT_LOG(kWarn, "events left unsent", {"error", s.ToString()});
  });
  if (absl::Status s = server.Start(); !s.ok()) {
    KURT_LOG(kError, "cannot start", {"error", s.ToString()});
    return 1;
  }
  if (run_relay) relay.Start();
  server.Wait();
  return 0;
}
