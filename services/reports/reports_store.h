// Where the reports service keeps report jobs: the interface the service uses and its
// PostgreSQL implementation (all of the service's SQL is in reports_store.cc). Creating a job
// writes its kurt.reports.requested.v1 event to the outbox in the same transaction. Gets and
// cancels go to the primary (a job just created must be found); lists read a replica.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "platform/grpc/pagination.h"
#include "platform/pg/pg.h"
#include "services/common/mesh.h"
#include "services/reports/report_job.h"

namespace kurt::reports {

struct NewReport {
  std::string account_id;
  std::string request_id;  // "" for none
  ReportKind kind = v1::REPORT_KIND_UNSPECIFIED;
  std::string code;  // "" for every link
  absl::Time start_time;
  absl::Time end_time;
};

struct CreateResult {
  ReportJob job;
  // False when request_id found the job of an earlier request.
  bool created = false;
};

class ReportsStore {
 public:
  virtual ~ReportsStore() = default;
  // ALREADY_EXISTS when request_id was used for a report with different parameters;
  // RESOURCE_EXHAUSTED (creating nothing) when the account's quota does not allow another report,
  // with the limit that refused it as the status payload kQuotaPayload ("active" or "daily").
  // A request_id that names an existing job finds it whatever the quota.
  virtual absl::StatusOr<CreateResult> Create(const NewReport& report) = 0;
  // NOT_FOUND unless the account owns the job.
  virtual absl::StatusOr<ReportJob> Get(const std::string& account_id, const std::string& id) = 0;
  // The account's jobs, newest first, after `after` (create_time, id) when given.
  virtual absl::StatusOr<std::vector<ReportJob>> List(
      const std::string& account_id, int limit, const std::optional<platform::PageKey>& after) = 0;
  // Cancels a PENDING or RUNNING job; returns it as it is now (also when it was already final).
  virtual absl::StatusOr<ReportJob> Cancel(const std::string& account_id,
                                           const std::string& id) = 0;
  // Whether the account has a link with this code (deleted ones included: their clicks stay
  // the account's).
  virtual absl::StatusOr<bool> OwnsLink(const std::string& account_id, const std::string& code) = 0;
};

// The payload of a quota refusal's status: which limit refused it.
inline constexpr char kQuotaPayload[] = "type.kurt.dev/kurt.reports.QuotaLimit";

// How many reports an account may have; 0 for no limit.
struct ReportQuota {
  // PENDING or RUNNING at once.
  int max_active = 10;
  // Created in any 24 hours (whatever became of them).
  int max_per_day = 200;
};

struct PgReportsStoreOptions {
  std::string requested_topic = mesh::kReportsRequestedTopic;
  // How long a new job waits for its Kafka message before workers' scans claim it anyway.
  absl::Duration pending_grace = absl::Seconds(60);
  ReportQuota quota;
};

class PgReportsStore : public ReportsStore {
 public:
  // `cluster` outlives the store.
  PgReportsStore(PgReportsStoreOptions options, pg::PgCluster* cluster);

  absl::StatusOr<CreateResult> Create(const NewReport& report) override;
  absl::StatusOr<ReportJob> Get(const std::string& account_id, const std::string& id) override;
  absl::StatusOr<std::vector<ReportJob>> List(
      const std::string& account_id, int limit,
      const std::optional<platform::PageKey>& after) override;
  absl::StatusOr<ReportJob> Cancel(const std::string& account_id, const std::string& id) override;
  absl::StatusOr<bool> OwnsLink(const std::string& account_id, const std::string& code) override;

 private:
  const PgReportsStoreOptions options_;
  pg::PgCluster* cluster_;
};

}  // namespace kurt::reports
