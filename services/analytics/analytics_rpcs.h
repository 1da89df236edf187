// The RPC of kurt.analytics.v1.AnalyticsService as a plain function: GetLinkStats validates a
// stats request, reads the store and shapes the answer (aligned range, zero-filled series, top
// lists). It acts for the caller's account; a link of another account is NOT_FOUND, exactly like
// an unknown one.
//
// Lives as long as the module that owns it; thread-safe (the store is).
#pragma once

#include <functional>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "kurt/analytics/v1/analytics.pb.h"
#include "platform/grpc/handler.h"
#include "services/analytics/stats_store.h"

namespace kurt::analytics {

class AnalyticsRpcs {
 public:
  // `store` outlives the RPCs; `now` is the clock that ranges without an end end at.
  explicit AnalyticsRpcs(StatsStore* store, std::function<absl::Time()> now = absl::Now);

  absl::StatusOr<v1::LinkStats> GetLinkStats(const platform::Caller& caller,
                                             const v1::GetLinkStatsRequest& request);

 private:
  StatsStore* store_;
  std::function<absl::Time()> now_;
};

}  // namespace kurt::analytics
