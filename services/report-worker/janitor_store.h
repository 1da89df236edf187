// The report janitor's view of report_jobs (all of its SQL is in janitor_store.cc): which
// attempts may still be writing an artifact, and the retention period's two steps — reports that
// SUCCEEDED long enough ago become EXPIRED, then their artifacts are deleted and forgotten.
//
// The state changes before the artifact goes, so a report never says SUCCEEDED while its content
// is missing; an EXPIRED report keeps its artifact_key until the artifact is deleted, so a
// janitor that dies in between leaves the deletion to the next pass. Several janitors (one per
// worker replica) may run at once: expiring takes rows with FOR UPDATE SKIP LOCKED, and deleting
// and forgetting an artifact twice does no harm.
#pragma once

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "platform/pg/pg.h"

namespace kurt::report_worker {

// One attempt of one report: what an artifact key names (<report id>-<attempt>.<ext>).
using Attempt = std::pair<std::string, int>;

struct ExpiredArtifact {
  std::string report_id;
  std::string key;
};

class JanitorStore {
 public:
  virtual ~JanitorStore() = default;
  // Which of `attempts` may still be writing: their report is RUNNING at that attempt (a lapsed
  // lease included: its worker may yet renew it).
  virtual absl::StatusOr<std::set<Attempt>> LiveAttempts(const std::vector<Attempt>& attempts) = 0;
  // Makes up to `limit` reports that SUCCEEDED more than `retention` ago EXPIRED; returns how
  // many.
  virtual absl::StatusOr<int> ExpireFinished(absl::Duration retention, int limit) = 0;
  // Up to `limit` EXPIRED reports whose artifact is still to be deleted.
  virtual absl::StatusOr<std::vector<ExpiredArtifact>> ArtifactsToDelete(int limit) = 0;
  // Records that the artifact is deleted (the report keeps no key); false when another janitor
  // did first.
  virtual absl::StatusOr<bool> ForgetArtifact(const ExpiredArtifact& artifact) = 0;
};

class PgJanitorStore : public JanitorStore {
 public:
  // `primary` outlives the store.
  explicit PgJanitorStore(pg::PgPool* primary);

  absl::StatusOr<std::set<Attempt>> LiveAttempts(const std::vector<Attempt>& attempts) override;
  absl::StatusOr<int> ExpireFinished(absl::Duration retention, int limit) override;
  absl::StatusOr<std::vector<ExpiredArtifact>> ArtifactsToDelete(int limit) override;
  absl::StatusOr<bool> ForgetArtifact(const ExpiredArtifact& artifact) override;

 private:
  pg::PgPool* primary_;
};

}  // namespace kurt::report_worker
