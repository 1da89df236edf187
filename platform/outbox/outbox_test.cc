#include "platform/outbox/outbox.h"

#include "gtest/gtest.h"

namespace kurt::outbox {
namespace {

TEST(OutboxTest, TableNamesArePlainIdentifiers) {
  EXPECT_TRUE(IsValidTableName("outbox"));
  EXPECT_TRUE(IsValidTableName("_outbox_2"));
  EXPECT_FALSE(IsValidTableName(""));
  EXPECT_FALSE(IsValidTableName("2outbox"));
  EXPECT_FALSE(IsValidTableName("Outbox"));
  EXPECT_FALSE(IsValidTableName("outbox; DROP TABLE x"));
  EXPECT_FALSE(IsValidTableName("public.outbox"));
  EXPECT_FALSE(IsValidTableName(std::string(64, 'a')));
  EXPECT_TRUE(IsValidTableName(std::string(63, 'a')));
}

TEST(OutboxTest, AnInvalidTableNameAbortsLoudly) {
  pg::PoolOptions o;
  o.url = "postgresql://nobody@127.0.0.1:1/none";
  pg::PgPool pool(o);
  metrics::Registry registry;
  RelayOptions options;
  options.table = "bad name";
  EXPECT_DEATH(OutboxRelay(options, &pool, nullptr, &registry), "invalid outbox table name");
}

}  // namespace
}  // namespace kurt::outbox
