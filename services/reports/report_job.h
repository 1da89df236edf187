// A report job as stored in report_jobs (migrations/0005_reports.sql), shared by the reports
// service (which creates, shows and cancels jobs) and the report workers (which run them), with
// the SQL that reads a row and the helpers both sides use to build the workflow's events.
#pragma once

#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "kurt/events/v1/report_events.pb.h"
#include "kurt/reports/v1/reports.pb.h"
#include "pqxx/pqxx"

namespace kurt::reports {

using v1::ReportKind;
using v1::ReportState;

// The outbox table both sides write their events to.
inline constexpr char kOutboxTable[] = "outbox";

struct ReportJob {
  std::string id;
  std::string account_id;
  std::string request_id;
  ReportKind kind = v1::REPORT_KIND_UNSPECIFIED;
  std::string code;
  absl::Time start_time;
  absl::Time end_time;
  ReportState state = v1::REPORT_STATE_UNSPECIFIED;
  int64_t progress_rows = 0;
  int64_t row_count = 0;
  int64_t size_bytes = 0;
  std::string content_type;
  std::string artifact_key;
  std::string error;
  int attempts = 0;
  std::string worker_id;  // "" when none
  std::optional<absl::Time> lease_until;
  std::string request_event_id;
  absl::Time create_time;
  absl::Time update_time;
  std::optional<absl::Time> finish_time;
  // When it became EXPIRED (its artifact deleted after the retention period).
  std::optional<absl::Time> expire_time;

  bool Terminal() const {
    return state == v1::SUCCEEDED || state == v1::FAILED || state == v1::CANCELLED ||
           state == v1::EXPIRED;
  }
};

// The columns JobFromRow reads, in order (timestamps as exact microseconds).
extern const char kJobColumns[];
ReportJob JobFromRow(const pqxx::row& row);

// "CLICKS_CSV" etc., as the database stores kinds and states (the proto enum names).
std::string KindName(ReportKind kind);
std::string StateName(ReportState state);

// text/csv or application/json; the artifact key's extension.
std::string ContentTypeOf(ReportKind kind);
std::string ExtensionOf(ReportKind kind);

// The Content-Disposition of a report's download: an attachment (a browser saves it, never shows
// it inline) named kurt-report-<id>.csv or .json by the content type. `id` is a report id.
std::string ContentDispositionOf(absl::string_view id, absl::string_view content_type);

// RFC 3339 with microseconds, for SQL parameters (cast with ::timestamptz) and documents.
std::string Rfc3339(absl::Time t);

// The kurt.reports.requested.v1 event of a job (also what goes to the dead-letter topic).
events::v1::ReportRequested RequestedEvent(const ReportJob& job);
// The kurt.reports.completed.v1 event of a job in its final state.
events::v1::ReportCompleted CompletedEvent(const ReportJob& job);
std::string CompletedEventId(const std::string& report_id);

// The API view of a job.
void ToProto(const ReportJob& job, v1::Report* out);

// Whether `id` looks like a UUID (what report ids are); other text is never a report.
bool IsReportId(absl::string_view id);

}  // namespace kurt::reports
