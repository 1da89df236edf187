// The whole report workflow in one process, on the real stack: the reports service and a report
// worker (consumer group, leases, COPY scans), each with its outbox relay, and two notifications
// replicas (one consumer group, a LISTEN hub each, a webhook sender), each wired by its module as
// its binary is, on topics and a scratch database of their own. Integration tests drive it
// through gRPC.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "kurt/notifications/v1/notifications.grpc.pb.h"
#include "kurt/reports/v1/reports.grpc.pb.h"
#include "platform/grpc/server.h"
#include "platform/kafka/kafka.h"
#include "platform/pg/pg.h"
#include "services/notifications/http_client.h"
#include "services/notifications/notifications_module.h"
#include "services/report-worker/worker_module.h"
#include "services/reports/reports_module.h"
#include "tests/support/stack_env.h"

namespace kurt::testing {

struct PipelineOptions {
  int64_t scan_rows_per_second = 0;
  int64_t scan_chunk_rows = 1000;
  // The gRPC servers' --edge_secret (empty: x-kurt-account-id is trusted from anyone).
  std::string edge_secret;
  // kurt-reports' StreamReport streams per account.
  int max_report_streams_per_account = 10;
};

// One notifications replica: its module (hub, webhook sender, consumer) on its own gRPC server.
struct NotificationsReplica {
  std::unique_ptr<notifications::NotificationsModule> module;
  std::unique_ptr<platform::GrpcServer> server;
  std::unique_ptr<notifications::v1::NotificationsService::Stub> stub;
};

class Pipeline {
 public:
  explicit Pipeline(const PipelineOptions& options = {});
  ~Pipeline();

  ScratchDatabase& db() { return db_; }
  reports::v1::ReportsService::Stub& reports() { return *reports_stub_; }
  // Replica 0 allows webhooks to loopback (as tests need), replica 1 does not.
  NotificationsReplica& notifications(int i) { return *replicas_[i]; }
  report_worker::Worker& worker() { return worker_->worker(); }
  kafka::KafkaProducer& producer() { return *producer_; }
  const std::string& requested_topic() const { return requested_; }
  const std::string& completed_topic() const { return completed_; }
  const std::string& dlq_topic() const { return dlq_; }
  const std::string& artifact_dir() const { return artifact_dir_; }

  // Waits until the report is in a final state (or `timeout`); returns it as last seen.
  reports::v1::Report WaitFinal(const std::string& account, const std::string& id,
                                absl::Duration timeout = absl::Seconds(30));
  // The report's content through GetReportContent.
  grpc::Status Download(const std::string& account, const std::string& id, std::string* content,
                        std::string* content_type = nullptr);

 private:
  ScratchDatabase db_;
  metrics::Registry registry_;
  std::string requested_, completed_, dlq_, artifact_dir_;
  std::unique_ptr<pg::PgCluster> cluster_;
  std::unique_ptr<pg::PgPool> primary_;
  std::unique_ptr<kafka::KafkaProducer> producer_;
  std::unique_ptr<reports::ReportsModule> reports_;
  std::unique_ptr<platform::GrpcServer> reports_server_;
  std::unique_ptr<reports::v1::ReportsService::Stub> reports_stub_;
  std::unique_ptr<report_worker::WorkerModule> worker_;
  std::unique_ptr<notifications::BeastHttpPoster> poster_;
  std::vector<std::unique_ptr<NotificationsReplica>> replicas_;
};

// A caller's context: account metadata and a deadline.
std::unique_ptr<grpc::ClientContext> As(const std::string& account,
                                        absl::Duration deadline = absl::Seconds(10));

}  // namespace kurt::testing
