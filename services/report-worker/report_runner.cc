#include "services/report-worker/report_runner.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "platform/core/log.h"

namespace kurt::report_worker {

using reports::ArtifactStorage;
using reports::ArtifactWriter;
using reports::ContentTypeOf;
using reports::ExtensionOf;
using reports::KindName;
using reports::ReportJob;

namespace {

// Errors no retry can fix: the job itself is wrong for this worker.
bool Permanent(const absl::Status& s) {
  return absl::IsInvalidArgument(s) || absl::IsFailedPrecondition(s) || absl::IsOutOfRange(s);
}

const char* OutcomeName(RunOutcome o) {
  switch (o) {
    case RunOutcome::kSucceeded:
      return "succeeded";
    case RunOutcome::kRetrying:
      return "retrying";
    case RunOutcome::kFailed:
      return "failed";
    case RunOutcome::kLost:
      return "lost";
    case RunOutcome::kReleased:
      return "released";
    case RunOutcome::kStoreError:
      return "store_error";
  }
  return "unknown";
}

}  // namespace

ReportRunner::ReportRunner(RunnerOptions options, JobStore* store, ReportSource* source,
                           ArtifactStorage* storage, metrics::Registry* registry)
    : options_(options),
      store_(store),
      source_(source),
      storage_(storage),
      outcomes_(&registry->AddCounter("kurt_report_worker_runs_total",
                                      "Report attempts run by this worker, by outcome",
                                      {"outcome"})),
      rows_(
          &registry->AddCounter("kurt_report_worker_rows_total", "Rows written to report artifacts")
               .Get()),
      duration_(&registry
                     ->AddHistogram("kurt_report_worker_run_seconds", "Time of one report attempt",
                                    {}, {0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600})
                     .Get()) {}

absl::Duration ReportRunner::Backoff(int attempts) const {
  absl::Duration d = options_.retry_backoff;
  for (int i = 1; i < attempts && d < options_.max_backoff; ++i) {
    d *= 2;
  }
  return std::min(d, options_.max_backoff);
}

std::string ReportRunner::ArtifactKey(const ReportJob& job) {
  return absl::StrCat(job.id, "-", job.attempts, ExtensionOf(job.kind));
}

RunOutcome ReportRunner::Failed(const ReportJob& job, const absl::Status& error) {
  std::string reason(error.message());
  absl::StatusOr<bool> done;
  RunOutcome outcome;
  if (Permanent(error) || job.attempts >= options_.max_attempts) {
    if (!Permanent(error)) {
      reason = absl::StrCat("gave up after ", job.attempts, " attempts: ", reason);
    }
    done = store_->Fail(job, reason);
    outcome = RunOutcome::kFailed;
  } else {
    done = store_->RetryLater(job, reason, Backoff(job.attempts));
    outcome = RunOutcome::kRetrying;
  }
  if (!done.ok()) {
    // The lease runs out and another worker (or this one) tries again.
    KURT_LOG(kError, "cannot record a report failure", {"report", job.id},
             {"error", done.status().ToString()});
    return RunOutcome::kStoreError;
  }
  if (!*done) {
    return RunOutcome::kLost;
  }
  if (outcome == RunOutcome::kFailed) {
    KURT_LOG(kError, "report failed", {"report", job.id}, {"attempt", job.attempts},
             {"error", reason});
  } else {
    KURT_LOG(kWarn, "report attempt failed; will retry", {"report", job.id},
             {"attempt", job.attempts}, {"error", reason});
  }
  return outcome;
}

RunOutcome ReportRunner::Run(const ReportJob& job, JobControl* control) {
  const absl::Time start = absl::Now();
  log::RequestScope scope(job.id);
  KURT_LOG(kInfo, "report started", {"report", job.id}, {"kind", KindName(job.kind)},
           {"attempt", job.attempts});
  const std::string key = ArtifactKey(job);
  RunOutcome outcome;
  absl::StatusOr<std::unique_ptr<ArtifactWriter>> writer = storage_->Create(key);
  absl::StatusOr<int64_t> rows = absl::UnknownError("not run");
  if (!writer.ok()) {
    rows = writer.status();
  } else {
    rows = source_->Write(job, writer->get(), [&](int64_t n) {
      control->progress = n;
      return control->stop.load() == JobControl::kRun;
    });
  }
  absl::StatusOr<int64_t> size = rows.ok() ? (*writer)->Commit() : rows.status();
  if (writer.ok()) {
    writer->reset();  // an uncommitted artifact is discarded here
  }

  if (control->stop.load() == JobControl::kShutdown) {
    if (size.ok()) {
      (void)storage_->Delete(key);
    }
    absl::Status s = store_->Release(job);
    if (!s.ok()) {
      KURT_LOG(kWarn, "cannot release a report", {"error", s.ToString()});
    }
    outcome = RunOutcome::kReleased;
  } else if (control->stop.load() == JobControl::kLost) {
    if (size.ok()) {
      (void)storage_->Delete(key);
    }
    KURT_LOG(kInfo, "report no longer ours (cancelled or taken over); stopped", {"report", job.id});
    outcome = RunOutcome::kLost;
  } else if (!size.ok()) {
    outcome = Failed(job, size.status());
  } else {
    Artifact artifact{key, ContentTypeOf(job.kind), *rows, *size};
    absl::StatusOr<bool> done = store_->Succeed(job, artifact);
    if (!done.ok() || !*done) {
      (void)storage_->Delete(key);
    }
    if (!done.ok()) {
      KURT_LOG(kError, "cannot record a finished report", {"report", job.id},
               {"error", done.status().ToString()});
      outcome = RunOutcome::kStoreError;
    } else if (!*done) {
      outcome = RunOutcome::kLost;
    } else {
      rows_->Increment(static_cast<double>(*rows));
      KURT_LOG(kInfo, "report succeeded", {"report", job.id}, {"rows", *rows}, {"bytes", *size},
               {"seconds", absl::ToDoubleSeconds(absl::Now() - start)});
      outcome = RunOutcome::kSucceeded;
    }
  }
  outcomes_->WithLabels({OutcomeName(outcome)}).Increment();
  duration_->ObserveDuration(absl::Now() - start);
  return outcome;
}

}  // namespace kurt::report_worker
