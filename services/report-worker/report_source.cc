#include "services/report-worker/report_source.h"

#include <libpq-fe.h>

#include <memory>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "platform/core/text.h"

namespace kurt::report_worker {

using reports::ArtifactWriter;
using reports::KindName;
using reports::ReportJob;
using reports::Rfc3339;
namespace v1 = reports::v1;

// One libpq connection, for COPY and cursors (libpqxx 6 has no COPY of a query). Used by one
// thread; closed on destruction, which also abandons a COPY in progress.
class PqConnection {
 public:
  static absl::StatusOr<std::unique_ptr<PqConnection>> Connect(const std::string& url,
                                                               absl::Duration timeout) {
    std::string seconds = absl::StrCat(std::max<int64_t>(1, absl::ToInt64Seconds(timeout)));
    const char* keys[] = {"dbname", "connect_timeout", "application_name", nullptr};
    const char* values[] = {url.c_str(), seconds.c_str(), "kurt-report-worker", nullptr};
    PGconn* conn = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
    std::unique_ptr<PqConnection> c(new PqConnection(conn));
    if (conn == nullptr || PQstatus(conn) != CONNECTION_OK) {
      return absl::UnavailableError(absl::StrCat("connecting for the report scan: ",
                                                 conn ? PQerrorMessage(conn) : "out of memory"));
    }
    return c;
  }

  ~PqConnection() {
    if (conn_ != nullptr) {
      PQfinish(conn_);
    }
  }

  PGconn* get() { return conn_; }

  std::string Quote(const std::string& value) {
    char* q = PQescapeLiteral(conn_, value.data(), value.size());
    if (q == nullptr) {
      return "NULL";
    }
    std::string out(q);
    PQfreemem(q);
    return out;
  }

  // Runs a statement; its rows, if any, stay in `*result` (which owns them).
  absl::Status Exec(const std::string& sql, std::shared_ptr<PGresult>* result = nullptr) {
    std::shared_ptr<PGresult> res(PQexec(conn_, sql.c_str()), PQclear);
    absl::Status s = Check(res.get(), PGRES_COMMAND_OK, PGRES_TUPLES_OK);
    if (result != nullptr) {
      *result = std::move(res);
    }
    return s;
  }

  absl::Status Check(PGresult* res, ExecStatusType ok1, ExecStatusType ok2) {
    if (res == nullptr) {
      return Error(nullptr);
    }
    ExecStatusType st = PQresultStatus(res);
    if (st == ok1 || st == ok2) {
      return absl::OkStatus();
    }
    return Error(res);
  }

  absl::Status Error(PGresult* res) {
    std::string msg = res ? PQresultErrorMessage(res) : PQerrorMessage(conn_);
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) {
      msg.pop_back();
    }
    const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
    std::string code = state ? state : "";
    msg = absl::StrCat("report scan: ", msg);
    if (code == "57014") {
      return absl::DeadlineExceededError(msg);
    }
    if (code.empty() || code.rfind("08", 0) == 0 || code == "40001" || code == "57P01" ||
        code == "57P03" || code == "53300" || PQstatus(conn_) != CONNECTION_OK) {
      return absl::UnavailableError(msg);
    }
    return absl::InternalError(absl::StrCat(msg, " (SQLSTATE ", code, ")"));
  }

 private:
  explicit PqConnection(PGconn* conn) : conn_(conn) {}
  PGconn* conn_;
};

namespace {

using Quoter = std::function<std::string(const std::string&)>;

std::string Value(PGresult* res, int row, int col) {
  return std::string(PQgetvalue(res, row, col), PQgetlength(res, row, col));
}

// Above this many links, an account's report queries join links rather than list its codes (a
// literal that long would cost the planner more than it saves).
constexpr int kMostCodesListed = 2000;

// FROM and WHERE of every report query: the account's links (deleted ones too: their clicks are
// still the account's), the job's range and optional code.
//
// `codes`, when given, are the codes of those links, read in the scan's transaction, and the
// query names them as a constant list instead of joining links. The clicks partition being
// written has no (code, click_time) B-tree (migration 0020, docs/analytics.md), and a join makes
// the planner choose one plan for every partition of the range: a hash join scanning all of them.
// With a constant list each partition is read its own way: an ended day through its B-tree, the
// current day by a scan that checks each row against the list hashed.
std::string ClicksOfJob(const ReportJob& job, const Quoter& quote,
                        const std::optional<std::vector<std::string>>& codes) {
  const std::string range = absl::StrCat("c.click_time >= ", quote(Rfc3339(job.start_time)),
                                         "::timestamptz AND c.click_time < ",
                                         quote(Rfc3339(job.end_time)), "::timestamptz");
  if (codes.has_value()) {
    return absl::StrCat("FROM clicks c WHERE c.code = ANY (", quote(pg::TextArrayLiteral(*codes)),
                        "::text[]) AND ", range);
  }
  std::string sql = absl::StrCat(
      "FROM clicks c JOIN links l ON l.code = c.code WHERE l.account_id = ", quote(job.account_id),
      " AND ", range);
  if (!job.code.empty()) {
    absl::StrAppend(&sql, " AND l.code = ", quote(job.code), " AND c.code = ", quote(job.code));
  }
  return sql;
}

// The codes of the job's links (its one code, or all of the account's, deleted ones too), in the
// scan's transaction; none (join links) when there are more than kMostCodesListed.
absl::StatusOr<std::optional<std::vector<std::string>>> CodesOfJob(PqConnection& conn,
                                                                   const ReportJob& job) {
  std::string sql =
      absl::StrCat("SELECT code FROM links WHERE account_id = ", conn.Quote(job.account_id));
  if (!job.code.empty()) {
    absl::StrAppend(&sql, " AND code = ", conn.Quote(job.code));
  }
  absl::StrAppend(&sql, " LIMIT ", kMostCodesListed + 1);
  std::shared_ptr<PGresult> res;
  if (absl::Status s = conn.Exec(sql, &res); !s.ok()) {
    return s;
  }
  const int n = PQntuples(res.get());
  if (n > kMostCodesListed) {
    return std::nullopt;
  }
  std::vector<std::string> codes;
  codes.reserve(n);
  for (int i = 0; i < n; ++i) {
    codes.push_back(Value(res.get(), i, 0));
  }
  return codes;
}

std::string IsoTime(absl::string_view column) {
  return absl::StrCat("to_char(", column,
                      " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')");
}

void AppendJsonString(std::string* out, absl::string_view s) {
  out->push_back('"');
  platform::AppendJsonEscaped(s, out);
  out->push_back('"');
}

// Sleeps as needed so that `rows` rows take at least rows / rate seconds since `start`.
void Throttle(int64_t rows, int64_t rate, absl::Time start) {
  if (rate <= 0) {
    return;
  }
  absl::Duration due = absl::Seconds(static_cast<double>(rows) / static_cast<double>(rate));
  absl::Duration ahead = due - (absl::Now() - start);
  if (ahead > absl::ZeroDuration()) {
    absl::SleepFor(ahead);
  }
}

}  // namespace

std::string CsvSafeText(absl::string_view column, absl::string_view name) {
  // OWASP's rule for CSV injection: a cell a spreadsheet would read as a formula gets a leading
  // single quote, which makes it text; COPY's FORCE_QUOTE then quotes the cell.
  return absl::StrCat("CASE WHEN left(", column, ", 1) IN ('=', '+', '-', '@', E'\\t', E'\\r') ",
                      "THEN '''' || ", column, " ELSE ", column, " END AS ", name);
}

std::string ClicksCsvQuery(const ReportJob& job, const Quoter& quote,
                           const std::optional<std::vector<std::string>>& codes) {
  // Referrers and user agents are whatever clients sent, and codes may start with '-'.
  return absl::StrCat(
      "COPY (SELECT ", CsvSafeText("c.code", "code"), ", c.click_time, ",
      CsvSafeText("c.referrer", "referrer"), ", ", CsvSafeText("c.user_agent", "user_agent"),
      ", c.client_hash, c.event_id, c.bot::text AS bot, c.country ", ClicksOfJob(job, quote, codes),
      " ORDER BY c.code, c.click_time, c.event_id) TO STDOUT WITH (FORMAT csv, "
      "HEADER, FORCE_QUOTE (code, referrer, user_agent))");
}

PgReportSource::PgReportSource(PgReportSourceOptions options, pg::PgCluster* cluster)
    : options_(options), cluster_(cluster) {}

absl::StatusOr<int64_t> PgReportSource::Write(const ReportJob& job, ArtifactWriter* out,
                                              const ProgressCallback& progress) {
  auto conn = PqConnection::Connect(cluster_->ReadPool().options().url, options_.connect_timeout);
  if (!conn.ok()) {
    return conn.status();
  }
  switch (job.kind) {
    case v1::CLICKS_CSV:
      return WriteCsv(**conn, job, out, progress);
    case v1::SUMMARY_JSON:
      return WriteSummary(**conn, job, out, progress);
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("report kind ", KindName(job.kind), " is not known to this worker"));
  }
}

std::string PgReportSource::ScanSettings() const {
  // SET LOCAL, in the scan's own transaction: through PgBouncer's transaction pooling a plain SET
  // would stay on a server session that other clients are given next, and the scan itself could
  // run on another session that never saw it.
  return absl::StrCat("SET LOCAL TimeZone = 'UTC'; SET LOCAL statement_timeout = ",
                      absl::ToInt64Milliseconds(options_.statement_timeout));
}

absl::StatusOr<int64_t> PgReportSource::WriteCsv(PqConnection& conn, const ReportJob& job,
                                                 ArtifactWriter* out,
                                                 const ProgressCallback& progress) {
  if (absl::Status s = conn.Exec(absl::StrCat("BEGIN READ ONLY; ", ScanSettings())); !s.ok()) {
    return s;
  }
  absl::StatusOr<std::optional<std::vector<std::string>>> codes = CodesOfJob(conn, job);
  if (!codes.ok()) {
    return codes.status();
  }
  const std::string sql = ClicksCsvQuery(
      job, [&](const std::string& v) { return conn.Quote(v); }, *codes);
  std::unique_ptr<PGresult, void (*)(PGresult*)> res(PQexec(conn.get(), sql.c_str()), PQclear);
  if (absl::Status s = conn.Check(res.get(), PGRES_COPY_OUT, PGRES_COPY_OUT); !s.ok()) {
    return s;
  }
  res.reset();
  // Each CopyData message is one line: the header, then one per row.
  int64_t lines = 0;
  const absl::Time start = absl::Now();
  for (;;) {
    char* buf = nullptr;
    int n = PQgetCopyData(conn.get(), &buf, /*async=*/0);
    if (n == -1) {
      break;
    }
    if (n < 0) {
      return conn.Error(nullptr);
    }
    absl::Status s = out->Append(absl::string_view(buf, static_cast<size_t>(n)));
    PQfreemem(buf);
    if (!s.ok()) {
      return s;
    }
    ++lines;
    if (lines % options_.chunk_rows == 0) {
      if (!progress(lines - 1)) {
        return absl::CancelledError("report scan stopped");
      }
      Throttle(lines - 1, options_.max_rows_per_second, start);
    }
  }
  res.reset(PQgetResult(conn.get()));
  if (absl::Status s = conn.Check(res.get(), PGRES_COMMAND_OK, PGRES_COMMAND_OK); !s.ok()) {
    return s;
  }
  while (PGresult* extra = PQgetResult(conn.get())) {
    PQclear(extra);
  }
  if (absl::Status s = conn.Exec("COMMIT"); !s.ok()) {
    return s;
  }
  int64_t rows = std::max<int64_t>(0, lines - 1);
  progress(rows);
  return rows;
}

absl::StatusOr<int64_t> PgReportSource::WriteSummary(PqConnection& conn, const ReportJob& job,
                                                     ArtifactWriter* out,
                                                     const ProgressCallback& progress) {
  const Quoter quote = [&](const std::string& v) { return conn.Quote(v); };
  // One snapshot for every part of the summary.
  if (absl::Status s = conn.Exec(
          absl::StrCat("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; ", ScanSettings()));
      !s.ok()) {
    return s;
  }
  absl::StatusOr<std::optional<std::vector<std::string>>> codes = CodesOfJob(conn, job);
  if (!codes.ok()) {
    return codes.status();
  }
  const std::string from = ClicksOfJob(job, quote, *codes);
  std::shared_ptr<PGresult> res;
  if (absl::Status s =
          conn.Exec(absl::StrCat("SELECT count(*), count(DISTINCT c.client_hash), ",
                                 IsoTime("min(c.click_time)"), ", ", IsoTime("max(c.click_time)"),
                                 ", count(*) FILTER (WHERE c.bot) ", from),
                    &res);
      !s.ok()) {
    return s;
  }
  const int64_t total = std::stoll(Value(res.get(), 0, 0));
  std::string doc = "{";
  absl::StrAppend(&doc, "\"reportId\":");
  AppendJsonString(&doc, job.id);
  absl::StrAppend(&doc, ",\"kind\":\"SUMMARY_JSON\",\"startTime\":\"", Rfc3339(job.start_time),
                  "\",\"endTime\":\"", Rfc3339(job.end_time), "\",\"code\":");
  AppendJsonString(&doc, job.code);
  absl::StrAppend(&doc, ",\"totalClicks\":", total, ",\"botClicks\":", Value(res.get(), 0, 4),
                  ",\"uniqueClients\":", Value(res.get(), 0, 1));
  if (total > 0) {
    absl::StrAppend(&doc, ",\"firstClick\":\"", Value(res.get(), 0, 2), "\",\"lastClick\":\"",
                    Value(res.get(), 0, 3), "\"");
  }
  if (!progress(0)) {
    return absl::CancelledError("report scan stopped");
  }

  // Per link and per day through cursors: a large account's summary never sits in memory.
  auto stream = [&](const std::string& name, const std::string& query,
                    const std::function<void(PGresult*, int)>& row) -> absl::Status {
    if (absl::Status s = conn.Exec(absl::StrCat("DECLARE ", name, " NO SCROLL CURSOR FOR ", query));
        !s.ok()) {
      return s;
    }
    for (;;) {
      std::shared_ptr<PGresult> page;
      if (absl::Status s = conn.Exec(absl::StrCat("FETCH 1000 FROM ", name), &page); !s.ok()) {
        return s;
      }
      int n = PQntuples(page.get());
      for (int i = 0; i < n; ++i) {
        row(page.get(), i);
      }
      if (absl::Status s = out->Append(doc); !s.ok()) {
        return s;
      }
      doc.clear();
      if (n == 0) {
        break;
      }
      if (!progress(0)) {
        return absl::CancelledError("report scan stopped");
      }
    }
    return conn.Exec(absl::StrCat("CLOSE ", name));
  };

  absl::StrAppend(&doc, ",\"links\":[");
  bool first = true;
  absl::Status s = stream(
      "report_links",
      absl::StrCat("SELECT c.code, count(*), count(DISTINCT c.client_hash), ",
                   IsoTime("min(c.click_time)"), ", ", IsoTime("max(c.click_time)"),
                   ", count(*) FILTER (WHERE c.bot) ", from, " GROUP BY c.code ORDER BY c.code"),
      [&](PGresult* r, int i) {
        absl::StrAppend(&doc, first ? "" : ",", "{\"code\":");
        AppendJsonString(&doc, Value(r, i, 0));
        absl::StrAppend(&doc, ",\"clicks\":", Value(r, i, 1), ",\"botClicks\":", Value(r, i, 5),
                        ",\"uniqueClients\":", Value(r, i, 2), ",\"firstClick\":\"", Value(r, i, 3),
                        "\",\"lastClick\":\"", Value(r, i, 4), "\"}");
        first = false;
      });
  if (!s.ok()) {
    return s;
  }
  absl::StrAppend(&doc, "],\"clicksPerDay\":[");
  first = true;
  s = stream(
      "report_days",
      absl::StrCat("SELECT to_char(date_trunc('day', c.click_time), 'YYYY-MM-DD'), count(*), ",
                   "count(*) FILTER (WHERE c.bot) ", from, " GROUP BY 1 ORDER BY 1"),
      [&](PGresult* r, int i) {
        absl::StrAppend(&doc, first ? "" : ",", "{\"day\":\"", Value(r, i, 0),
                        "\",\"clicks\":", Value(r, i, 1), ",\"botClicks\":", Value(r, i, 2), "}");
        first = false;
      });
  if (!s.ok()) {
    return s;
  }
  if (s = conn.Exec(absl::StrCat("SELECT c.referrer, count(*) ", from,
                                 " AND c.referrer <> '' GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 20"),
                    &res);
      !s.ok()) {
    return s;
  }
  absl::StrAppend(&doc, "],\"topReferrers\":[");
  for (int i = 0; i < PQntuples(res.get()); ++i) {
    absl::StrAppend(&doc, i ? "," : "", "{\"referrer\":");
    AppendJsonString(&doc, Value(res.get(), i, 0));
    absl::StrAppend(&doc, ",\"clicks\":", Value(res.get(), i, 1), "}");
  }
  // Unknown countries ('') are "ZZ", as in the stats API.
  if (s = conn.Exec(absl::StrCat("SELECT CASE c.country WHEN '' THEN 'ZZ' ELSE c.country END, "
                                 "count(*) ",
                                 from, " GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 20"),
                    &res);
      !s.ok()) {
    return s;
  }
  absl::StrAppend(&doc, "],\"topCountries\":[");
  for (int i = 0; i < PQntuples(res.get()); ++i) {
    absl::StrAppend(&doc, i ? "," : "", "{\"country\":");
    AppendJsonString(&doc, Value(res.get(), i, 0));
    absl::StrAppend(&doc, ",\"clicks\":", Value(res.get(), i, 1), "}");
  }
  absl::StrAppend(&doc, "]}\n");
  if (s = out->Append(doc); !s.ok()) {
    return s;
  }
  if (s = conn.Exec("COMMIT"); !s.ok()) {
    return s;
  }
  progress(total);
  return total;
}

}  // namespace kurt::report_worker
