// The report worker's engine: takes report requests from Kafka (HandleBatch, the consumer
// group's handler), claims their jobs and runs them on up to max_concurrent_jobs threads; renews
// the leases of its running jobs and records their progress (a heartbeat thread, which also
// notices cancellations and takeovers); and periodically claims jobs whose lease ran out, so that
// a job completes even when its worker died after its Kafka message was committed.
//
// A batch is handled (its offsets committed) once each of its jobs is claimed durably in the
// database, not when the jobs end: the database, not Kafka, holds the work in progress.
//
// Lives in WorkerModule; Start and Stop from one thread; HandleBatch from the consumer's thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "platform/core/metrics.h"
#include "platform/kafka/kafka.h"
#include "services/report-worker/job_store.h"
#include "services/report-worker/report_runner.h"

namespace kurt::report_worker {

struct WorkerOptions {
  int max_concurrent_jobs = 2;
  // How often running jobs' leases are renewed (well under the lease).
  absl::Duration heartbeat_interval = absl::Seconds(2);
  // How often jobs with an expired lease are looked for.
  absl::Duration lease_scan_interval = absl::Seconds(5);
  // How long a batch waits for a free slot before it is retried.
  absl::Duration slot_wait = absl::Seconds(20);
};

class Worker {
 public:
  // Every pointer outlives the worker.
  Worker(WorkerOptions options, JobStore* store, ReportRunner* runner, metrics::Registry* registry);
  ~Worker();

  void Start();
  // Stops claiming, tells running jobs to stop and give their jobs back, and waits for them.
  void Stop();

  // The consumer's handler for kurt.reports.requested.v1.
  absl::Status HandleBatch(const std::vector<kafka::Message>& batch);

  // Claims and starts this job if it can be claimed (true) — false when there is nothing to run
  // (someone else's, waiting for a retry, final, or just failed as poison); waits up to `wait`
  // for a free slot. UNAVAILABLE when no slot freed up, NOT_FOUND for an unknown job.
  absl::StatusOr<bool> TryStart(const std::string& report_id, absl::Duration wait);

  // One heartbeat and one lease scan, now (tests).
  void HeartbeatNow();
  void ScanLeasesNow();

  int running() const;

 private:
  bool AcquireSlot(absl::Duration wait);
  void ReleaseSlot();
  void Launch(const reports::ReportJob& job);
  void HeartbeatLoop();
  void ScanLoop();
  // Sleeps for `d` or until Stop.
  bool SleepUnlessStopped(absl::Duration d);

  const WorkerOptions options_;
  JobStore* store_;
  ReportRunner* runner_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  int busy_ = 0;
  bool stopping_ = false;
  std::map<std::string, std::shared_ptr<JobControl>> jobs_;

  std::thread heartbeat_;
  std::thread scanner_;

  metrics::Gauge* running_gauge_;
  metrics::Family<metrics::Counter>* claims_;
  metrics::Counter* dead_letters_;
};

}  // namespace kurt::report_worker
