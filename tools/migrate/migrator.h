// Applies numbered SQL migrations (NNNN_name.sql) to PostgreSQL once each, recording them in
// schema_migrations. Concurrent migrators serialise on an advisory lock; an applied file whose
// contents changed is an error, never silently skipped.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "platform/pg/pg.h"

namespace kurt::migrate {

struct Migration {
  int version = 0;
  std::string name;  // the file name
  std::string sql;
  std::string checksum;  // hex SHA-256 of sql
};

// Reads and orders the migrations of a directory; two files with one number are an error.
absl::StatusOr<std::vector<Migration>> LoadMigrations(const std::string& dir);

// Applies the migrations not yet recorded, each in its own transaction with its record.
// Returns the names of those applied.
absl::StatusOr<std::vector<std::string>> Apply(pg::PgPool& primary,
                                               const std::vector<Migration>& migrations);

}  // namespace kurt::migrate
