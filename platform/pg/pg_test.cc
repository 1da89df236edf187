#include "platform/pg/pg.h"

#include "gtest/gtest.h"

namespace kurt::pg {
namespace {

template <typename E>
absl::Status Map(E e) {
  try {
    throw e;
  } catch (...) {
    return StatusFromCurrentException("op");
  }
}

TEST(PgStatusTest, MapsDatabaseErrorsToActionableCodes) {
  EXPECT_EQ(Map(pqxx::unique_violation("dup", "", "23505")).code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(Map(pqxx::broken_connection("gone")).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(Map(pqxx::sql_error("timeout", "", "57014")).code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(Map(pqxx::sql_error("serialization", "", "40001")).code(), absl::StatusCode::kAborted);
  EXPECT_EQ(Map(pqxx::sql_error("shutting down", "", "57P01")).code(),
            absl::StatusCode::kUnavailable);
  // A write that reached a standby (a failover in progress) and libpq's own errors (no SQLSTATE:
  // the connection failed under the call) are worth retrying.
  EXPECT_EQ(
      Map(pqxx::sql_error("cannot execute INSERT in a read-only transaction", "", "25006")).code(),
      absl::StatusCode::kUnavailable);
  EXPECT_EQ(Map(pqxx::sql_error("server closed the connection unexpectedly", "", "")).code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(Map(pqxx::sql_error("boom", "", "XX000")).code(), absl::StatusCode::kInternal);
  absl::Status s = Map(std::runtime_error("weird"));
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_NE(s.message().find("op"), std::string::npos);
}

TEST(PgPoolTest, UnreachableDatabaseIsUnavailable) {
  PoolOptions o;
  o.url = "postgresql://kurt@127.0.0.1:1/kurt";
  o.connect_timeout = absl::Seconds(1);
  PgPool pool(o);
  EXPECT_EQ(pool.Ping().code(), absl::StatusCode::kUnavailable);
  // A failed connect gives its slot back: the pool is not exhausted by failures.
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(pool.Ping().code(), absl::StatusCode::kUnavailable);
  }
}

}  // namespace
}  // namespace kurt::pg
