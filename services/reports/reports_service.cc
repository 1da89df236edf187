#include "services/reports/reports_service.h"

#include "absl/strings/str_cat.h"
#include "platform/grpc/server.h"
#include "platform/core/log.h"
#include "platform/grpc/handler.h"
#include "platform/grpc/pagination.h"
#include "platform/grpc/timestamps.h"
#include "services/common/link_code.h"

namespace kurt::reports {
namespace {

using links::IsWellFormedCode;
using platform::CallerAccount;
using platform::FromTimestamp;
using platform::RequestIdOf;
using platform::ToGrpcStatus;
using platform::ValidateTimestamp;

constexpr size_t kMaxRequestIdLength = 128;

// Whole microseconds: what the database keeps.
absl::Time Micros(const google::protobuf::Timestamp& t) {
  return absl::FromUnixMicros(absl::ToUnixMicros(FromTimestamp(t)));
}

absl::Status ValidateId(const std::string& id) {
  if (id.empty()) return absl::InvalidArgumentError("id: required");
  // Anything but a UUID cannot name a report; saying so as NOT_FOUND reveals nothing.
  if (!IsReportId(id)) return absl::NotFoundError(absl::StrCat("no report with id '", id, "'"));
  return absl::OkStatus();
}

}  // namespace

ReportsService::ReportsService(ReportsServiceOptions options, ReportsStore* store,
                               ArtifactStorage* storage, outbox::OutboxRelay* relay,
                               metrics::Registry* registry)
    : options_(std::move(options)),
      store_(store),
      storage_(storage),
      relay_(relay),
      created_(&registry->AddCounter("kurt_reports_created_total", "Report jobs created, by kind",
                                     {"kind"})),
      content_bytes_(&registry
                          ->AddCounter("kurt_reports_content_bytes_total",
                                       "Artifact bytes streamed to callers")
                          .Get()) {}

absl::Status ReportsService::Validate(const v1::CreateReportRequest& request) const {
  if (request.kind() != v1::CLICKS_CSV && request.kind() != v1::SUMMARY_JSON) {
    return absl::InvalidArgumentError("kind: must be CLICKS_CSV or SUMMARY_JSON");
  }
  if (!request.has_start_time()) return absl::InvalidArgumentError("start_time: required");
  if (!request.has_end_time()) return absl::InvalidArgumentError("end_time: required");
  if (absl::Status s = ValidateTimestamp(request.start_time(), "start_time"); !s.ok()) return s;
  if (absl::Status s = ValidateTimestamp(request.end_time(), "end_time"); !s.ok()) return s;
  absl::Time start = Micros(request.start_time()), end = Micros(request.end_time());
  if (end <= start) return absl::InvalidArgumentError("end_time: must be after start_time");
  if (end - start > options_.max_range) {
    return absl::InvalidArgumentError(absl::StrCat(
        "end_time: a report covers at most ", absl::ToInt64Hours(options_.max_range) / 24,
        " days"));
  }
  if (!request.code().empty() && !IsWellFormedCode(request.code())) {
    return absl::InvalidArgumentError("code: must be 3 to 64 letters, digits, '-' or '_'");
  }
  if (request.request_id().size() > kMaxRequestIdLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("request_id: at most ", kMaxRequestIdLength, " characters"));
  }
  for (char c : request.request_id()) {
    if (c < 0x21 || c > 0x7e) {
      return absl::InvalidArgumentError("request_id: printable ASCII without spaces only");
    }
  }
  return absl::OkStatus();
}

grpc::Status ReportsService::CreateReport(grpc::ServerContext* context,
                                          const v1::CreateReportRequest* request,
                                          v1::Report* response) {
  log::RequestScope scope(RequestIdOf(*context));
  auto account = CallerAccount(*context);
  if (!account.ok()) return ToGrpcStatus(account.status());
  if (absl::Status s = Validate(*request); !s.ok()) return ToGrpcStatus(s);
  if (!request->code().empty()) {
    auto owned = store_->OwnsLink(*account, request->code());
    if (!owned.ok()) return ToGrpcStatus(owned.status());
    if (!*owned) {
      return ToGrpcStatus(absl::NotFoundError(
          absl::StrCat("code: no link with code '", request->code(), "'")));
    }
  }
  NewReport report;
  report.account_id = *account;
  report.request_id = request->request_id();
  report.kind = request->kind();
  report.code = request->code();
  report.start_time = Micros(request->start_time());
  report.end_time = Micros(request->end_time());
  auto result = store_->Create(report);
  if (!result.ok()) return ToGrpcStatus(result.status());
  if (result->created) {
    created_->WithLabels({KindName(report.kind)}).Increment();
    if (relay_ != nullptr) relay_->Wake();
    KURT_LOG(kInfo, "report requested", {"report", result->job.id}, {"account", *account},
             {"kind", KindName(report.kind)});
  }
  ToProto(result->job, response);
  return grpc::Status::OK;
}

grpc::Status ReportsService::GetReport(grpc::ServerContext* context,
                                       const v1::GetReportRequest* request,
                                       v1::Report* response) {
  log::RequestScope scope(RequestIdOf(*context));
  auto account = CallerAccount(*context);
  if (!account.ok()) return ToGrpcStatus(account.status());
  if (absl::Status s = ValidateId(request->id()); !s.ok()) return ToGrpcStatus(s);
  auto job = store_->Get(*account, request->id());
  if (!job.ok()) return ToGrpcStatus(job.status());
  ToProto(*job, response);
  return grpc::Status::OK;
}

std::string ReportsService::EncodePageToken(const ListCursor& cursor) {
  return platform::EncodePageToken(cursor.create_time, cursor.id);
}

absl::StatusOr<ListCursor> ReportsService::DecodePageToken(absl::string_view token) {
  auto decoded = platform::DecodePageToken(token);
  if (!decoded || !IsReportId(decoded->second)) {
    return absl::InvalidArgumentError("page_token: not a token from a previous page");
  }
  return ListCursor{decoded->first, std::move(decoded->second)};
}

grpc::Status ReportsService::ListReports(grpc::ServerContext* context,
                                         const v1::ListReportsRequest* request,
                                         v1::ListReportsResponse* response) {
  log::RequestScope scope(RequestIdOf(*context));
  auto account = CallerAccount(*context);
  if (!account.ok()) return ToGrpcStatus(account.status());
  absl::StatusOr<int> page_size = platform::PageSize(request->page_size());
  if (!page_size.ok()) return ToGrpcStatus(page_size.status());
  const int size = *page_size;
  std::optional<ListCursor> after;
  if (!request->page_token().empty()) {
    auto cursor = DecodePageToken(request->page_token());
    if (!cursor.ok()) return ToGrpcStatus(cursor.status());
    after = *cursor;
  }
  // One more than asked tells whether there is a next page.
  auto jobs = store_->List(*account, size + 1, after);
  if (!jobs.ok()) return ToGrpcStatus(jobs.status());
  bool more = static_cast<int>(jobs->size()) > size;
  if (more) jobs->pop_back();
  for (const ReportJob& j : *jobs) ToProto(j, response->add_reports());
  if (more) {
    response->set_next_page_token(EncodePageToken({jobs->back().create_time, jobs->back().id}));
  }
  return grpc::Status::OK;
}

grpc::Status ReportsService::CancelReport(grpc::ServerContext* context,
                                          const v1::CancelReportRequest* request,
                                          v1::Report* response) {
  log::RequestScope scope(RequestIdOf(*context));
  auto account = CallerAccount(*context);
  if (!account.ok()) return ToGrpcStatus(account.status());
  if (absl::Status s = ValidateId(request->id()); !s.ok()) return ToGrpcStatus(s);
  auto job = store_->Cancel(*account, request->id());
  if (!job.ok()) return ToGrpcStatus(job.status());
  if (job->state != v1::CANCELLED) {
    return ToGrpcStatus(absl::FailedPreconditionError(
        absl::StrCat("report ", job->id, " is ", StateName(job->state),
                     "; only PENDING or RUNNING reports can be cancelled")));
  }
  KURT_LOG(kInfo, "report cancelled", {"report", job->id}, {"account", *account});
  ToProto(*job, response);
  return grpc::Status::OK;
}

grpc::Status ReportsService::GetReportContent(
    grpc::ServerContext* context, const v1::GetReportContentRequest* request,
    grpc::ServerWriter<google::api::HttpBody>* writer) {
  log::RequestScope scope(RequestIdOf(*context));
  auto account = CallerAccount(*context);
  if (!account.ok()) return ToGrpcStatus(account.status());
  if (absl::Status s = ValidateId(request->id()); !s.ok()) return ToGrpcStatus(s);
  auto job = store_->Get(*account, request->id());
  if (!job.ok()) return ToGrpcStatus(job.status());
  if (job->state != v1::SUCCEEDED) {
    return ToGrpcStatus(absl::FailedPreconditionError(
        absl::StrCat("report ", job->id, " is ", StateName(job->state),
                     "; its content exists once it SUCCEEDED")));
  }
  auto reader = storage_->Open(job->artifact_key);
  if (!reader.ok()) {
    KURT_LOG(kError, "artifact of a SUCCEEDED report cannot be opened", {"report", job->id},
             {"key", job->artifact_key}, {"error", reader.status().ToString()});
    if (absl::IsNotFound(reader.status())) {
      return ToGrpcStatus(absl::DataLossError(
          absl::StrCat("the content of report ", job->id, " is missing from storage")));
    }
    return ToGrpcStatus(reader.status());
  }
  google::api::HttpBody body;
  body.set_content_type(job->content_type);
  std::string chunk;
  bool sent = false;
  for (;;) {
    if (context->IsCancelled()) return grpc::Status::CANCELLED;
    if (absl::Status s = (*reader)->Read(options_.content_chunk_bytes, &chunk); !s.ok()) {
      return ToGrpcStatus(s);
    }
    if (chunk.empty() && sent) break;
    body.set_data(chunk);
    if (!writer->Write(body)) return grpc::Status::CANCELLED;
    content_bytes_->Increment(static_cast<double>(chunk.size()));
    sent = true;
    if (chunk.empty()) break;
  }
  return grpc::Status::OK;
}

}  // namespace kurt::reports
