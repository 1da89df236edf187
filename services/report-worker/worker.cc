#include "services/report-worker/worker.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "kurt/events/v1/report_events.pb.h"
#include "platform/core/log.h"

namespace kurt::report_worker {

using reports::IsReportId;
using reports::ReportJob;

Worker::Worker(WorkerOptions options, JobStore* store, ReportRunner* runner,
               metrics::Registry* registry)
    : options_(options),
      store_(store),
      runner_(runner),
      running_gauge_(
          &registry
               ->AddGauge("kurt_report_worker_running_jobs", "Report jobs this worker is running")
               .Get()),
      claims_(&registry->AddCounter("kurt_report_worker_claims_total",
                                    "Claim attempts, by how they ended and what caused them",
                                    {"outcome"})),
      dead_letters_(&registry
                         ->AddCounter("kurt_report_worker_dead_letters_total",
                                      "Request messages sent to the dead-letter topic because "
                                      "they name no runnable job")
                         .Get()) {}

Worker::~Worker() { Stop(); }

void Worker::Start() {
  heartbeat_ = std::thread([this] { HeartbeatLoop(); });
  scanner_ = std::thread([this] { ScanLoop(); });
}

void Worker::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && !heartbeat_.joinable()) {
      return;
    }
    stopping_ = true;
    for (auto& [id, control] : jobs_) {
      control->stop = JobControl::kShutdown;
    }
  }
  cv_.notify_all();
  if (scanner_.joinable()) {
    scanner_.join();
  }
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return busy_ == 0; });
  }
  if (heartbeat_.joinable()) {
    heartbeat_.join();
  }
}

int Worker::running() const {
  std::lock_guard<std::mutex> lock(mu_);
  return busy_;
}

bool Worker::AcquireSlot(absl::Duration wait) {
  std::unique_lock<std::mutex> lock(mu_);
  bool ok = cv_.wait_for(lock, absl::ToChronoMilliseconds(wait),
                         [&] { return stopping_ || busy_ < options_.max_concurrent_jobs; });
  if (!ok || stopping_) {
    return false;
  }
  ++busy_;
  running_gauge_->Set(busy_);
  return true;
}

void Worker::ReleaseSlot() {
  // Notified under the lock: once busy_ reaches 0, Stop may return and the worker go away.
  std::lock_guard<std::mutex> lock(mu_);
  --busy_;
  running_gauge_->Set(busy_);
  cv_.notify_all();
}

void Worker::Launch(const ReportJob& job) {
  auto control = std::make_shared<JobControl>();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      control->stop = JobControl::kShutdown;
    }
    jobs_[job.id] = control;
  }
  std::thread([this, job, control] {
    runner_->Run(job, control.get());
    {
      std::lock_guard<std::mutex> lock(mu_);
      jobs_.erase(job.id);
    }
    ReleaseSlot();
  }).detach();
}

absl::StatusOr<bool> Worker::TryStart(const std::string& report_id, absl::Duration wait) {
  if (!AcquireSlot(wait)) {
    return absl::UnavailableError("no free report slot on this worker");
  }
  absl::StatusOr<ClaimResult> claim = store_->Claim(report_id);
  if (!claim.ok()) {
    ReleaseSlot();
    claims_->WithLabels({"error"}).Increment();
    return claim.status();
  }
  switch (claim->outcome) {
    case ClaimOutcome::kClaimed:
      claims_->WithLabels({"claimed"}).Increment();
      Launch(claim->job);
      return true;
    case ClaimOutcome::kNotClaimable:
      claims_->WithLabels({"not_claimable"}).Increment();
      break;
    case ClaimOutcome::kUnknown:
      claims_->WithLabels({"unknown"}).Increment();
      ReleaseSlot();
      return absl::NotFoundError(absl::StrCat("no report job ", report_id));
    case ClaimOutcome::kGaveUp:
      claims_->WithLabels({"gave_up"}).Increment();
      KURT_LOG(kError, "report failed: claimed too often without finishing", {"report", report_id},
               {"attempts", claim->job.attempts});
      break;
  }
  ReleaseSlot();
  return false;
}

absl::Status Worker::HandleBatch(const std::vector<kafka::Message>& batch) {
  for (const kafka::Message& m : batch) {
    events::v1::ReportRequested event;
    std::string problem;
    if (!event.ParseFromString(m.value)) {
      problem = "not a ReportRequested message";
    } else if (!IsReportId(event.report_id())) {
      problem = absl::StrCat("report_id '", event.report_id(), "' is not a report id");
    }
    if (problem.empty()) {
      absl::StatusOr<bool> started = TryStart(event.report_id(), options_.slot_wait);
      if (absl::IsNotFound(started.status())) {
        problem = std::string(started.status().message());
      } else if (!started.ok()) {
        // Nothing is committed; the batch comes again and claimed jobs are skipped then.
        return started.status();
      }
    }
    if (!problem.empty()) {
      KURT_LOG(kError, "report request to the dead-letter topic", {"partition", m.partition},
               {"offset", m.offset}, {"error", problem});
      if (absl::Status s = store_->DeadLetter(m, problem); !s.ok()) {
        return s;
      }
      dead_letters_->Increment();
    }
  }
  return absl::OkStatus();
}

bool Worker::SleepUnlessStopped(absl::Duration d) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, absl::ToChronoMilliseconds(d), [&] { return stopping_; });
  return !stopping_;
}

void Worker::HeartbeatNow() {
  std::vector<std::pair<std::string, int64_t>> progress;
  std::map<std::string, std::shared_ptr<JobControl>> jobs;
  {
    std::lock_guard<std::mutex> lock(mu_);
    jobs = jobs_;
  }
  progress.reserve(jobs.size());
  for (const auto& [id, control] : jobs) {
    progress.emplace_back(id, control->progress.load());
  }
  if (progress.empty()) {
    return;
  }
  absl::StatusOr<std::set<std::string>> held = store_->Heartbeat(progress);
  if (!held.ok()) {
    // Keep running: if the database stays away, the leases run out and the jobs are retried.
    KURT_LOG(kWarn, "report heartbeat failed", {"error", held.status().ToString()});
    return;
  }
  for (const auto& [id, control] : jobs) {
    if (!held->count(id)) {
      int expected = JobControl::kRun;
      control->stop.compare_exchange_strong(expected, JobControl::kLost);
    }
  }
}

void Worker::HeartbeatLoop() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, absl::ToChronoMilliseconds(options_.heartbeat_interval),
                   [&] { return stopping_ && busy_ == 0; });
      if (stopping_ && busy_ == 0) {
        return;
      }
    }
    HeartbeatNow();
  }
}

void Worker::ScanLeasesNow() {
  int free_slots;
  {
    std::lock_guard<std::mutex> lock(mu_);
    free_slots = options_.max_concurrent_jobs - busy_;
  }
  if (free_slots <= 0) {
    return;
  }
  absl::StatusOr<std::vector<std::string>> expired = store_->Expired(free_slots);
  if (!expired.ok()) {
    KURT_LOG(kWarn, "lease scan failed", {"error", expired.status().ToString()});
    return;
  }
  for (const std::string& id : *expired) {
    absl::StatusOr<bool> started = TryStart(id, absl::ZeroDuration());
    if (!started.ok()) {
      if (absl::IsUnavailable(started.status())) {
        break;  // no slot left
      }
      KURT_LOG(kWarn, "cannot take over a report", {"report", id},
               {"error", started.status().ToString()});
    } else if (*started) {
      KURT_LOG(kInfo, "report claimed by the lease scan", {"report", id});
    }
  }
}

void Worker::ScanLoop() {
  while (SleepUnlessStopped(options_.lease_scan_interval)) {
    ScanLeasesNow();
  }
}

}  // namespace kurt::report_worker
