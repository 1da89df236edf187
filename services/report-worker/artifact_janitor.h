// The report worker's janitor: a thread that, every `interval`, sweeps temporaries of writers
// that died (a killed worker's .tmp- file or multipart upload) and applies the retention period
// to finished reports (EXPIRED, artifact deleted). Every worker replica runs one; they share the
// work safely (janitor_store.h).
//
// A temporary is removed only when it is older than `temp_min_age` and no live attempt can own
// it: its key names a report attempt, and the report is no longer RUNNING at that attempt
// (finished, cancelled, failed, or claimed again). No age alone could promise that — a slow
// attempt (a large report, or --scan_max_rows_per_second) may write for hours — so age only
// keeps the sweep off files being written right now and off clocks that disagree a little; the
// attempt check is what keeps a live writer's temporary. A temporary whose name names no attempt
// is removed on age alone.
//
// Lives in WorkerModule; Start and Stop from one thread, the passes on its own thread (or a
// test's).
#pragma once

#include <condition_variable>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "platform/core/metrics.h"
#include "services/report-worker/janitor_store.h"
#include "services/reports/artifact_storage.h"

namespace kurt::report_worker {

struct JanitorOptions {
  // Between passes.
  absl::Duration interval = absl::Minutes(1);
  // A temporary younger than this is kept, whatever its attempt.
  absl::Duration temp_min_age = absl::Hours(1);
  // A report that SUCCEEDED longer ago than this becomes EXPIRED; zero: kept for ever.
  absl::Duration retention = absl::Hours(24 * 30);
  // Reports expired per transaction, artifacts deleted per round.
  int batch = 100;
};

class ArtifactJanitor {
 public:
  // `store`, `storage` and `registry` outlive the janitor.
  ArtifactJanitor(JanitorOptions options, JanitorStore* store, reports::ArtifactStorage* storage,
                  metrics::Registry* registry);
  ~ArtifactJanitor();
  ArtifactJanitor(const ArtifactJanitor&) = delete;
  ArtifactJanitor& operator=(const ArtifactJanitor&) = delete;

  void Start();
  // Waits for a pass in progress to end. Idempotent.
  void Stop();

  // One sweep: removes the stale temporaries; returns how many it removed.
  absl::StatusOr<int> SweepTemporaries();
  // One retention pass: expires every report past the retention period and deletes the
  // artifacts of every EXPIRED report that still has one; returns how many it deleted (and
  // recorded first, when janitors race).
  absl::StatusOr<int> ExpireArtifacts();

 private:
  void Loop();

  const JanitorOptions options_;
  JanitorStore* store_;
  reports::ArtifactStorage* storage_;
  metrics::Counter* swept_;
  metrics::Counter* expired_;
  metrics::Family<metrics::Counter>* errors_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

// The attempt an artifact key names (<report id>-<attempt>.<ext>, the runner's keys), if any.
std::optional<Attempt> AttemptOfKey(absl::string_view key);

}  // namespace kurt::report_worker
