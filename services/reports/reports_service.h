// kurt.reports.v1.ReportsService: validates each request, calls the store, maps its errors to
// gRPC statuses, and streams finished artifacts from the artifact storage. The caller's account
// arrives as metadata x-kurt-account-id (set by the edge after authentication); another account's
// report is NOT_FOUND.
#pragma once

#include <string>

#include "kurt/reports/v1/reports.grpc.pb.h"
#include "platform/core/metrics.h"
#include "platform/outbox/outbox.h"
#include "services/reports/artifact_storage.h"
#include "services/reports/reports_store.h"

namespace kurt::reports {

struct ReportsServiceOptions {
  // Longest range a report may cover.
  absl::Duration max_range = absl::Hours(24 * 366);
  // Bytes per HttpBody message of GetReportContent.
  size_t content_chunk_bytes = 256 * 1024;
};

class ReportsService final : public v1::ReportsService::Service {
 public:
  // Every pointer outlives the service; `relay` (may be null) is woken after a job is created.
  ReportsService(ReportsServiceOptions options, ReportsStore* store, ArtifactStorage* storage,
                 outbox::OutboxRelay* relay, metrics::Registry* registry);

  grpc::Status CreateReport(grpc::ServerContext* context, const v1::CreateReportRequest* request,
                            v1::Report* response) override;
  grpc::Status GetReport(grpc::ServerContext* context, const v1::GetReportRequest* request,
                         v1::Report* response) override;
  grpc::Status ListReports(grpc::ServerContext* context, const v1::ListReportsRequest* request,
                           v1::ListReportsResponse* response) override;
  grpc::Status CancelReport(grpc::ServerContext* context, const v1::CancelReportRequest* request,
                            v1::Report* response) override;
  grpc::Status GetReportContent(grpc::ServerContext* context,
                                const v1::GetReportContentRequest* request,
                                grpc::ServerWriter<google::api::HttpBody>* writer) override;

  // Page tokens are opaque to callers; exposed for tests.
  static std::string EncodePageToken(const ListCursor& cursor);
  static absl::StatusOr<ListCursor> DecodePageToken(absl::string_view token);
  // The checks CreateReport makes before touching the database; exposed for tests.
  absl::Status Validate(const v1::CreateReportRequest& request) const;

 private:
  const ReportsServiceOptions options_;
  ReportsStore* store_;
  ArtifactStorage* storage_;
  outbox::OutboxRelay* relay_;
  metrics::Family<metrics::Counter>* created_;
  metrics::Counter* content_bytes_;
};

}  // namespace kurt::reports
