// Where the stats RPC reads: the interface the service uses and its PostgreSQL implementation
// (all of the stats SQL is in stats_store.cc). Reads go to a replica, with the primary as
// fallback; one snapshot per request, so the total, the series and the tops agree.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "platform/pg/pg.h"

namespace kurt::analytics {

struct StatsQuery {
  std::string account_id;
  std::string code;
  // Hour-aligned bounds: [start, end).
  absl::Time start;
  absl::Time end;
  int limit = 10;  // of each top list
};

struct StatsData {
  // (hour start, clicks), hours with clicks only, oldest first: every click, then bots' only.
  std::vector<std::pair<absl::Time, int64_t>> hourly;
  std::vector<std::pair<absl::Time, int64_t>> hourly_bots;
  // (stored value, clicks), most first; ties by value.
  std::vector<std::pair<std::string, int64_t>> referrers;
  std::vector<std::pair<std::string, int64_t>> agents;
  std::vector<std::pair<std::string, int64_t>> countries;  // "ZZ" when unknown
};

class StatsStore {
 public:
  virtual ~StatsStore() = default;
  // NOT_FOUND ("no link with code '…'") unless the account owns a live link with this code.
  virtual absl::StatusOr<StatsData> Read(const StatsQuery& query) = 0;
};

class PgStatsStore : public StatsStore {
 public:
  // `cluster` outlives the store.
  explicit PgStatsStore(pg::PgCluster* cluster) : cluster_(cluster) {}
  absl::StatusOr<StatsData> Read(const StatsQuery& query) override;

 private:
  // Reads on `pool` (the cluster's read path when null); `*owned` tells whether the account owns
  // a live link with the code there.
  absl::StatusOr<StatsData> ReadOn(pg::PgPool* pool, const StatsQuery& query, bool* owned);

  pg::PgCluster* cluster_;
};

}  // namespace kurt::analytics
