#include "tests/reports/deployment.h"

#include <signal.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace kurt::testing {

Deployment::Deployment() {
  requested_ = RandomName("kurt.test.reports.requested.");
  completed_ = RandomName("kurt.test.reports.completed.");
  dlq_ = RandomName("kurt.test.reports.dlq.");
  for (const std::string& t : {requested_, completed_, dlq_}) {
    CreateTopic(t, 3);
  }
  worker_group_ = RandomName("kurt-test-workers-");
  notifications_group_ = RandomName("kurt-test-notifications-");
  dir_ = TempDir("kurt-deployment-");
  artifact_dir_ = dir_ + "/artifacts";
}

Deployment::~Deployment() {
  // Stop in reverse order of start; SIGTERM first (graceful), SIGKILL if it hangs.
  for (auto it = order_.rbegin(); it != order_.rend(); ++it) {
    Service& s = services_.at(*it);
    if (!s.process->Stop(SIGTERM, absl::Seconds(15))) {
      s.process->Stop(SIGKILL);
    }
  }
  if (::testing::Test::HasFailure()) {
    std::fprintf(stderr, "---- logs of the processes under test (%s) ----\n%s\n", dir_.c_str(),
                 Logs().c_str());
  } else {
    std::filesystem::remove_all(dir_);  // kept for a look when the test failed
  }
}

std::vector<std::string> Deployment::CommonFlags(const Service& s) const {
  return {"--listen_host=127.0.0.1", absl::StrCat("--metrics_port=", s.http_port),
          "--shutdown_grace=2s"};
}

std::vector<std::string> Deployment::CommonEnvironment(const Service& s) const {
  return {absl::StrCat("KURT_GRPC_PORT=", s.grpc_port),
          absl::StrCat("KURT_PG_PRIMARY_URL=", db_.primary_url()),
          absl::StrCat("KURT_PG_REPLICA_URL=", db_.replica_url()),
          absl::StrCat("KURT_KAFKA_BROKERS=", KafkaBrokers()),
          absl::StrCat("KURT_EDGE_SECRET=", kDeploymentEdgeSecret),
          "KURT_REDIS_RECORD_SECRET=deployment-record-secret"};
}

Service& Deployment::Start(const std::string& name, const std::string& binary,
                           const std::vector<std::string>& extra) {
  Service s;
  s.grpc_port = FreePort();
  s.http_port = FreePort();
  std::vector<std::string> args = CommonFlags(s);
  for (std::string a : extra) {
    // "{http_port}" stands for the port chosen here (binaries whose HTTP port has its own flag).
    if (size_t at = a.find("{http_port}"); at != std::string::npos) {
      a.replace(at, 11, std::to_string(s.http_port));
    }
    args.push_back(std::move(a));
  }
  s.process = std::make_unique<ChildProcess>(
      BinaryPath(binary), args, absl::StrCat(dir_, "/", name, ".log"), CommonEnvironment(s));
  absl::Status started = s.process->Start();
  if (!started.ok()) {
    throw std::runtime_error(started.ToString());
  }
  services_[name] = std::move(s);
  order_.push_back(name);
  Service& ref = services_.at(name);
  if (!WaitReady(ref.http_port, absl::Seconds(30))) {
    throw std::runtime_error(
        absl::StrCat(name, " not ready within 30 s:\n", ref.process->LogTail()));
  }
  return ref;
}

Service& Deployment::StartReports(const std::vector<std::string>& extra) {
  std::vector<std::string> args = {absl::StrCat("--artifact_dir=", artifact_dir_),
                                   absl::StrCat("--requested_topic=", requested_)};
  args.insert(args.end(), extra.begin(), extra.end());
  return Start("reports", "kurt-reports", args);
}

Service& Deployment::StartWorker(const std::string& name, const std::vector<std::string>& extra) {
  std::vector<std::string> args = {absl::StrCat("--artifact_dir=", artifact_dir_),
                                   absl::StrCat("--requested_topic=", requested_),
                                   absl::StrCat("--completed_topic=", completed_),
                                   absl::StrCat("--dead_letter_topic=", dlq_),
                                   absl::StrCat("--consumer_group=", worker_group_),
                                   absl::StrCat("--worker_id=", name)};
  args.insert(args.end(), extra.begin(), extra.end());
  return Start(name, "kurt-report-worker", args);
}

Service& Deployment::StartNotifications(const std::vector<std::string>& extra) {
  std::vector<std::string> args = {absl::StrCat("--completed_topic=", completed_),
                                   absl::StrCat("--consumer_group=", notifications_group_),
                                   "--allow_private_webhooks"};
  args.insert(args.end(), extra.begin(), extra.end());
  return Start("notifications", "kurt-notifications", args);
}

std::unique_ptr<reports::v1::ReportsService::Stub> Deployment::ReportsStub() {
  return reports::v1::ReportsService::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", Get("reports").grpc_port), grpc::InsecureChannelCredentials()));
}

std::unique_ptr<notifications::v1::NotificationsService::Stub> Deployment::NotificationsStub() {
  return notifications::v1::NotificationsService::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", Get("notifications").grpc_port),
                          grpc::InsecureChannelCredentials()));
}

reports::v1::Report Deployment::WaitFinal(const std::string& account, const std::string& id,
                                          absl::Duration timeout) {
  auto stub = ReportsStub();
  reports::v1::Report report;
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("x-kurt-account-id", account);
    ctx.AddMetadata("x-kurt-edge-secret", kDeploymentEdgeSecret);
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    reports::v1::GetReportRequest req;
    req.set_id(id);
    if (stub->GetReport(&ctx, req, &report).ok() &&
        (report.state() == reports::v1::SUCCEEDED || report.state() == reports::v1::FAILED ||
         report.state() == reports::v1::CANCELLED)) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  return report;
}

grpc::Status Deployment::Download(const std::string& account, const std::string& id,
                                  std::string* content) {
  auto stub = ReportsStub();
  grpc::ClientContext ctx;
  ctx.AddMetadata("x-kurt-account-id", account);
  ctx.AddMetadata("x-kurt-edge-secret", kDeploymentEdgeSecret);
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
  reports::v1::GetReportContentRequest req;
  req.set_id(id);
  auto reader = stub->GetReportContent(&ctx, req);
  google::api::HttpBody body;
  content->clear();
  while (reader->Read(&body)) {
    content->append(body.data());
  }
  return reader->Finish();
}

std::string Deployment::Logs(int lines) const {
  std::string out;
  for (const std::string& name : order_) {
    absl::StrAppend(&out, "== ", name, " ==\n", services_.at(name).process->LogTail(lines), "\n");
  }
  return out;
}

}  // namespace kurt::testing
