#include "tests/reports/report_test_support.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "platform/pg/pg.h"

namespace kurt::testing {

namespace {

pg::PoolOptions Pool(const std::string& url) {
  pg::PoolOptions o;
  o.url = url;
  o.max_connections = 1;
  o.statement_timeout = absl::Seconds(120);
  return o;
}

void Check(const absl::Status& s, const std::string& what) {
  if (!s.ok()) {
    throw std::runtime_error(absl::StrCat(what, ": ", s.ToString()));
  }
}

}  // namespace

std::string QueryValue(const std::string& url, const std::string& sql) {
  pg::PgPool pool(Pool(url));
  std::string out;
  Check(pool.Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    pqxx::result r = tx.exec(sql);
    if (!r.empty() && !r[0][0].is_null()) {
      out = r[0][0].as<std::string>();
    }
  }),
        sql);
  return out;
}

int64_t QueryInt(const std::string& url, const std::string& sql) {
  std::string v = QueryValue(url, sql);
  return v.empty() ? 0 : std::stoll(v);
}

void Exec(const std::string& url, const std::string& sql) {
  pg::PgPool pool(Pool(url));
  Check(pool.Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    tx.exec(sql);
  }),
        sql);
}

void SeedClicks(const std::string& url, const std::string& account,
                const std::vector<std::string>& codes, int64_t per_code, absl::Time start,
                absl::Duration spacing) {
  pg::PgPool pool(Pool(url));
  Check(pool.Transact([&](pqxx::work& tx) {
    for (const std::string& code : codes) {
      tx.exec_params(
          "INSERT INTO links (code, account_id, target_url) VALUES ($1, $2, "
          "'https://example.com/' || $1) ON CONFLICT (code) DO NOTHING",
          code, account);
      tx.exec_params(
          "INSERT INTO clicks (code, click_time, event_id, referrer, user_agent, "
          "client_hash, kafka_partition, kafka_offset, bot, country) "
          "SELECT $1, to_timestamp($2::double precision) + i * ($3::bigint * interval "
          "'1 microsecond'), $1 || '-' || i, 'https://ref' || (i % 7) || '.example/', "
          "'agent' || (i % 3), 'client' || (i % 101), 0, i, i % 4 = 0, "
          "(ARRAY['', 'DE', 'US', 'DE', 'JP'])[i % 5 + 1] "
          "FROM generate_series(0, $4::bigint - 1) AS i",
          code, absl::ToDoubleSeconds(start - absl::UnixEpoch()),
          absl::ToInt64Microseconds(spacing), per_code);
    }
  }),
        "seeding clicks");
}

namespace {

// A text column as a clicks CSV holds it: quoted, quotes doubled, and a leading '=', '+', '-',
// '@', tab or carriage return made text by a single quote (OWASP).
std::string CsvCell(const std::string& column) {
  return absl::StrCat("'\"' || replace(CASE WHEN left(", column,
                      ", 1) IN ('=', '+', '-', '@', E'\\t', E'\\r') THEN '''' || ", column,
                      " ELSE ", column, " END, '\"', '\"\"') || '\"'");
}

}  // namespace

std::string ExpectedCsv(const std::string& url, const std::string& account, absl::Time start,
                        absl::Time end) {
  pg::PgPool pool(Pool(url));
  std::string out = "code,click_time,referrer,user_agent,client_hash,event_id,bot,country\n";
  Check(pool.Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    tx.exec("SET TimeZone = 'UTC'");
    pqxx::result r = tx.exec_params(
        // COPY's CSV quotes empty strings (an unquoted empty field is NULL); code, referrer and
        // user agent are always quoted, and neutralized where a spreadsheet sees a formula.
        "SELECT string_agg(concat_ws(',', " + CsvCell("c.code") + ", c.click_time::text, " +
            CsvCell("c.referrer") + ", " + CsvCell("c.user_agent") + ", " +
            "CASE c.client_hash WHEN '' THEN '\"\"' ELSE c.client_hash END, c.event_id, "
            "c.bot::text, CASE c.country WHEN '' THEN '\"\"' ELSE c.country END), E'\\n' "
            "ORDER BY c.code, c.click_time, c.event_id) "
            "FROM clicks c JOIN links l ON l.code = c.code WHERE l.account_id = $1 AND "
            "c.click_time >= to_timestamp($2::double precision) AND "
            "c.click_time < to_timestamp($3::double precision)",
        account, absl::ToDoubleSeconds(start - absl::UnixEpoch()),
        absl::ToDoubleSeconds(end - absl::UnixEpoch()));
    if (!r[0][0].is_null()) {
      absl::StrAppend(&out, r[0][0].as<std::string>(), "\n");
    }
  }),
        "expected CSV");
  return out;
}

std::string BinaryPath(const std::string& name) { return absl::StrCat(KURT_BINARY_DIR, "/", name); }

std::string TempDir(const std::string& prefix) {
  std::string dir =
      absl::StrCat(std::filesystem::temp_directory_path().string(), "/", RandomName(prefix));
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace kurt::testing
