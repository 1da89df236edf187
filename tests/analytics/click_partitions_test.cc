// The clicks table's daily partitions against the real PostgreSQL (migration 0020,
// PgClickStore::EnsurePartitions and IndexEndedDays): days made ahead carry no (code, click_time)
// B-tree, an ended day gets a valid one once, an interrupted build is repaired, and instances
// take turns.
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "platform/pg/pg.h"
#include "services/analytics/click_store.h"
#include "tests/support/stack_env.h"

namespace kurt::analytics {
namespace {

// The partition of the UTC day holding `t`: clicks_yYYYYmMMdDD.
std::string DayPartition(absl::Time t) {
  return absl::StrCat("clicks_", absl::FormatTime("y%Ym%md%d", t, absl::UTCTimeZone()));
}

// 01:00 UTC of the day `days` before today's: clicks from there on stay in that day.
absl::Time DaysAgo(int days) {
  const absl::TimeZone utc = absl::UTCTimeZone();
  return absl::FromCivil(absl::ToCivilDay(absl::Now(), utc) - days, utc) + absl::Hours(1);
}

class ClickPartitionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pg::PoolOptions o;
    o.url = db_.primary_url();
    o.max_connections = 4;
    pool_ = std::make_unique<pg::PgPool>(o);
    store_ = std::make_unique<PgClickStore>(pool_.get());
  }

  void Exec(const std::string& sql) {
    absl::Status s = pool_->Run([&](pqxx::connection& c) {
      pqxx::nontransaction tx(c);
      tx.exec(sql);
    });
    ASSERT_TRUE(s.ok()) << sql << ": " << s;
  }
  std::string Text(const std::string& sql) { return testing::QueryText(*pool_, sql); }
  // "valid", "invalid" or "none": the partition's B-tree on (code, click_time).
  std::string Btree(const std::string& part) {
    return Text(absl::StrCat(
        "SELECT COALESCE((SELECT CASE WHEN bool_or(x.indisvalid) THEN 'valid' ELSE 'invalid' END "
        "FROM pg_index x WHERE x.indrelid = '",
        part,
        "'::regclass AND pg_get_indexdef(x.indexrelid) LIKE '%USING btree (code, click_time)' "
        "HAVING count(*) > 0), 'none')"));
  }
  // Clicks at `t`, `t` + 1 s, ..., for code "c" (and "d" every third).
  void InsertClicks(absl::Time t, int n) {
    Exec(absl::StrCat(
        "INSERT INTO clicks (code, click_time, event_id, kafka_partition, kafka_offset) "
        "SELECT CASE WHEN i % 3 = 0 THEN 'd' ELSE 'c' END, to_timestamp(",
        absl::ToUnixSeconds(t), ") + i * interval '1 second', 'e' || i, 0, i ",
        "FROM generate_series(0, ", n - 1, ") i"));
  }

  testing::ScratchDatabase db_;
  std::unique_ptr<pg::PgPool> pool_;
  std::unique_ptr<PgClickStore> store_;
};

TEST_F(ClickPartitionsTest, DaysMadeAheadAreDailyAndCarryNoBtree) {
  absl::StatusOr<int> created = store_->EnsurePartitions(absl::Now() - absl::Hours(24), 16);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_GE(*created, 1) << "the migration made 9 days; 16 asked";
  // Every partition that has not ended: one UTC day, the BRIN index of times, no B-tree.
  EXPECT_EQ(Text("SELECT count(*) FROM analytics_click_partitions() WHERE hi > now()"), "15");
  EXPECT_EQ(Text("SELECT count(*) FROM analytics_click_partitions() WHERE hi > now() AND "
                 "(hi - lo <> interval '1 day' OR extract(hour FROM lo AT TIME ZONE 'UTC') <> 0)"),
            "0");
  EXPECT_EQ(Text("SELECT count(*) FROM analytics_click_partitions() p JOIN pg_index x ON "
                 "x.indrelid = p.part WHERE p.hi > now() AND pg_get_indexdef(x.indexrelid) LIKE "
                 "'%USING btree%'"),
            "0");
  EXPECT_EQ(Text("SELECT count(*) FROM analytics_click_partitions() p JOIN pg_index x ON "
                 "x.indrelid = p.part WHERE p.hi > now() AND pg_get_indexdef(x.indexrelid) LIKE "
                 "'%USING brin (click_time)'"),
            "15");
  // Nor a CHECK of the range, which every copied row would pay for (the bound says the same).
  EXPECT_EQ(Text("SELECT count(*) FROM analytics_click_partitions() p JOIN pg_constraint k ON "
                 "k.conrelid = p.part WHERE p.hi > now() AND k.contype = 'c'"),
            "0");
  // No partitioned B-tree is left to put one back on them.
  EXPECT_EQ(Text("SELECT to_regclass('clicks_code_time')"), "NULL");
  // A click of now lands in today's partition.
  InsertClicks(absl::Now(), 1);
  EXPECT_EQ(Text("SELECT tableoid::regclass::text FROM clicks"), DayPartition(absl::Now()));
  // Asking again creates nothing.
  created = store_->EnsurePartitions(absl::Now() - absl::Hours(24), 16);
  ASSERT_TRUE(created.ok());
  EXPECT_EQ(*created, 0);
}

TEST_F(ClickPartitionsTest, AnEndedDayGetsItsBtreeOnceAndTheCurrentDayNone) {
  const absl::Time three_days_ago = DaysAgo(3);
  // Rows of a day without partition wait in the default one, and move when it is made.
  InsertClicks(three_days_ago, 500);
  ASSERT_TRUE(store_->EnsurePartitions(three_days_ago, 1).ok());
  const std::string old_day = DayPartition(three_days_ago);
  EXPECT_EQ(Text(absl::StrCat("SELECT count(*) FROM ", old_day)), "500");
  EXPECT_EQ(Text("SELECT count(*) FROM clicks_default"), "0");
  EXPECT_EQ(Btree(old_day), "none");
  const std::string yesterday = DayPartition(DaysAgo(1));
  const std::string today = DayPartition(absl::Now());
  InsertClicks(DaysAgo(1), 100);

  absl::StatusOr<DayIndexing> done = store_->IndexEndedDays();
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_FALSE(done->busy_elsewhere);
  ASSERT_GE(done->built.size(), 2u);
  EXPECT_EQ(done->built.front(), old_day) << "oldest first";
  EXPECT_NE(std::find(done->built.begin(), done->built.end(), yesterday), done->built.end());
  EXPECT_EQ(std::find(done->built.begin(), done->built.end(), today), done->built.end());
  EXPECT_TRUE(done->repaired.empty());
  EXPECT_EQ(Btree(old_day), "valid");
  EXPECT_EQ(Btree(yesterday), "valid");
  EXPECT_EQ(Btree(today), "none");
  EXPECT_EQ(Text(absl::StrCat("SELECT count(*) FROM pg_index WHERE indrelid = '", old_day,
                              "'::regclass AND NOT indisvalid")),
            "0");

  // Again: nothing to do.
  done = store_->IndexEndedDays();
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_TRUE(done->built.empty());
  EXPECT_EQ(Text(absl::StrCat("SELECT count(*) FROM pg_index WHERE indrelid = '", old_day,
                              "'::regclass")),
            "2")
      << "the BRIN index and one B-tree";

  // The planner can read an ended day by code through it (500 rows: a scan is cheaper unless
  // ruled out).
  std::string plan;
  ASSERT_TRUE(
      pool_
          ->Run([&](pqxx::connection& c) {
            pqxx::work tx(c);
            tx.exec("SET LOCAL enable_seqscan = off");
            for (const auto& row : tx.exec(absl::StrCat(
                     "EXPLAIN SELECT * FROM clicks WHERE code = 'd' AND click_time < '",
                     absl::FormatTime(absl::RFC3339_full, DaysAgo(2), absl::UTCTimeZone()), "'"))) {
              plan += row[0].as<std::string>() + "\n";
            }
          })
          .ok());
  EXPECT_NE(plan.find(absl::StrCat(old_day, "_code_time")), std::string::npos) << plan;
}

TEST_F(ClickPartitionsTest, AnInvalidIndexAnInterruptedBuildLeftIsBuiltAgain) {
  const std::string yesterday = DayPartition(DaysAgo(1));
  InsertClicks(DaysAgo(1), 10);
  // A concurrent build that fails half-way leaves an INVALID index under the name the
  // maintenance uses (as a crash or a cancel does): a unique one over repeated codes.
  const std::string name = yesterday + "_code_time";
  absl::Status s = pool_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    tx.exec(absl::StrCat("CREATE UNIQUE INDEX CONCURRENTLY ", name, " ON ", yesterday, " (code)"));
  });
  ASSERT_FALSE(s.ok()) << "the build should have failed on repeated codes";
  ASSERT_EQ(Text(absl::StrCat("SELECT indisvalid::text FROM pg_index WHERE indexrelid = '", name,
                              "'::regclass")),
            "false");

  absl::StatusOr<DayIndexing> done = store_->IndexEndedDays();
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_NE(std::find(done->repaired.begin(), done->repaired.end(), yesterday),
            done->repaired.end());
  EXPECT_EQ(Btree(yesterday), "valid");
  EXPECT_EQ(Text(absl::StrCat("SELECT pg_get_indexdef('", name, "'::regclass)")),
            absl::StrCat("CREATE INDEX ", name, " ON public.", yesterday,
                         " USING btree (code, click_time)"));
}

TEST_F(ClickPartitionsTest, AnInstanceFindingAnotherBuildingLeavesItToIt) {
  const std::string yesterday = DayPartition(DaysAgo(1));
  // Another instance is building: its transaction holds the lock.
  pqxx::connection other(db_.primary_url());
  auto tx = std::make_unique<pqxx::work>(other);
  tx->exec("SELECT pg_advisory_xact_lock(hashtext('kurt.analytics.click_day_indexes'))");
  absl::StatusOr<DayIndexing> done = store_->IndexEndedDays();
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_TRUE(done->busy_elsewhere);
  EXPECT_TRUE(done->built.empty());
  EXPECT_EQ(Btree(yesterday), "none");

  tx->commit();
  tx.reset();
  done = store_->IndexEndedDays();
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_FALSE(done->busy_elsewhere);
  EXPECT_EQ(Btree(yesterday), "valid");
  // The lock went with its transaction.
  EXPECT_EQ(Text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"), "0");
}

}  // namespace
}  // namespace kurt::analytics
