// kurt.analytics.v1.AnalyticsService: validates a stats request, reads the store and shapes the
// answer (aligned range, zero-filled series, top lists). The caller's account arrives as metadata
// x-kurt-account-id (set by the edge after authentication); a link of another account is
// NOT_FOUND, exactly like an unknown one.
#pragma once

#include <functional>

#include "absl/time/time.h"
#include "kurt/analytics/v1/analytics.grpc.pb.h"
#include "services/analytics/stats_store.h"

namespace kurt::analytics {

class AnalyticsService final : public kurt::analytics::v1::AnalyticsService::Service {
 public:
  // `store` outlives the service; `now` is the clock (tests pin it).
  explicit AnalyticsService(StatsStore* store, std::function<absl::Time()> now = absl::Now);

  grpc::Status GetLinkStats(grpc::ServerContext* context, const v1::GetLinkStatsRequest* request,
                            v1::LinkStats* response) override;

 private:
  StatsStore* store_;
  std::function<absl::Time()> now_;
};

}  // namespace kurt::analytics
