#include "services/reports/reports_rpcs.h"

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "platform/core/log.h"
#include "platform/grpc/pagination.h"
#include "platform/grpc/timestamps.h"
#include "services/common/link_code.h"

namespace kurt::reports {
namespace {

using platform::FromTimestamp;
using platform::ValidateTimestamp;

constexpr size_t kMaxRequestIdLength = 128;

// Whole microseconds: what the database keeps.
absl::Time Micros(const google::protobuf::Timestamp& t) {
  return absl::FromUnixMicros(absl::ToUnixMicros(FromTimestamp(t)));
}

absl::Status ValidateId(const std::string& id) {
  if (id.empty()) {
    return absl::InvalidArgumentError("id: required");
  }
  // Anything but a UUID cannot name a report; saying so as NOT_FOUND reveals nothing.
  if (!IsReportId(id)) {
    return absl::NotFoundError(absl::StrCat("no report with id '", id, "'"));
  }
  return absl::OkStatus();
}

v1::Report ToProto(const ReportJob& job) {
  v1::Report report;
  ToProto(job, &report);
  return report;
}

// Why a report that is not SUCCEEDED has no content.
absl::Status NoContent(const ReportJob& job) {
  if (job.state == v1::EXPIRED) {
    return absl::FailedPreconditionError(absl::StrCat(
        "report ", job.id, " is EXPIRED: its content was deleted",
        job.expire_time ? absl::StrCat(" at ", Rfc3339(*job.expire_time)) : "",
        ", when the retention period after it finished ran out; create the report again"));
  }
  return absl::FailedPreconditionError(absl::StrCat("report ", job.id, " is ", StateName(job.state),
                                                    "; its content exists once it SUCCEEDED"));
}

bool Cancelled(const platform::Caller& caller) {
  return caller.context() != nullptr && caller.context()->IsCancelled();
}

}  // namespace

ReportsRpcs::ReportsRpcs(ReportsRpcsOptions options, ReportsStore* store, ArtifactStorage* storage,
                         outbox::OutboxRelay* relay, metrics::Registry* registry)
    : options_(options),
      store_(store),
      storage_(storage),
      relay_(relay),
      created_(&registry->AddCounter("kurt_reports_created_total", "Report jobs created, by kind",
                                     {"kind"})),
      content_bytes_(&registry
                          ->AddCounter("kurt_reports_content_bytes_total",
                                       "Artifact bytes streamed to callers")
                          .Get()),
      quota_refusals_(&registry->AddCounter(
          "kurt_reports_quota_refusals_total",
          "Reports refused by the account's quota, by limit (active, daily)", {"limit"})) {}

absl::Status ReportsRpcs::Validate(const v1::CreateReportRequest& request) const {
  if (request.kind() != v1::CLICKS_CSV && request.kind() != v1::SUMMARY_JSON) {
    return absl::InvalidArgumentError("kind: must be CLICKS_CSV or SUMMARY_JSON");
  }
  if (!request.has_start_time()) {
    return absl::InvalidArgumentError("start_time: required");
  }
  if (!request.has_end_time()) {
    return absl::InvalidArgumentError("end_time: required");
  }
  if (absl::Status s = ValidateTimestamp(request.start_time(), "start_time"); !s.ok()) {
    return s;
  }
  if (absl::Status s = ValidateTimestamp(request.end_time(), "end_time"); !s.ok()) {
    return s;
  }
  const absl::Time start = Micros(request.start_time());
  const absl::Time end = Micros(request.end_time());
  if (end <= start) {
    return absl::InvalidArgumentError("end_time: must be after start_time");
  }
  if (end - start > options_.max_range) {
    return absl::InvalidArgumentError(absl::StrCat("end_time: a report covers at most ",
                                                   absl::ToInt64Hours(options_.max_range) / 24,
                                                   " days"));
  }
  if (!request.code().empty() && !links::IsWellFormedCode(request.code())) {
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

absl::StatusOr<v1::Report> ReportsRpcs::CreateReport(const platform::Caller& caller,
                                                     const v1::CreateReportRequest& request) {
  if (absl::Status s = Validate(request); !s.ok()) {
    return s;
  }
  const std::string& account = caller.account_id();
  if (!request.code().empty()) {
    absl::StatusOr<bool> owned = store_->OwnsLink(account, request.code());
    if (!owned.ok()) {
      return owned.status();
    }
    if (!*owned) {
      return absl::NotFoundError(absl::StrCat("code: no link with code '", request.code(), "'"));
    }
  }
  NewReport report;
  report.account_id = account;
  report.request_id = request.request_id();
  report.kind = request.kind();
  report.code = request.code();
  report.start_time = Micros(request.start_time());
  report.end_time = Micros(request.end_time());
  absl::StatusOr<CreateResult> result = store_->Create(report);
  if (!result.ok()) {
    if (auto limit = result.status().GetPayload(kQuotaPayload)) {
      quota_refusals_->WithLabels({std::string(*limit)}).Increment();
      KURT_LOG(kInfo, "report refused by quota", {"account", account},
               {"limit", std::string(*limit)});
    }
    return result.status();
  }
  if (result->created) {
    created_->WithLabels({KindName(report.kind)}).Increment();
    if (relay_ != nullptr) {
      relay_->Wake();
    }
    KURT_LOG(kInfo, "report requested", {"report", result->job.id}, {"account", account},
             {"kind", KindName(report.kind)});
  }
  return ToProto(result->job);
}

absl::StatusOr<v1::Report> ReportsRpcs::GetReport(const platform::Caller& caller,
                                                  const v1::GetReportRequest& request) {
  if (absl::Status s = ValidateId(request.id()); !s.ok()) {
    return s;
  }
  absl::StatusOr<ReportJob> job = store_->Get(caller.account_id(), request.id());
  if (!job.ok()) {
    return job.status();
  }
  return ToProto(*job);
}

absl::StatusOr<v1::ListReportsResponse> ReportsRpcs::ListReports(
    const platform::Caller& caller, const v1::ListReportsRequest& request) {
  absl::StatusOr<platform::PageRequest> page =
      platform::ReadPageRequest(request.page_size(), request.page_token(), IsReportId);
  if (!page.ok()) {
    return page.status();
  }
  absl::StatusOr<std::vector<ReportJob>> jobs =
      store_->List(caller.account_id(), page->size + 1, page->after);
  if (!jobs.ok()) {
    return jobs.status();
  }
  v1::ListReportsResponse response;
  response.set_next_page_token(platform::FinishPage(&*jobs, page->size, [](const ReportJob& j) {
    return platform::PageKey{j.create_time, j.id};
  }));
  for (const ReportJob& job : *jobs) {
    ToProto(job, response.add_reports());
  }
  return response;
}

absl::StatusOr<v1::Report> ReportsRpcs::CancelReport(const platform::Caller& caller,
                                                     const v1::CancelReportRequest& request) {
  if (absl::Status s = ValidateId(request.id()); !s.ok()) {
    return s;
  }
  absl::StatusOr<ReportJob> job = store_->Cancel(caller.account_id(), request.id());
  if (!job.ok()) {
    return job.status();
  }
  if (job->state != v1::CANCELLED) {
    return absl::FailedPreconditionError(
        absl::StrCat("report ", job->id, " is ", StateName(job->state),
                     "; only PENDING or RUNNING reports can be cancelled"));
  }
  KURT_LOG(kInfo, "report cancelled", {"report", job->id}, {"account", caller.account_id()});
  return ToProto(*job);
}

namespace {

bool Finished(v1::ReportState state) {
  return state == v1::SUCCEEDED || state == v1::FAILED || state == v1::CANCELLED ||
         state == v1::EXPIRED;
}

}  // namespace

absl::Status ReportsRpcs::StreamReport(const platform::Caller& caller,
                                       const v1::StreamReportRequest& request,
                                       ReportWriter* writer) {
  if (absl::Status s = ValidateId(request.id()); !s.ok()) {
    return s;
  }
  const std::string& account = caller.account_id();
  {
    absl::MutexLock lock(&streams_mu_);
    int& open = streams_[account];
    if (open >= options_.max_streams_per_account) {
      if (open == 0) {
        streams_.erase(account);
      }
      return absl::ResourceExhaustedError(
          absl::StrCat("this account already has ", options_.max_streams_per_account,
                       " report streams open; close one before opening another"));
    }
    ++open;
  }
  absl::Cleanup release = [this, &account] {
    absl::MutexLock lock(&streams_mu_);
    if (--streams_[account] == 0) {
      streams_.erase(account);
    }
  };
  // Polling, not LISTEN: a worker records progress only every heartbeat (seconds), so a read a
  // second costs one primary-key lookup and keeps nothing of the stream's in the database.
  std::string last;
  bool first = true;
  for (;;) {
    if (Cancelled(caller)) {
      return absl::CancelledError("the client went away");
    }
    absl::StatusOr<ReportJob> job = store_->Get(account, request.id());
    if (!job.ok()) {
      if (first || absl::IsNotFound(job.status())) {
        return job.status();
      }
      // A database hiccup should not end the stream: the next read may succeed.
      KURT_LOG(kWarn, "report stream read failed", {"error", job.status().ToString()});
    } else {
      const v1::Report report = ToProto(*job);
      std::string bytes = report.SerializeAsString();
      if (bytes != last) {
        if (!writer->Write(report)) {
          return absl::CancelledError("the client went away");
        }
        last = std::move(bytes);
      }
      if (Finished(job->state)) {
        return absl::OkStatus();
      }
    }
    first = false;
    // Short slices notice a client that went away.
    const absl::Time until = absl::Now() + options_.stream_poll;
    while (absl::Now() < until && !Cancelled(caller)) {
      absl::SleepFor(std::min(absl::Milliseconds(100), until - absl::Now()));
    }
  }
}

absl::Status ReportsRpcs::GetReportContent(const platform::Caller& caller,
                                           const v1::GetReportContentRequest& request,
                                           ContentWriter* writer) {
  if (absl::Status s = ValidateId(request.id()); !s.ok()) {
    return s;
  }
  absl::StatusOr<ReportJob> job = store_->Get(caller.account_id(), request.id());
  if (!job.ok()) {
    return job.status();
  }
  if (job->state != v1::SUCCEEDED) {
    return NoContent(*job);
  }
  auto reader = storage_->Open(job->artifact_key);
  if (!reader.ok() && absl::IsNotFound(reader.status())) {
    // The retention pass may have expired it since it was read: then say so.
    absl::StatusOr<ReportJob> now = store_->Get(caller.account_id(), request.id());
    if (now.ok() && now->state != v1::SUCCEEDED) {
      return NoContent(*now);
    }
  }
  if (!reader.ok()) {
    KURT_LOG(kError, "artifact of a SUCCEEDED report cannot be opened", {"report", job->id},
             {"key", job->artifact_key}, {"error", reader.status().ToString()});
    if (absl::IsNotFound(reader.status())) {
      return absl::DataLossError(
          absl::StrCat("the content of report ", job->id, " is missing from storage"));
    }
    return reader.status();
  }
  google::api::HttpBody body;
  body.set_content_type(job->content_type);
  std::string chunk;
  bool sent = false;
  for (;;) {
    if (Cancelled(caller)) {
      return absl::CancelledError();
    }
    if (absl::Status s = (*reader)->Read(options_.content_chunk_bytes, &chunk); !s.ok()) {
      return s;
    }
    if (chunk.empty() && sent) {
      break;
    }
    body.set_data(chunk);
    if (!writer->Write(body)) {
      return absl::CancelledError();
    }
    content_bytes_->Increment(static_cast<double>(chunk.size()));
    sent = true;
    if (chunk.empty()) {
      break;
    }
  }
  return absl::OkStatus();
}

}  // namespace kurt::reports
