// What integration tests need to reach the local stack (tools/stack up): its addresses, taken
// from the same KURT_* variables as the binaries (so `. .kurt/env` works) with the same defaults,
// and scratch databases so that tests sharing one stack do not see each other's rows.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "platform/pg/pg.h"

namespace kurt::testing {

std::string PgPrimaryUrl();
std::string PgReplicaUrl();
std::string RedisUrl();
std::string KafkaBrokers();
// The source tree (for migrations/ and other fixtures).
std::string SourceDir();

// Lower-case letters and digits, for names of one test's own topics, groups and databases.
std::string RandomName(const std::string& prefix);

// A database created on the primary for one test (so it also exists on the streaming replica)
// with every migration applied; dropped on destruction.
class ScratchDatabase {
 public:
  // With apply_migrations false the database is empty (for the migrator's own tests).
  explicit ScratchDatabase(bool apply_migrations = true);
  ~ScratchDatabase();
  const std::string& name() const { return name_; }
  std::string primary_url() const;
  std::string replica_url() const;
  // Waits until the replica has replayed everything the primary wrote so far.
  void WaitForReplica() const;
  // A cluster of this database on the primary and on the replica ("replica0"), with the pools'
  // default sizes; tests size them for their load.
  pg::ClusterOptions ClusterOptions() const;

 private:
  std::string name_;
};

// Every row of every table of the database at `url`, as PostgreSQL's text form of the row, one per
// line: for tests that a secret is stored nowhere.
std::string AllRowsAsText(const std::string& url);

// The first column of the one row `sql` returns, as text ("NULL" for a null); throws when the
// query fails or returns other than one row.
std::string QueryText(pg::PgPool& pool, const std::string& sql);

// Replaces the database name of a postgresql:// URL.
std::string WithDatabase(const std::string& url, const std::string& database);

// Runs `<env> tools/stack <verb> <server>` (`stop`, `start`, `status`; start waits until the
// server is ready; `server` may be "--ha NAME"; `env` e.g. "KURT_STACK_SIGNAL=KILL"), for tests
// that take a server of the stack away; true on success.
bool Stack(const std::string& verb, const std::string& server, const std::string& env = "");

// Pauses or resumes WAL replay on the stack's streaming replica, so that it lags behind the
// primary for as long as a test needs.
absl::Status PauseReplicaReplay(bool paused);

}  // namespace kurt::testing

namespace kurt::testing {

// Creates a topic on the local brokers (auto-creation is off there), replicated as their
// default.replication.factor says, and waits until it is usable.
void CreateTopic(const std::string& name, int partitions);

// The group's committed offsets on a topic, per partition (-1001 where none).
std::vector<int64_t> CommittedOffsets(const std::string& group, const std::string& topic,
                                      int partitions);

}  // namespace kurt::testing
