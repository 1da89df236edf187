// kurt.reports.v1.ReportsService over gRPC: each RPC is one call of platform::Handle into
// ReportsRpcs, which holds the behaviour; every RPC acts for an account.
//
// Lives in ReportsModule as long as its ReportsRpcs; gRPC's threads call it concurrently.
#pragma once

#include "kurt/reports/v1/reports.grpc.pb.h"
#include "platform/grpc/handler.h"
#include "services/reports/report_job.h"
#include "services/reports/reports_rpcs.h"

namespace kurt::reports {

// Sends a download's Content-Disposition as the call's initial metadata (the edge makes it the
// HTTP header) with the first chunk, whose content type names the file's extension.
class DownloadWriter final : public ContentWriter {
 public:
  // Both outlive the writer.
  DownloadWriter(grpc::ServerContext* context, const std::string& report_id, ContentWriter* out)
      : context_(context), report_id_(report_id), out_(out) {}
  void SendInitialMetadata() override {
    Disposition("");
    out_->SendInitialMetadata();
  }
  bool Write(const google::api::HttpBody& chunk, grpc::WriteOptions options) override {
    Disposition(chunk.content_type());
    return out_->Write(chunk, options);
  }

 private:
  void Disposition(const std::string& content_type) {
    if (!added_) {
      added_ = true;
      context_->AddInitialMetadata("content-disposition",
                                   ContentDispositionOf(report_id_, content_type));
    }
  }
  grpc::ServerContext* context_;
  const std::string& report_id_;
  ContentWriter* out_;
  bool added_ = false;
};

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
    DownloadWriter download(context, request->id(), writer);
    return platform::HandleStream(context, *request, &download, rpcs_,
                                  &ReportsRpcs::GetReportContent);
  }
  grpc::Status StreamReport(grpc::ServerContext* context, const v1::StreamReportRequest* request,
                            grpc::ServerWriter<v1::Report>* writer) override {
    return platform::HandleStream(context, *request, writer, rpcs_, &ReportsRpcs::StreamReport);
  }

 private:
  ReportsRpcs& rpcs_;
};

}  // namespace kurt::reports
