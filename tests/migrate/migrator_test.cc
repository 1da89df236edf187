#include "tools/migrate/migrator.h"

#include <filesystem>
#include <fstream>
#include <thread>

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

}  // namespace
}  // namespace kurt::migrate
