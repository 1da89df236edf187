#include "tools/migrate/migrator.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "platform/core/log.h"
#include "platform/core/sha256.h"

namespace kurt::migrate {
namespace {

// Any constant will do, as long as every migrator uses the same one.
constexpr int64_t kAdvisoryLockKey = 0x6b7572746d696772;  // "kurtmigr"

}  // namespace

absl::StatusOr<std::vector<Migration>> LoadMigrations(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return absl::NotFoundError(absl::StrCat("migrations directory not found: ", dir));
  }
  std::map<int, Migration> by_version;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string file = entry.path().filename().string();
    if (entry.path().extension() != ".sql") {
      continue;
    }
    size_t underscore = file.find('_');
    int version = 0;
    if (underscore == std::string::npos ||
        !absl::SimpleAtoi(file.substr(0, underscore), &version) || version <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("migration file name must be NNNN_name.sql: ", file));
    }
    std::ifstream in(entry.path());
    std::stringstream ss;
    ss << in.rdbuf();
    Migration m{version, file, ss.str(), ""};
    m.checksum = platform::Sha256Hex(m.sql);
    auto [it, inserted] = by_version.emplace(version, std::move(m));
    if (!inserted) {
      return absl::InvalidArgumentError(absl::StrCat("two migrations with number ", version, ": ",
                                                     it->second.name, " and ", file));
    }
  }
  std::vector<Migration> out;
  out.reserve(by_version.size());
  for (auto& [v, m] : by_version) {
    out.push_back(std::move(m));
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> Apply(pg::PgPool& primary,
                                               const std::vector<Migration>& migrations) {
  std::vector<std::string> applied;
  absl::Status error;
  absl::Status s = primary.Run([&](pqxx::connection& c) {
    pqxx::nontransaction session(c);
    // Session-level lock: held across the per-migration transactions below.
    session.exec(absl::StrCat("SELECT pg_advisory_lock(", kAdvisoryLockKey, ")"));
    session.exec(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())");
    std::map<int, std::pair<std::string, std::string>> done;
    for (const auto& row : session.exec("SELECT version, name, checksum FROM schema_migrations")) {
      done[row[0].as<int>()] = {row[1].as<std::string>(), row[2].as<std::string>()};
    }
    session.commit();
    try {
      for (const Migration& m : migrations) {
        auto it = done.find(m.version);
        if (it != done.end()) {
          if (it->second.second != m.checksum) {
            error = absl::FailedPreconditionError(
                absl::StrCat("migration ", m.name, " was changed after it was applied (as ",
                             it->second.first, "); add a new migration instead"));
            break;
          }
          continue;
        }
        pqxx::work tx(c);
        tx.exec(m.sql);
        tx.exec_params("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1,$2,$3)",
                       m.version, m.name, m.checksum);
        tx.commit();
        applied.push_back(m.name);
        KURT_LOG(kInfo, "migration applied", {"name", m.name});
      }
    } catch (...) {
      pqxx::nontransaction unlock(c);
      unlock.exec(absl::StrCat("SELECT pg_advisory_unlock(", kAdvisoryLockKey, ")"));
      throw;
    }
    pqxx::nontransaction unlock(c);
    unlock.exec(absl::StrCat("SELECT pg_advisory_unlock(", kAdvisoryLockKey, ")"));
  });
  if (!s.ok()) {
    return s;
  }
  if (!error.ok()) {
    return error;
  }
  return applied;
}

}  // namespace kurt::migrate
