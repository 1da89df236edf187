#include "tests/reports/pipeline.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/reports/report_test_support.h"

namespace kurt::testing {

std::unique_ptr<grpc::ClientContext> As(const std::string& account, absl::Duration deadline) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  if (!account.empty()) {
    ctx->AddMetadata("x-kurt-account-id", account);
  }
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  return ctx;
}

Pipeline::Pipeline(const PipelineOptions& options) {
  requested_ = RandomName("kurt.test.reports.requested.");
  completed_ = RandomName("kurt.test.reports.completed.");
  dlq_ = RandomName("kurt.test.reports.dlq.");
  for (const std::string& t : {requested_, completed_, dlq_}) {
    CreateTopic(t, 3);
  }
  artifact_dir_ = TempDir("kurt-artifacts-");

  pg::ClusterOptions po = db_.ClusterOptions();
  po.primary.max_connections = 16;
  po.replicas[0].max_connections = 8;
  po.check_interval = absl::Milliseconds(100);
  cluster_ = std::make_unique<pg::PgCluster>(po);

  kafka::ProducerOptions ko;
  ko.brokers = KafkaBrokers();
  producer_ = std::move(*kafka::KafkaProducer::Create(ko));

  // The reports service.
  reports::ReportsConfig rc;
  rc.artifacts.dir = artifact_dir_;
  rc.requested_topic = requested_;
  rc.outbox_listen_url = db_.primary_url();
  rc.max_streams_per_account = options.max_report_streams_per_account;
  auto reports = reports::ReportsModule::Create(
      rc, {.cluster = cluster_.get(), .producer = producer_.get(), .registry = &registry_});
  if (!reports.ok()) {
    throw std::runtime_error(reports.status().ToString());
  }
  reports_ = *std::move(reports);
  platform::GrpcServerOptions go;
  go.name = "reports";
  go.metrics_port = -1;
  go.shutdown_grace = absl::Seconds(1);
  go.edge_secret = options.edge_secret;
  reports_server_ = std::make_unique<platform::GrpcServer>(go, &registry_);
  reports_server_->AddService(reports_->service());
  if (!reports_server_->Start().ok()) {
    throw std::runtime_error("reports server");
  }
  reports_stub_ = reports::v1::ReportsService::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", reports_server_->grpc_port()),
                          grpc::InsecureChannelCredentials()));

  // The worker.
  report_worker::WorkerConfig wc;
  wc.artifacts.dir = artifact_dir_;
  wc.kafka_brokers = KafkaBrokers();
  wc.requested_topic = requested_;
  wc.completed_topic = completed_;
  wc.dead_letter_topic = dlq_;
  wc.consumer_group = RandomName("kurt-test-workers-");
  wc.worker_id = "worker-under-test";
  wc.lease = absl::Seconds(3);
  wc.heartbeat_interval = absl::Milliseconds(100);
  wc.lease_scan_interval = absl::Milliseconds(300);
  wc.retry_backoff = absl::Milliseconds(200);
  wc.scan_chunk_rows = options.scan_chunk_rows;
  wc.scan_max_rows_per_second = options.scan_rows_per_second;
  wc.outbox_listen_url = db_.primary_url();
  auto worker = report_worker::WorkerModule::Create(
      wc, {.cluster = cluster_.get(), .producer = producer_.get(), .registry = &registry_});
  if (!worker.ok()) {
    throw std::runtime_error(worker.status().ToString());
  }
  worker_ = *std::move(worker);

  // Two notifications replicas in one consumer group.
  pg::PoolOptions np;
  np.url = db_.primary_url();
  np.max_connections = 16;
  primary_ = std::make_unique<pg::PgPool>(np);
  poster_ = std::make_unique<notifications::BeastHttpPoster>();
  const std::string group = RandomName("kurt-test-notifications-");
  for (int i = 0; i < 2; ++i) {
    auto r = std::make_unique<NotificationsReplica>();
    notifications::NotificationsConfig nc;
    nc.kafka_brokers = KafkaBrokers();
    nc.completed_topic = completed_;
    nc.consumer_group = group;
    nc.listen_url = db_.primary_url();
    nc.rpcs.allow_internal_webhooks = i == 0;
    nc.rpcs.stream_poll = absl::Seconds(30);  // live delivery must come from the wake-ups
    nc.webhook_sender.allow_internal = true;
    nc.webhook_sender.backoff = absl::Milliseconds(200);
    nc.webhook_sender.poll_interval = absl::Milliseconds(100);
    nc.webhook_sender.timeout = absl::Seconds(2);
    nc.webhook_sender.resolve_timeout = absl::Seconds(1);
    nc.webhook_sender.lease = absl::Seconds(5);
    auto module = notifications::NotificationsModule::Create(
        nc, {.primary = primary_.get(), .registry = &registry_, .poster = poster_.get()});
    if (!module.ok()) {
      throw std::runtime_error(module.status().ToString());
    }
    r->module = *std::move(module);
    platform::GrpcServerOptions ngo;
    ngo.name = "notifications";
    ngo.metrics_port = -1;
    ngo.shutdown_grace = absl::Seconds(1);
    ngo.edge_secret = options.edge_secret;
    r->server = std::make_unique<platform::GrpcServer>(ngo, &registry_);
    r->server->AddService(r->module->service());
    if (!r->server->Start().ok()) {
      throw std::runtime_error("notifications server");
    }
    r->stub = notifications::v1::NotificationsService::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", r->server->grpc_port()), grpc::InsecureChannelCredentials()));
    r->module->Start();
    replicas_.push_back(std::move(r));
  }

  reports_->Start();
  worker_->Start();
  // Every consumer in its group before the test starts (and before any could be closed).
  bool joined = worker_->WaitForAssignment(absl::Seconds(30));
  for (auto& r : replicas_) {
    joined = r->module->WaitForAssignment(absl::Seconds(30)) && joined;
  }
  if (!joined) {
    throw std::runtime_error("consumers did not join their groups within 30 s");
  }
}

Pipeline::~Pipeline() {
  worker_->Stop();
  for (auto& r : replicas_) {
    r->module->Stop();
    r->server->Shutdown();
  }
  reports_server_->Shutdown();
  reports_->Stop();
  std::filesystem::remove_all(artifact_dir_);
}

reports::v1::Report Pipeline::WaitFinal(const std::string& account, const std::string& id,
                                        absl::Duration timeout) {
  reports::v1::Report report;
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    reports::v1::GetReportRequest req;
    req.set_id(id);
    if (reports_stub_->GetReport(As(account).get(), req, &report).ok() &&
        (report.state() == reports::v1::SUCCEEDED || report.state() == reports::v1::FAILED ||
         report.state() == reports::v1::CANCELLED)) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return report;
}

grpc::Status Pipeline::Download(const std::string& account, const std::string& id,
                                std::string* content, std::string* content_type) {
  reports::v1::GetReportContentRequest req;
  req.set_id(id);
  auto ctx = As(account, absl::Seconds(60));
  auto reader = reports_stub_->GetReportContent(ctx.get(), req);
  google::api::HttpBody body;
  content->clear();
  while (reader->Read(&body)) {
    content->append(body.data());
    if (content_type) {
      *content_type = body.content_type();
    }
  }
  return reader->Finish();
}

}  // namespace kurt::testing
