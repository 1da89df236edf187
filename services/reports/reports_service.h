// kurt.reports.v1.ReportsService over gRPC: each RPC is one call of platform::Handle into
// ReportsRpcs, which holds the behaviour; every RPC acts for an account.
//
// Lives in ReportsModule as long as its ReportsRpcs; gRPC's threads call it concurrently.
#pragma once

#include "kurt/reports/v1/reports.grpc.pb.h"
#include "platform/grpc/handler.h"
#include "services/reports/reports_rpcs.h"

namespace kurt::reports {

class ReportsService final : public v1::ReportsService::Service {
 public:
  // `rpcs` outlives the service.
  explicit ReportsService(ReportsRpcs* rpcs) : rpcs_(*rpcs) {}

  grpc::Status CreateReport(grpc::ServerContext* context, const v1::CreateReportRequest* request,
                            v1::Report* response) override {
    return platform::Handle(context, *request, response, rpcs_, &ReportsRpcs::CreateReport);
  }
  grpc::Status GetReport(grpc::ServerContext* context, const v1::GetReportRequest* request,
                         v1::Report* response) override {
    return platform::Handle(context, *request, response, rpcs_, &ReportsRpcs::GetReport);
  }
  grpc::Status ListReports(grpc::ServerContext* context, const v1::ListReportsRequest* request,
                           v1::ListReportsResponse* response) override {
    return platform::Handle(context, *request, response, rpcs_, &ReportsRpcs::ListReports);
  }
  grpc::Status CancelReport(grpc::ServerContext* context, const v1::CancelReportRequest* request,
                            v1::Report* response) override {
    return platform::Handle(context, *request, response, rpcs_, &ReportsRpcs::CancelReport);
  }
  grpc::Status GetReportContent(grpc::ServerContext* context,
                                const v1::GetReportContentRequest* request,
                                grpc::ServerWriter<google::api::HttpBody>* writer) override {
    return platform::HandleStream(context, *request, writer, rpcs_, &ReportsRpcs::GetReportContent);
  }

 private:
  ReportsRpcs& rpcs_;
};

}  // namespace kurt::reports
