// Where a report's rows come from: the raw clicks of the account's links in the job's range,
// read on a replica and written to an artifact in bounded memory. The CSV streams out of
// PostgreSQL's COPY (the same path as psql's \copy); the JSON summary reads aggregates through
// a server-side cursor. All of the report SQL is in report_source.cc.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "platform/pg/pg.h"
#include "services/reports/artifact_storage.h"
#include "services/reports/report_job.h"

namespace kurt::report_worker {

// Told the rows written so far, every chunk; returning false stops the scan (CANCELLED).
using ProgressCallback = std::function<bool(int64_t rows)>;

class ReportSource {
 public:
  virtual ~ReportSource() = default;
  // Writes the job's artifact (CSV or JSON by its kind) and returns the number of clicks in it.
  virtual absl::StatusOr<int64_t> Write(const reports::ReportJob& job, reports::ArtifactWriter* out,
                                        const ProgressCallback& progress) = 0;
};

// The COPY statement of a CLICKS_CSV report (also what tools/bench.d/reports.sh times psql's
// \copy with). `quote` turns a value into an SQL literal; `codes`, the codes of the job's links
// when listed rather than joined (report_source.cc says why).
std::string ClicksCsvQuery(const reports::ReportJob& job,
                           const std::function<std::string(const std::string&)>& quote,
                           const std::optional<std::vector<std::string>>& codes);

struct PgReportSourceOptions {
  // Rows between progress calls (and cancellation checks).
  int64_t chunk_rows = 10000;
  // Rows per second at most (0: unlimited), to spare the replica.
  int64_t max_rows_per_second = 0;
  // Bound on one report's queries (0: none).
  absl::Duration statement_timeout = absl::ZeroDuration();
  absl::Duration connect_timeout = absl::Seconds(5);
};

class PgReportSource : public ReportSource {
 public:
  // `cluster` outlives the source; scans go to its read pool (a usable replica, else primary).
  PgReportSource(PgReportSourceOptions options, pg::PgCluster* cluster);

  absl::StatusOr<int64_t> Write(const reports::ReportJob& job, reports::ArtifactWriter* out,
                                const ProgressCallback& progress) override;

 private:
  absl::StatusOr<int64_t> WriteCsv(class PqConnection& conn, const reports::ReportJob& job,
                                   reports::ArtifactWriter* out, const ProgressCallback& progress);
  absl::StatusOr<int64_t> WriteSummary(class PqConnection& conn, const reports::ReportJob& job,
                                       reports::ArtifactWriter* out,
                                       const ProgressCallback& progress);
  // The statements that set up a scan's transaction (its time zone and statement timeout).
  std::string ScanSettings() const;

  const PgReportSourceOptions options_;
  pg::PgCluster* cluster_;
};

}  // namespace kurt::report_worker
