// Where ingested clicks go: the interface ClickProcessor writes through, and its PostgreSQL
// implementation (all of the ingest SQL is in click_store.cc). One ClickTransaction covers one
// batch: its offset rows locked, its raw clicks copied, its aggregates upserted, its offsets
// advanced, all committed together or not at all.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "platform/pg/pg.h"
#include "services/analytics/click_batch.h"
#include "services/analytics/event_window.h"

namespace kurt::analytics {

// Lives for one transaction, on the thread that runs it.
class ClickTransaction {
 public:
  virtual ~ClickTransaction() = default;
  // Locks the offset rows of these partitions for the rest of the transaction (creating missing
  // ones) and returns their next offsets. A concurrent writer of the same partitions waits here.
  virtual absl::StatusOr<OffsetMap> LockOffsets(const std::string& group,
                                                const std::vector<PartitionKey>& partitions) = 0;
  // Those of `codes` that name a link (live or deleted).
  virtual absl::StatusOr<std::vector<std::string>> ExistingCodes(
      const std::vector<std::string>& codes) = 0;
  // The partition's stored clicks at or after `since` (to seed an EventWindow).
  virtual absl::StatusOr<std::vector<ClickKey>> ClicksSince(int32_t partition,
                                                            absl::Time since) = 0;
  // Those of `clicks` stored already: a click of the same code and event id at most `margin`
  // from its time.
  virtual absl::StatusOr<std::vector<ClickKey>> StoredClicks(const std::vector<ClickKey>& clicks,
                                                             absl::Duration margin) = 0;
  // Raw clicks as binary COPY tuples (BatchBuilder::TakeCopyData: columns kClickCopyColumns,
  // whole tuples). May be called many times: the rows stream to the database while the caller
  // prepares the next ones.
  virtual absl::Status CopyClicks(std::string tuples) = 0;
  // Adds a batch's sums to the aggregate tables.
  virtual absl::Status AddAggregates(const Aggregates& aggregates) = 0;
  // Sets the next offsets of the group's partitions.
  virtual absl::Status SetOffsets(const std::string& group, const OffsetMap& next) = 0;
};

// What one pass of ClickStore::IndexEndedDays did.
struct DayIndexing {
  // Another instance holds the lock of this work: this pass looked at nothing.
  bool busy_elsewhere = false;
  // The partitions whose (code, click_time) B-tree it built, oldest first.
  std::vector<std::string> built;
  // Those of them whose INVALID index (a build that was interrupted) it dropped first.
  std::vector<std::string> repaired;
};

class ClickStore {
 public:
  virtual ~ClickStore() = default;
  // Runs `fn` in one transaction on the primary, committed if and only if fn returns OK.
  virtual absl::Status InTransaction(const std::function<absl::Status(ClickTransaction&)>& fn) = 0;
  // The stored next offsets of a group on a topic (where a consumer resumes).
  virtual absl::StatusOr<OffsetMap> LoadOffsets(const std::string& group,
                                                const std::string& topic) = 0;
  // Creates missing daily partitions of the clicks table, without the (code, click_time) B-tree:
  // `days` UTC days from the one holding `first_day` (days an older monthly partition holds
  // excepted). Returns how many it created.
  virtual absl::StatusOr<int> EnsurePartitions(absl::Time first_day, int days) = 0;
  // Builds the (code, click_time) B-tree of every partition whose range has ended and that has
  // no valid one, one at a time (CREATE INDEX CONCURRENTLY: writers go on), dropping first an
  // INVALID one an interrupted build left. Idempotent; instances serialise on an advisory lock,
  // and one that finds it held returns at once. Takes seconds to minutes per day of clicks.
  virtual absl::StatusOr<DayIndexing> IndexEndedDays() = 0;
};

class PgClickStore : public ClickStore {
 public:
  // `primary` outlives the store. The index builds of ended days use connections of their own
  // to the same database, without the pool's statement timeout.
  explicit PgClickStore(pg::PgPool* primary);

  absl::Status InTransaction(const std::function<absl::Status(ClickTransaction&)>& fn) override;
  absl::StatusOr<OffsetMap> LoadOffsets(const std::string& group,
                                        const std::string& topic) override;
  absl::StatusOr<int> EnsurePartitions(absl::Time first_day, int days) override;
  absl::StatusOr<DayIndexing> IndexEndedDays() override;

 private:
  pg::PgPool* primary_;
  pg::PgPool maintenance_;
};

}  // namespace kurt::analytics
