// The report workflow as real processes on the real stack, for fault and end-to-end tests:
// kurt-reports, any number of kurt-report-worker, kurt-notifications (and, for the end-to-end
// test, kurt-links, kurt-analytics and kurt-edge), each on free ports, with topics, a consumer
// group, an artifact directory and a scratch database of the test's own. Logs go to files under
// the test's directory; a failing test prints their tails.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kurt/notifications/v1/notifications.grpc.pb.h"
#include "kurt/reports/v1/reports.grpc.pb.h"
#include "tests/reports/report_test_support.h"

namespace kurt::testing {

// Every binary of a Deployment runs with --edge_secret=kDeploymentEdgeSecret, as tools/run gives
// one secret to all: the edge sends it, and a direct gRPC call that names an account must too.
inline constexpr char kDeploymentEdgeSecret[] = "deployment-edge-secret";

struct Service {
  std::unique_ptr<ChildProcess> process;
  int grpc_port = 0;
  int http_port = 0;
};

class Deployment {
 public:
  Deployment();
  ~Deployment();

  // Starts a binary with the common flags (database, brokers, ports, topics) plus `extra`
  // (where "{http_port}" stands for the HTTP port chosen for it); waits until it is ready.
  // `name` is its key here and its log file's name.
  Service& Start(const std::string& name, const std::string& binary,
                 const std::vector<std::string>& extra = {});
  Service& StartReports(const std::vector<std::string>& extra = {});
  Service& StartWorker(const std::string& name, const std::vector<std::string>& extra = {});
  Service& StartNotifications(const std::vector<std::string>& extra = {});
  Service& Get(const std::string& name) { return services_.at(name); }
  bool Has(const std::string& name) const { return services_.count(name) > 0; }

  std::unique_ptr<reports::v1::ReportsService::Stub> ReportsStub();
  std::unique_ptr<notifications::v1::NotificationsService::Stub> NotificationsStub();

  // The report once final (or as last seen when `timeout` passes).
  reports::v1::Report WaitFinal(const std::string& account, const std::string& id,
                                absl::Duration timeout);
  grpc::Status Download(const std::string& account, const std::string& id, std::string* content);

  // The tails of every log, for failure messages.
  std::string Logs(int lines = 15) const;

  ScratchDatabase& db() { return db_; }
  const std::string& requested_topic() const { return requested_; }
  const std::string& completed_topic() const { return completed_; }
  const std::string& dlq_topic() const { return dlq_; }
  const std::string& artifact_dir() const { return artifact_dir_; }
  const std::string& dir() const { return dir_; }

 private:
  // Flags every Kurt binary has (platform/core).
  std::vector<std::string> CommonFlags(const Service& s) const;
  // The rest of the shared settings, as environment twins: a binary reads those of the clients
  // it links and ignores the others, as a pod does its ConfigMaps (a flag it lacks is refused).
  std::vector<std::string> CommonEnvironment(const Service& s) const;

  ScratchDatabase db_;
  std::string requested_, completed_, dlq_, worker_group_, notifications_group_;
  std::string dir_, artifact_dir_;
  std::map<std::string, Service> services_;
  std::vector<std::string> order_;
};

}  // namespace kurt::testing
