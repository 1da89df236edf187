// The report worker's view of report_jobs: claiming a job, renewing leases and recording
// progress, and finishing a job — each final state written with its kurt.reports.completed.v1
// event (and, for a failure, the job's request on the dead-letter topic) to the outbox in the
// same transaction. All of the worker's SQL on report_jobs is in job_store.cc.
//
// Every write after a claim is guarded by "still RUNNING and still this worker's": a worker whose
// lease ran out (and whose job another worker took over) or whose job was cancelled changes
// nothing, so a job finishes once whatever the crashes and redeliveries.
#pragma once

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "platform/kafka/kafka.h"
#include "platform/pg/pg.h"
#include "services/common/mesh.h"
#include "services/reports/report_job.h"

namespace kurt::report_worker {

enum class ClaimOutcome {
  // The job is this worker's now (RUNNING, attempts counted, leased).
  kClaimed,
  // Someone else's (a live lease), waiting out a retry backoff, or already final: nothing to do.
  kNotClaimable,
  // No such job.
  kUnknown,
  // Claimed too often without finishing (a poison job): it is FAILED now, its request on the
  // dead-letter topic.
  kGaveUp,
};

struct ClaimResult {
  ClaimOutcome outcome = ClaimOutcome::kNotClaimable;
  reports::ReportJob job;  // as it is after the claim
};

struct Artifact {
  std::string key;
  std::string content_type;
  int64_t rows = 0;
  int64_t size_bytes = 0;
};

class JobStore {
 public:
  virtual ~JobStore() = default;
  virtual absl::StatusOr<ClaimResult> Claim(const std::string& report_id) = 0;
  // Renews the lease and records the progress of each job this worker runs; returns the ids it
  // still holds (the others were cancelled or taken over).
  virtual absl::StatusOr<std::set<std::string>> Heartbeat(
      const std::vector<std::pair<std::string, int64_t>>& progress) = 0;
  // The final states; false when the job was no longer this worker's (nothing written).
  virtual absl::StatusOr<bool> Succeed(const reports::ReportJob& job, const Artifact& artifact) = 0;
  virtual absl::StatusOr<bool> Fail(const reports::ReportJob& job, const std::string& reason) = 0;
  // Leaves the job for any worker to claim after `backoff`, recording the error.
  virtual absl::StatusOr<bool> RetryLater(const reports::ReportJob& job, const std::string& reason,
                                          absl::Duration backoff) = 0;
  // Gives the job back at once, the attempt not counted (shutdown).
  virtual absl::Status Release(const reports::ReportJob& job) = 0;
  // Ids of PENDING or RUNNING jobs whose lease ran out, oldest first.
  virtual absl::StatusOr<std::vector<std::string>> Expired(int limit) = 0;
  // Sends a message that names no job it could run (unparseable, unknown report) to the
  // dead-letter topic, through the outbox.
  virtual absl::Status DeadLetter(const kafka::Message& message, const std::string& reason) = 0;
};

struct PgJobStoreOptions {
  std::string worker_id;
  // A RUNNING job whose worker has not renewed its lease for this long is taken over.
  absl::Duration lease = absl::Seconds(15);
  // Claims before a job that never finishes is failed as poison.
  int max_attempts = 3;
  std::string requested_topic = mesh::kReportsRequestedTopic;
  std::string completed_topic = mesh::kReportsCompletedTopic;
  std::string dead_letter_topic = mesh::kReportsDeadLetterTopic;
};

class PgJobStore : public JobStore {
 public:
  // `primary` outlives the store.
  PgJobStore(PgJobStoreOptions options, pg::PgPool* primary);

  absl::StatusOr<ClaimResult> Claim(const std::string& report_id) override;
  absl::StatusOr<std::set<std::string>> Heartbeat(
      const std::vector<std::pair<std::string, int64_t>>& progress) override;
  absl::StatusOr<bool> Succeed(const reports::ReportJob& job, const Artifact& artifact) override;
  absl::StatusOr<bool> Fail(const reports::ReportJob& job, const std::string& reason) override;
  absl::StatusOr<bool> RetryLater(const reports::ReportJob& job, const std::string& reason,
                                  absl::Duration backoff) override;
  absl::Status Release(const reports::ReportJob& job) override;
  absl::StatusOr<std::vector<std::string>> Expired(int limit) override;
  absl::Status DeadLetter(const kafka::Message& message, const std::string& reason) override;

  const PgJobStoreOptions& options() const { return options_; }

 private:
  // Marks the job FAILED (guarded by this worker's ownership unless `owned_check` is false, when
  // the caller holds the row lock) and writes its completion and dead letter.
  bool FailInTransaction(pqxx::work& tx, const reports::ReportJob& job, const std::string& reason,
                         bool owned_check);

  const PgJobStoreOptions options_;
  pg::PgPool* primary_;
};

}  // namespace kurt::report_worker
