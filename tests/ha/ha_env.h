// What tests of the --ha stack (tools/stack up --ha) need: its addresses from the KURT_* variables
// of its stack.env, scratch databases reached through PgBouncer, and its Patroni members.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace kurt::testing {

// The variable's value; throws (failing the test) when it is unset or empty, naming it.
std::string HaEnv(const char* name);

// A database made on the leader through KURT_PG_ADMIN_URL (with every migration applied unless
// `apply_migrations` is false), reached by services through PgBouncer; dropped on destruction.
class HaScratchDatabase {
 public:
  explicit HaScratchDatabase(bool apply_migrations = true);
  ~HaScratchDatabase();
  const std::string& name() const { return name_; }
  // Through PgBouncer (KURT_PG_PRIMARY_URL's address), as services reach it.
  std::string pooled_url() const;
  // The leader directly, through HAProxy (KURT_PG_ADMIN_URL's address).
  std::string direct_url() const;

 private:
  std::string name_;
};

// One Patroni member as its REST API describes it.
struct PatroniMember {
  std::string name;  // patroni-N
  std::string role;  // leader, sync_standby, replica
  std::string state;
  std::string rest_url;
};

// The cluster as the first member of KURT_PATRONI_URLS that answers sees it (GET /cluster).
absl::StatusOr<std::vector<PatroniMember>> PatroniCluster();

// The state directory of the --ha stack (tools/stack's $HA_DIR).
std::string HaStateDir();

}  // namespace kurt::testing
