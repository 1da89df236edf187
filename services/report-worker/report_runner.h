// Runs one claimed report job to its end: scans into a new artifact, and records the outcome —
// SUCCEEDED with the artifact; a retry after a backoff; FAILED (with its dead letter) once the
// attempts are used up or the error is one a retry cannot fix; or nothing at all when the job
// stopped being this worker's (cancelled, or taken over after a lost lease), in which case the
// artifact is discarded.
//
// Thread-safe: the worker calls Run from one thread per job.
#pragma once

#include <atomic>
#include <string>

#include "absl/time/time.h"
#include "platform/core/metrics.h"
#include "services/report-worker/job_store.h"
#include "services/report-worker/report_source.h"
#include "services/reports/artifact_storage.h"

namespace kurt::report_worker {

// Shared by a running job and the worker: progress for the heartbeat, and why to stop.
struct JobControl {
  enum Stop { kRun = 0, kLost = 1, kShutdown = 2 };
  std::atomic<int64_t> progress{0};
  std::atomic<int> stop{kRun};
};

struct RunnerOptions {
  int max_attempts = 3;
  // Before the second attempt; doubled for each further one, up to max_backoff.
  absl::Duration retry_backoff = absl::Seconds(2);
  absl::Duration max_backoff = absl::Minutes(5);
};

enum class RunOutcome { kSucceeded, kRetrying, kFailed, kLost, kReleased, kStoreError };

class ReportRunner {
 public:
  // Every pointer outlives the runner.
  ReportRunner(RunnerOptions options, JobStore* store, ReportSource* source,
               reports::ArtifactStorage* storage, metrics::Registry* registry);

  RunOutcome Run(const reports::ReportJob& job, JobControl* control);

  // The backoff before attempt `attempts + 1`.
  absl::Duration Backoff(int attempts) const;
  // The artifact key of one attempt: attempts never share a file.
  static std::string ArtifactKey(const reports::ReportJob& job);

 private:
  RunOutcome Failed(const reports::ReportJob& job, const absl::Status& error);

  const RunnerOptions options_;
  JobStore* store_;
  ReportSource* source_;
  reports::ArtifactStorage* storage_;
  metrics::Family<metrics::Counter>* outcomes_;
  metrics::Counter* rows_;
  metrics::Histogram* duration_;
};

}  // namespace kurt::report_worker
