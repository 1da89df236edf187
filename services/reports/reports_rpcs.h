// The RPCs of kurt.reports.v1.ReportsService as plain functions: each validates its request,
// calls the store and maps its errors; GetReportContent streams a finished artifact from the
// artifact storage. Every RPC acts for the caller's account (platform/grpc/handler.h refuses a
// call without one); another account's report is NOT_FOUND.
//
// Lives in ReportsModule for the whole process; gRPC's threads call it concurrently.
#pragma once

#include <cstddef>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "google/api/httpbody.pb.h"
#include "grpcpp/support/sync_stream.h"
#include "kurt/reports/v1/reports.pb.h"
#include "platform/core/metrics.h"
#include "platform/grpc/handler.h"
#include "platform/outbox/outbox.h"
#include "services/reports/artifact_storage.h"
#include "services/reports/reports_store.h"

namespace kurt::reports {

struct ReportsRpcsOptions {
  // Longest range a report may cover.
  absl::Duration max_range = absl::Hours(24 * 366);
  // Bytes per HttpBody message of GetReportContent.
  size_t content_chunk_bytes = size_t{256} * 1024;
  // How often StreamReport reads its report.
  absl::Duration stream_poll = absl::Seconds(1);
  // StreamReport calls one account may have open at once (each holds a server thread).
  int max_streams_per_account = 10;
};

// Where GetReportContent writes: the call's grpc::ServerWriter, or a test's fake.
using ContentWriter = grpc::ServerWriterInterface<google::api::HttpBody>;
// Where StreamReport writes.
using ReportWriter = grpc::ServerWriterInterface<v1::Report>;

class ReportsRpcs {
 public:
  // Every pointer outlives the RPCs; `relay` (may be null) is woken after a job is created.
  ReportsRpcs(ReportsRpcsOptions options, ReportsStore* store, ArtifactStorage* storage,
              outbox::OutboxRelay* relay, metrics::Registry* registry);

  // A new PENDING job, or the job an earlier request with the same request_id created.
  absl::StatusOr<v1::Report> CreateReport(const platform::Caller& caller,
                                          const v1::CreateReportRequest& request);
  absl::StatusOr<v1::Report> GetReport(const platform::Caller& caller,
                                       const v1::GetReportRequest& request);
  // The account's reports, newest first, a page at a time.
  absl::StatusOr<v1::ListReportsResponse> ListReports(const platform::Caller& caller,
                                                      const v1::ListReportsRequest& request);
  // Cancels a PENDING or RUNNING report; a CANCELLED one is returned as it is (idempotent).
  absl::StatusOr<v1::Report> CancelReport(const platform::Caller& caller,
                                          const v1::CancelReportRequest& request);
  // Writes the artifact of a SUCCEEDED report in messages of up to content_chunk_bytes (one empty
  // message for an empty artifact); CANCELLED once the caller is gone.
  absl::Status GetReportContent(const platform::Caller& caller,
                                const v1::GetReportContentRequest& request, ContentWriter* writer);
  // Writes the report, then each change of it, until it has finished (OK) or the caller is gone
  // (CANCELLED).
  absl::Status StreamReport(const platform::Caller& caller, const v1::StreamReportRequest& request,
                            ReportWriter* writer);

 private:
  // The checks CreateReport makes before touching the database.
  absl::Status Validate(const v1::CreateReportRequest& request) const;

  const ReportsRpcsOptions options_;
  ReportsStore* store_;
  ArtifactStorage* storage_;
  outbox::OutboxRelay* relay_;
  metrics::Family<metrics::Counter>* created_;
  metrics::Counter* content_bytes_;
  metrics::Family<metrics::Counter>* quota_refusals_;
  absl::Mutex streams_mu_;
  absl::flat_hash_map<std::string, int> streams_ ABSL_GUARDED_BY(streams_mu_);  // per account
};

}  // namespace kurt::reports
