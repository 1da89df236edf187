#include "services/report-worker/artifact_janitor.h"

#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "platform/core/log.h"
#include "services/reports/report_job.h"

namespace kurt::report_worker {

std::optional<Attempt> AttemptOfKey(absl::string_view key) {
  constexpr size_t kIdLength = 36;
  if (key.size() < kIdLength + 2 || key[kIdLength] != '-') {
    return std::nullopt;
  }
  absl::string_view id = key.substr(0, kIdLength);
  absl::string_view rest = key.substr(kIdLength + 1);
  rest = rest.substr(0, rest.find('.'));
  int attempt = 0;
  if (!reports::IsReportId(id) || rest.empty() || !absl::SimpleAtoi(rest, &attempt) ||
      attempt < 0) {
    return std::nullopt;
  }
  return Attempt{std::string(id), attempt};
}

ArtifactJanitor::ArtifactJanitor(JanitorOptions options, JanitorStore* store,
                                 reports::ArtifactStorage* storage, metrics::Registry* registry)
    : options_(options),
      store_(store),
      storage_(storage),
      swept_(&registry
                  ->AddCounter("kurt_report_worker_temporaries_swept_total",
                               "Temporary artifact files and uploads of dead writers removed")
                  .Get()),
      expired_(&registry
                    ->AddCounter("kurt_report_worker_artifacts_expired_total",
                                 "Artifacts deleted after the retention period (reports EXPIRED)")
                    .Get()),
      errors_(&registry->AddCounter("kurt_report_worker_janitor_errors_total",
                                    "Janitor passes that failed, by task (sweep, expire)",
                                    {"task"})) {}

ArtifactJanitor::~ArtifactJanitor() { Stop(); }

void ArtifactJanitor::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (thread_.joinable() || stopping_) {
    return;
  }
  thread_ = std::thread([this] { Loop(); });
}

void ArtifactJanitor::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

void ArtifactJanitor::Loop() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (cv_.wait_for(lock, absl::ToChronoMilliseconds(options_.interval),
                       [&] { return stopping_; })) {
        return;
      }
    }
    if (absl::StatusOr<int> n = SweepTemporaries(); !n.ok()) {
      errors_->WithLabels({"sweep"}).Increment();
      KURT_LOG(kWarn, "sweeping temporary artifacts failed", {"error", n.status().ToString()});
    }
    if (absl::StatusOr<int> n = ExpireArtifacts(); !n.ok()) {
      errors_->WithLabels({"expire"}).Increment();
      KURT_LOG(kWarn, "expiring artifacts failed", {"error", n.status().ToString()});
    }
  }
}

absl::StatusOr<int> ArtifactJanitor::SweepTemporaries() {
  absl::StatusOr<std::vector<reports::Temporary>> temporaries = storage_->ListTemporaries();
  if (!temporaries.ok()) {
    return temporaries.status();
  }
  const absl::Time now = absl::Now();
  std::vector<reports::Temporary> old;
  std::vector<Attempt> attempts;
  for (reports::Temporary& t : *temporaries) {
    if (now - t.modified < options_.temp_min_age) {
      continue;
    }
    if (std::optional<Attempt> a = AttemptOfKey(t.key)) {
      attempts.push_back(*a);
    }
    old.push_back(std::move(t));
  }
  if (old.empty()) {
    return 0;
  }
  // Listed before asked: an attempt's temporary exists only once its claim committed, so an
  // attempt found not RUNNING here is over for good.
  absl::StatusOr<std::set<Attempt>> live = store_->LiveAttempts(attempts);
  if (!live.ok()) {
    return live.status();
  }
  int removed = 0;
  absl::Status first_error;
  for (const reports::Temporary& t : old) {
    if (std::optional<Attempt> a = AttemptOfKey(t.key); a && live->count(*a) > 0) {
      continue;
    }
    if (absl::Status s = storage_->RemoveTemporary(t); !s.ok()) {
      first_error.Update(s);
      continue;
    }
    ++removed;
    swept_->Increment();
    KURT_LOG(kInfo, "temporary artifact of a dead writer removed", {"key", t.key},
             {"temporary", t.handle}, {"modified", absl::FormatTime(t.modified)});
  }
  if (!first_error.ok() && removed == 0) {
    return first_error;
  }
  return removed;
}

absl::StatusOr<int> ArtifactJanitor::ExpireArtifacts() {
  if (options_.retention > absl::ZeroDuration()) {
    for (;;) {
      absl::StatusOr<int> n = store_->ExpireFinished(options_.retention, options_.batch);
      if (!n.ok()) {
        return n.status();
      }
      if (*n > 0) {
        KURT_LOG(kInfo, "reports expired", {"count", std::to_string(*n)});
      }
      if (*n < options_.batch) {
        break;
      }
    }
  }
  // Also the deletions a janitor that died after expiring left behind.
  int deleted = 0;
  for (;;) {
    absl::StatusOr<std::vector<ExpiredArtifact>> batch = store_->ArtifactsToDelete(options_.batch);
    if (!batch.ok()) {
      return batch.status();
    }
    int done = 0;
    for (const ExpiredArtifact& a : *batch) {
      absl::Status s = storage_->Delete(a.key);
      if (absl::IsInvalidArgument(s)) {
        // No storage object can have this name: there is nothing to delete.
        KURT_LOG(kError, "expired report names no artifact", {"report", a.report_id},
                 {"key", a.key});
        s = absl::OkStatus();
      }
      if (!s.ok()) {
        // Left for the next pass (the report already says EXPIRED).
        KURT_LOG(kWarn, "expired artifact not deleted", {"report", a.report_id}, {"key", a.key},
                 {"error", s.ToString()});
        return s;
      }
      absl::StatusOr<bool> forgotten = store_->ForgetArtifact(a);
      if (!forgotten.ok()) {
        return forgotten.status();
      }
      ++done;
      if (*forgotten) {  // else another janitor deleted it too, and counted it
        ++deleted;
        expired_->Increment();
      }
    }
    if (done < options_.batch) {
      break;
    }
  }
  return deleted;
}

}  // namespace kurt::report_worker
