#include "services/analytics/analytics_service.h"

#include "platform/grpc/handler.h"

namespace kurt::analytics {

grpc::Status AnalyticsService::GetLinkStats(grpc::ServerContext* context,
                                            const v1::GetLinkStatsRequest* request,
                                            v1::LinkStats* response) {
  return platform::Handle(context, *request, response, rpcs_, &AnalyticsRpcs::GetLinkStats);
}

}  // namespace kurt::analytics
