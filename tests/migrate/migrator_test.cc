#include "tools/migrate/migrator.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "tests/support/stack_env.h"

namespace kurt::migrate {
namespace {

namespace fs = std::filesystem;

class MigratorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / testing::RandomName("kurt-migrations-");
    fs::create_directories(dir_);
    pg::PoolOptions o;
    o.url = db_.primary_url();
    o.max_connections = 4;
    pool_ = std::make_unique<pg::PgPool>(o);
  }
  void TearDown() override { fs::remove_all(dir_); }

  void Write(const std::string& name, const std::string& sql) { std::ofstream(dir_ / name) << sql; }
  std::vector<Migration> Load() {
    auto m = LoadMigrations(dir_.string());
    EXPECT_TRUE(m.ok()) << m.status();
    return m.ok() ? *m : std::vector<Migration>{};
  }
  // Rows of the test table t; -1 when it cannot be read.
  int RowsOfT() {
    int rows = -1;
    absl::Status s = pool_->Run([&](pqxx::connection& c) {
      pqxx::nontransaction tx(c);
      rows = tx.exec1("SELECT count(*) FROM t")[0].as<int>();
    });
    EXPECT_TRUE(s.ok()) << s;
    return rows;
  }

  testing::ScratchDatabase db_{/*apply_migrations=*/false};
  fs::path dir_;
  std::unique_ptr<pg::PgPool> pool_;
};

TEST_F(MigratorTest, AppliesEachFileOnceInNumericOrder) {
  Write("0002_b.sql", "INSERT INTO t VALUES (2);");
  Write("0001_a.sql", "CREATE TABLE t (v int);");
  Write("0010_c.sql", "INSERT INTO t VALUES (10);");
  auto applied = Apply(*pool_, Load());
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(*applied, (std::vector<std::string>{"0001_a.sql", "0002_b.sql", "0010_c.sql"}));

  auto again = Apply(*pool_, Load());
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->empty()) << "a second run applies nothing";
  EXPECT_EQ(RowsOfT(), 2);
}

TEST_F(MigratorTest, FailedMigrationChangesNothingAndIsRetried) {
  Write("0001_a.sql", "CREATE TABLE t (v int);");
  Write("0002_bad.sql", "INSERT INTO t VALUES (1); SELECT no_such_function();");
  auto applied = Apply(*pool_, Load());
  EXPECT_FALSE(applied.ok());
  EXPECT_NE(applied.status().message().find("no_such_function"), std::string::npos);
  EXPECT_EQ(RowsOfT(), 0) << "the failed file's transaction was rolled back";
  Write("0002_bad.sql", "INSERT INTO t VALUES (1);");
  applied = Apply(*pool_, Load());
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(*applied, std::vector<std::string>{"0002_bad.sql"});
}

TEST_F(MigratorTest, ChangedAppliedFileIsRefused) {
  Write("0001_a.sql", "CREATE TABLE t (v int);");
  ASSERT_TRUE(Apply(*pool_, Load()).ok());
  Write("0001_a.sql", "CREATE TABLE t (v bigint);");
  auto applied = Apply(*pool_, Load());
  EXPECT_EQ(applied.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(applied.status().message().find("0001_a.sql"), std::string::npos);
}

TEST_F(MigratorTest, BadFileNamesAndDuplicateNumbersAreErrors) {
  Write("0001_a.sql", "SELECT 1;");
  Write("1_again.sql", "SELECT 1;");
  EXPECT_EQ(LoadMigrations(dir_.string()).status().code(), absl::StatusCode::kInvalidArgument);
  fs::remove(dir_ / "1_again.sql");
  Write("notes.sql", "SELECT 1;");
  EXPECT_EQ(LoadMigrations(dir_.string()).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(MigratorTest, ConcurrentMigratorsApplyEachFileOnce) {
  Write("0001_a.sql", "CREATE TABLE t (v int);");
  Write("0002_b.sql", "INSERT INTO t VALUES (1); SELECT pg_sleep(0.2);");
  auto migrations = Load();
  std::vector<std::string> a, b;
  std::thread t1([&] { a = Apply(*pool_, migrations).value(); });
  std::thread t2([&] { b = Apply(*pool_, migrations).value(); });
  t1.join();
  t2.join();
  EXPECT_EQ(a.size() + b.size(), 2u);
  EXPECT_EQ(RowsOfT(), 1);
}

// Migration 0020 on a database with clicks from before it: monthly partitions that hold clicks
// keep them and their B-trees, empty ones give way to daily partitions, the partitioned B-tree is
// gone, and not one click is lost, moved or doubled.
TEST_F(MigratorTest, DailyClickPartitionsKeepEveryClickOfBefore) {
  auto all = LoadMigrations(testing::SourceDir() + "/migrations");
  ASSERT_TRUE(all.ok()) << all.status();
  std::vector<Migration> before;
  for (const Migration& m : *all) {
    if (m.version < 20) {
      before.push_back(m);
    }
  }
  ASSERT_TRUE(Apply(*pool_, before).ok());
  auto query = [&](const std::string& sql) { return testing::QueryText(*pool_, sql); };
  // 0003 made the monthly partitions of last month to two months ahead. Clicks last month, this
  // month, two months ahead (a clock gone wrong), and two years ago (the default partition);
  // next month's stays empty.
  EXPECT_EQ(
      query("WITH ins AS (INSERT INTO clicks (code, click_time, event_id, kafka_partition, "
            "kafka_offset) SELECT 'c' || (i % 7), t + i * interval '1 second', 'e' || i || '-' "
            "|| t, 0, i FROM (SELECT date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE "
            "'UTC' AS m0) m, unnest(ARRAY[m0 - interval '1 month' + interval '9 days', m0, "
            "m0 + interval '2 months', m0 - interval '2 years']) t, generate_series(0, 99) i "
            "RETURNING 1) SELECT count(*) FROM ins"),
      "400");
  const std::string kRows =
      "SELECT count(*) || ' ' || md5(string_agg(concat_ws(',', code, click_time, event_id, "
      "kafka_partition, kafka_offset, tableoid::regclass), ';' ORDER BY event_id)) FROM clicks";
  const std::string rows_before = query(kRows);
  const std::string months = query(
      "SELECT string_agg(inhrelid::regclass::text, ',' ORDER BY inhrelid::regclass::text) FROM "
      "pg_inherits WHERE inhparent = 'clicks'::regclass");
  ASSERT_EQ(std::count(months.begin(), months.end(), ','), 4) << months;

  auto applied = Apply(*pool_, *all);
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(query(kRows), rows_before) << "same clicks in the same partitions";
  EXPECT_TRUE(absl::StartsWith(rows_before, "400 "));
  EXPECT_EQ(query("SELECT to_regclass('clicks_code_time')"), "NULL");
  // The three monthly partitions with clicks and the default one keep a valid B-tree; the empty
  // month is gone.
  EXPECT_EQ(query("SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_inherits i "
                  "JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_index x ON x.indrelid = c.oid "
                  "WHERE i.inhparent = 'clicks'::regclass AND x.indisvalid AND "
                  "pg_get_indexdef(x.indexrelid) LIKE '%USING btree (code, click_time)'"),
            query("SELECT string_agg(DISTINCT tableoid::regclass::text, ',' ORDER BY "
                  "tableoid::regclass::text) FROM clicks"));
  EXPECT_EQ(query("SELECT count(*) FROM analytics_click_partitions() WHERE hi - lo > interval "
                  "'1 day'"),
            "3");
  // The days of next month are daily partitions without the B-tree; today's clicks still go to
  // this month's partition, which holds its days.
  query(
      "SELECT analytics_ensure_click_days(date_trunc('month', now() AT TIME ZONE 'UTC') "
      "AT TIME ZONE 'UTC' + interval '1 month', 2)");
  EXPECT_EQ(query("SELECT count(*) FROM analytics_click_partitions() p WHERE hi - lo = interval "
                  "'1 day' AND lo >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE "
                  "'UTC' + interval '1 month' AND NOT EXISTS (SELECT 1 FROM pg_index x WHERE "
                  "x.indrelid = p.part AND pg_get_indexdef(x.indexrelid) LIKE '%btree%')"),
            query("SELECT count(*) FROM analytics_click_partitions() p WHERE lo >= "
                  "date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' + "
                  "interval '1 month' AND lo < date_trunc('month', now() AT TIME ZONE 'UTC') AT "
                  "TIME ZONE 'UTC' + interval '2 months'"));
  EXPECT_EQ(query("SELECT analytics_ensure_click_days(now(), 1)"), "0");
  EXPECT_EQ(query("INSERT INTO clicks (code, click_time, event_id, kafka_partition, kafka_offset) "
                  "VALUES ('new', now(), 'new', 0, 0) RETURNING tableoid::regclass::text"),
            query("SELECT 'clicks_y' || to_char(now() AT TIME ZONE 'UTC', 'YYYY\"m\"MM')"));
}

}  // namespace
}  // namespace kurt::migrate
