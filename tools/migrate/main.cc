// kurt-migrate: applies migrations/*.sql to the primary and exits.
#include <filesystem>
#include <iostream>

#include "absl/flags/flag.h"
#include "platform/core/config.h"
#include "platform/core/log.h"
#include "platform/pg/pg.h"
#include "tools/migrate/migrator.h"

ABSL_FLAG(std::string, migrations_dir, "",
          "Directory of NNNN_name.sql files (default: migrations/ of the source tree this binary "
          "was built from, else /usr/share/kurt/migrations)");

ABSL_FLAG(std::string, pg_admin_url, "",
          "PostgreSQL primary reached directly, not through PgBouncer: migrations hold a session "
          "advisory lock across transactions, which transaction pooling cannot keep (empty: "
          "--pg_primary_url)");

namespace {

std::string DefaultDir(const char* argv0) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path exe = fs::canonical("/proc/self/exe", ec);
  if (ec) {
    exe = fs::absolute(argv0);
  }
  // build/bin/kurt-migrate -> ../../migrations
  fs::path source = exe.parent_path().parent_path().parent_path() / "migrations";
  if (fs::is_directory(source, ec)) {
    return source.string();
  }
  return "/usr/share/kurt/migrations";
}

}  // namespace

int main(int argc, char** argv) {
  kurt::platform::InitProcess(argc, argv, "migrate", "kurt-migrate [--migrations_dir=DIR]");
  std::string dir = absl::GetFlag(FLAGS_migrations_dir);
  if (dir.empty()) {
    dir = DefaultDir(argv[0]);
  }
  auto migrations = kurt::migrate::LoadMigrations(dir);
  if (!migrations.ok()) {
    KURT_LOG(kError, "cannot read migrations", {"error", migrations.status().ToString()});
    return 1;
  }
  kurt::pg::PoolOptions options;
  options.url = absl::GetFlag(FLAGS_pg_admin_url);
  if (options.url.empty()) {
    options.url = absl::GetFlag(FLAGS_pg_primary_url);
  }
  options.max_connections = 1;
  options.statement_timeout = absl::ZeroDuration();
  kurt::pg::PgPool primary(options);
  auto applied = kurt::migrate::Apply(primary, *migrations);
  if (!applied.ok()) {
    KURT_LOG(kError, "migration failed", {"error", applied.status().ToString()});
    return 1;
  }
  KURT_LOG(kInfo, "database is up to date", {"applied", applied->size()},
           {"known", migrations->size()});
  return 0;
}
