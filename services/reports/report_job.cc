#include "services/reports/report_job.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "platform/grpc/timestamps.h"

namespace kurt::reports {

const char kJobColumns[] =
    "id::text, account_id, COALESCE(request_id, ''), kind, code, "
    "(extract(epoch from start_time) * 1000000)::bigint, "
    "(extract(epoch from end_time) * 1000000)::bigint, "
    "state, progress_rows, row_count, size_bytes, content_type, artifact_key, error, attempts, "
    "COALESCE(worker_id, ''), (extract(epoch from lease_until) * 1000000)::bigint, "
    "request_event_id, "
    "(extract(epoch from create_time) * 1000000)::bigint, "
    "(extract(epoch from update_time) * 1000000)::bigint, "
    "(extract(epoch from finish_time) * 1000000)::bigint, "
    "(extract(epoch from expire_time) * 1000000)::bigint";

ReportJob JobFromRow(const pqxx::row& r) {
  ReportJob j;
  j.id = r[0].as<std::string>();
  j.account_id = r[1].as<std::string>();
  j.request_id = r[2].as<std::string>();
  if (!v1::ReportKind_Parse(r[3].as<std::string>(), &j.kind)) {
    j.kind = v1::REPORT_KIND_UNSPECIFIED;
  }
  j.code = r[4].as<std::string>();
  j.start_time = absl::FromUnixMicros(r[5].as<int64_t>());
  j.end_time = absl::FromUnixMicros(r[6].as<int64_t>());
  if (!v1::ReportState_Parse(r[7].as<std::string>(), &j.state)) {
    j.state = v1::REPORT_STATE_UNSPECIFIED;
  }
  j.progress_rows = r[8].as<int64_t>();
  j.row_count = r[9].as<int64_t>();
  j.size_bytes = r[10].as<int64_t>();
  j.content_type = r[11].as<std::string>();
  j.artifact_key = r[12].as<std::string>();
  j.error = r[13].as<std::string>();
  j.attempts = r[14].as<int>();
  j.worker_id = r[15].as<std::string>();
  if (!r[16].is_null()) {
    j.lease_until = absl::FromUnixMicros(r[16].as<int64_t>());
  }
  j.request_event_id = r[17].as<std::string>();
  j.create_time = absl::FromUnixMicros(r[18].as<int64_t>());
  j.update_time = absl::FromUnixMicros(r[19].as<int64_t>());
  if (!r[20].is_null()) {
    j.finish_time = absl::FromUnixMicros(r[20].as<int64_t>());
  }
  if (!r[21].is_null()) {
    j.expire_time = absl::FromUnixMicros(r[21].as<int64_t>());
  }
  return j;
}

std::string KindName(ReportKind kind) { return v1::ReportKind_Name(kind); }
std::string StateName(ReportState state) { return v1::ReportState_Name(state); }

std::string ContentTypeOf(ReportKind kind) {
  return kind == v1::SUMMARY_JSON ? "application/json" : "text/csv";
}

std::string ExtensionOf(ReportKind kind) { return kind == v1::SUMMARY_JSON ? ".json" : ".csv"; }

std::string ContentDispositionOf(absl::string_view id, absl::string_view content_type) {
  return absl::StrCat("attachment; filename=\"kurt-report-", id,
                      content_type == "application/json" ? ".json" : ".csv", "\"");
}

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", t, absl::UTCTimeZone());
}

events::v1::ReportRequested RequestedEvent(const ReportJob& job) {
  events::v1::ReportRequested e;
  e.set_event_id(job.request_event_id);
  e.set_report_id(job.id);
  e.set_account_id(job.account_id);
  e.set_kind(job.kind);
  platform::SetTimestamp(job.create_time, e.mutable_request_time());
  return e;
}

std::string CompletedEventId(const std::string& report_id) {
  return absl::StrCat(report_id, "/completed");
}

events::v1::ReportCompleted CompletedEvent(const ReportJob& job) {
  events::v1::ReportCompleted e;
  e.set_event_id(CompletedEventId(job.id));
  e.set_report_id(job.id);
  e.set_account_id(job.account_id);
  e.set_kind(job.kind);
  e.set_state(job.state);
  e.set_row_count(job.row_count);
  e.set_size_bytes(job.size_bytes);
  e.set_content_type(job.content_type);
  e.set_error(job.error);
  if (job.finish_time) {
    platform::SetTimestamp(*job.finish_time, e.mutable_finish_time());
  }
  return e;
}

void ToProto(const ReportJob& job, v1::Report* out) {
  out->set_id(job.id);
  out->set_kind(job.kind);
  platform::SetTimestamp(job.start_time, out->mutable_start_time());
  platform::SetTimestamp(job.end_time, out->mutable_end_time());
  out->set_code(job.code);
  out->set_state(job.state);
  out->set_progress_rows(job.progress_rows);
  out->set_row_count(job.row_count);
  out->set_size_bytes(job.size_bytes);
  out->set_content_type(job.state == v1::SUCCEEDED || job.state == v1::EXPIRED
                            ? job.content_type
                            : ContentTypeOf(job.kind));
  out->set_error(job.error);
  out->set_attempts(job.attempts);
  out->set_request_id(job.request_id);
  platform::SetTimestamp(job.create_time, out->mutable_create_time());
  platform::SetTimestamp(job.update_time, out->mutable_update_time());
  if (job.finish_time) {
    platform::SetTimestamp(*job.finish_time, out->mutable_finish_time());
  }
  if (job.expire_time) {
    platform::SetTimestamp(*job.expire_time, out->mutable_expire_time());
  }
}

bool IsReportId(absl::string_view id) {
  if (id.size() != 36) {
    return false;
  }
  for (size_t i = 0; i < id.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (id[i] != '-') {
        return false;
      }
    } else if (!absl::ascii_isxdigit(static_cast<unsigned char>(id[i]))) {
      return false;
    }
  }
  return true;
}

}  // namespace kurt::reports
