// PostgreSQL through PgBouncer's transaction pooling (the --ha stack, as deployed): a client's
// statement timeout holds for its own transactions and never for another client's statements,
// and a report scan runs under its own (none) without leaving it behind.
#include <libpq-fe.h>

#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "platform/pg/pg.h"
#include "services/report-worker/report_source.h"
#include "tests/ha/ha_env.h"
#include "tests/support/stack_env.h"

namespace kurt::testing {
namespace {

pg::PoolOptions Pool(const std::string& url, absl::Duration statement_timeout, int connections) {
  pg::PoolOptions o;
  o.url = url;
  o.name = absl::StrCat("timeout", absl::ToInt64Milliseconds(statement_timeout), "ms");
  o.max_connections = connections;
  o.statement_timeout = statement_timeout;
  return o;
}

// The pooler's own view of how it pools (its admin console, database "pgbouncer", which libpqxx
// refuses to talk to: libpq then).
std::string PoolMode(const std::string& pooled_url) {
  const std::string url = WithDatabase(pooled_url, "pgbouncer");
  std::unique_ptr<PGconn, void (*)(PGconn*)> conn(PQconnectdb(url.c_str()), PQfinish);
  EXPECT_EQ(PQstatus(conn.get()), CONNECTION_OK) << PQerrorMessage(conn.get());
  std::unique_ptr<PGresult, void (*)(PGresult*)> res(PQexec(conn.get(), "SHOW CONFIG"), PQclear);
  EXPECT_EQ(PQresultStatus(res.get()), PGRES_TUPLES_OK) << PQerrorMessage(conn.get());
  for (int i = 0; i < PQntuples(res.get()); ++i) {
    if (std::string(PQgetvalue(res.get(), i, 0)) == "pool_mode") {
      return PQgetvalue(res.get(), i, 1);
    }
  }
  return "";
}

// `n` statements of `seconds` each at once, on as many connections (so on as many server sessions
// behind PgBouncer); their statuses.
std::vector<absl::Status> SleepAtOnce(pg::PgPool& pool, int n, double seconds) {
  std::vector<absl::Status> out(n);
  std::vector<std::thread> threads;
  threads.reserve(n);
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      out[i] = pool.Run([&](pqxx::connection& c) {
        pqxx::nontransaction tx(c);
        tx.exec(absl::StrCat("SELECT pg_sleep(", seconds, ")"));
      });
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  return out;
}

TEST(HaPgPoolingTest, ServicesReachPostgresThroughTransactionPooling) {
  EXPECT_EQ(PoolMode(HaEnv("KURT_PG_PRIMARY_URL")), "transaction");
}

TEST(HaPgPoolingTest, OneClientsTimeoutNeitherLeaksToOthersNorIsLost) {
  HaScratchDatabase db(/*apply_migrations=*/false);
  pg::PgPool patient(Pool(db.pooled_url(), absl::ZeroDuration(), 4));
  for (int round = 0; round < 5; ++round) {
    // A client with a short timeout connects and works; PgBouncer hands its server session on.
    pg::PgPool hurried(Pool(db.pooled_url(), absl::Milliseconds(300), 1));
    ASSERT_TRUE(hurried.Transact([](pqxx::work& tx) { tx.exec("SELECT 1"); }).ok());
    ASSERT_TRUE(hurried.Ping().ok());

    // Its timeout holds for its own transactions...
    absl::Status own = hurried.Transact([](pqxx::work& tx) { tx.exec("SELECT pg_sleep(1.5)"); });
    EXPECT_EQ(own.code(), absl::StatusCode::kDeadlineExceeded) << "round " << round << ": " << own;

    // ...and for none of another client's statements, whichever server session they get.
    for (const absl::Status& s : SleepAtOnce(patient, 4, 0.6)) {
      EXPECT_TRUE(s.ok()) << "round " << round << ": another client's timeout cancelled " << s;
    }
  }
}

class HaPgReportScanTest : public ::testing::Test {
 protected:
  static constexpr int kClicks = 200000;

  void SetUp() override {
    pg::PgPool direct(Pool(db_.direct_url(), absl::ZeroDuration(), 1));
    ASSERT_TRUE(direct
                    .Transact([&](pqxx::work& tx) {
                      tx.exec(
                          "INSERT INTO links (code, account_id, target_url) "
                          "VALUES ('scan1', 'acct-scan', 'https://example.com/')");
                      tx.exec(absl::StrCat(
                          "INSERT INTO clicks (code, click_time, event_id, referrer, user_agent, "
                          "client_hash, kafka_partition, kafka_offset) "
                          "SELECT 'scan1', timestamptz '2026-01-01' + i * interval '1 second', "
                          "'ev-' || i, 'https://referrer.example/', repeat('agent ', 8), "
                          "md5(i::text), 0, i FROM generate_series(1, ",
                          kClicks, ") i"));
                    })
                    .ok());
    // From now on every new session of this database has a 100 ms statement timeout, the kind of
    // default a deployment sets; sessions PgBouncer opens from here on start with it.
    ASSERT_TRUE(direct
                    .Run([&](pqxx::connection& c) {
                      pqxx::nontransaction tx(c);
                      tx.exec(absl::StrCat("ALTER DATABASE ", db_.name(),
                                           " SET statement_timeout = '100ms'"));
                    })
                    .ok());
  }

  HaScratchDatabase db_;
};

// A sink for the report's bytes that counts them.
class CountingWriter : public reports::ArtifactWriter {
 public:
  absl::Status Append(absl::string_view data) override {
    bytes_ += static_cast<int64_t>(data.size());
    return absl::OkStatus();
  }
  absl::StatusOr<int64_t> Commit() override { return bytes_; }

 private:
  int64_t bytes_ = 0;
};

TEST_F(HaPgReportScanTest, ScanRunsWithoutTimeoutAndLeavesNoneBehind) {
  pg::ClusterOptions co;
  co.primary = Pool(db_.pooled_url(), absl::ZeroDuration(), 4);
  pg::PgCluster cluster(co);

  // The scan is paced, so its COPY runs for seconds on the server, far beyond the database's
  // default: only its own setting (none) inside its transaction lets it finish.
  report_worker::PgReportSourceOptions so;
  so.chunk_rows = 1000;
  so.max_rows_per_second = 100000;
  so.statement_timeout = absl::ZeroDuration();
  report_worker::PgReportSource source(so, &cluster);
  reports::ReportJob job;
  job.id = "scan-job";
  job.account_id = "acct-scan";
  job.kind = reports::v1::CLICKS_CSV;
  job.start_time = absl::FromUnixSeconds(0);
  job.end_time = absl::Now();
  CountingWriter out;
  const absl::Time start = absl::Now();
  absl::StatusOr<int64_t> rows = source.Write(job, &out, [](int64_t) { return true; });
  const absl::Duration took = absl::Now() - start;
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_EQ(*rows, kClicks);
  EXPECT_GT(took, absl::Seconds(1)) << "the scan was meant to outlast the 100 ms default";
  std::printf("report scan through PgBouncer: %d rows in %.2f s\n", kClicks,
              absl::ToDoubleSeconds(took));

  // The database's default holds again for the next client on any server session: the scan's
  // "no timeout" went with its transaction.
  pg::PgPool next(Pool(db_.pooled_url(), absl::ZeroDuration(), 4));
  for (const absl::Status& s : SleepAtOnce(next, 4, 0.5)) {
    EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded)
        << "a statement after the scan ran without the database's timeout: " << s;
  }
}

}  // namespace
}  // namespace kurt::testing
