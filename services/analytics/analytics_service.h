// kurt.analytics.v1.AnalyticsService over gRPC: GetLinkStats is served by platform::Handle with
// AnalyticsRpcs::GetLinkStats, for the caller's account (UNAUTHENTICATED without one).
//
// Lives as long as the module that owns it; gRPC's threads call it.
#pragma once

#include "kurt/analytics/v1/analytics.grpc.pb.h"
#include "services/analytics/analytics_rpcs.h"

namespace kurt::analytics {

class AnalyticsService final : public v1::AnalyticsService::Service {
 public:
  // `rpcs` outlives the service.
  explicit AnalyticsService(AnalyticsRpcs* rpcs) : rpcs_(*rpcs) {}

  grpc::Status GetLinkStats(grpc::ServerContext* context, const v1::GetLinkStatsRequest* request,
                            v1::LinkStats* response) override;

 private:
  AnalyticsRpcs& rpcs_;
};

}  // namespace kurt::analytics
