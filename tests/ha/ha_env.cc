#include "tests/ha/ha_env.h"

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <regex>
#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "platform/pg/pg.h"
#include "tests/support/stack_env.h"
#include "tools/migrate/migrator.h"

namespace kurt::testing {
namespace {

void Check(const absl::Status& s, const std::string& what) {
  if (!s.ok()) {
    throw std::runtime_error(absl::StrCat(what, ": ", s.ToString()));
  }
}

pg::PgPool AdminPool(const std::string& url) {
  pg::PoolOptions o;
  o.url = url;
  o.name = "admin";
  o.max_connections = 1;
  o.statement_timeout = absl::ZeroDuration();
  return pg::PgPool(o);
}

}  // namespace

std::string HaEnv(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') {
    throw std::runtime_error(absl::StrCat(
        name,
        " is not set: start the --ha stack (tools/stack up --ha) and load its environment "
        "(set -a; . .kurt/ha/stack.env; set +a)"));
  }
  return v;
}

HaScratchDatabase::HaScratchDatabase(bool apply_migrations) : name_(RandomName("kurt_ha_test_")) {
  Check(AdminPool(HaEnv("KURT_PG_ADMIN_URL")).Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    tx.exec(absl::StrCat("CREATE DATABASE ", name_));
  }),
        "creating the scratch database");
  if (!apply_migrations) {
    return;
  }
  auto migrations = migrate::LoadMigrations(SourceDir() + "/migrations");
  Check(migrations.status(), "reading migrations");
  pg::PgPool pool = AdminPool(direct_url());
  Check(migrate::Apply(pool, *migrations).status(), "migrating the scratch database");
}

HaScratchDatabase::~HaScratchDatabase() {
  try {
    (void)AdminPool(HaEnv("KURT_PG_ADMIN_URL")).Run([&](pqxx::connection& c) {
      pqxx::nontransaction tx(c);
      tx.exec(absl::StrCat("DROP DATABASE IF EXISTS ", name_, " WITH (FORCE)"));
    });
  } catch (const std::exception&) {
  }
}

std::string HaScratchDatabase::pooled_url() const {
  return WithDatabase(HaEnv("KURT_PG_PRIMARY_URL"), name_);
}

std::string HaScratchDatabase::direct_url() const {
  return WithDatabase(HaEnv("KURT_PG_ADMIN_URL"), name_);
}

absl::StatusOr<std::vector<PatroniMember>> PatroniCluster() {
  static const std::regex kMember(
      R"re("name": "([^"]*)", "role": "([^"]*)", "state": "([^"]*)", "api_url": "(http://[^/"]*))re");
  for (absl::string_view url : absl::StrSplit(HaEnv("KURT_PATRONI_URLS"), ',')) {
    const std::string cmd = absl::StrCat("curl -s -m 2 '", url, "/cluster' 2>/dev/null");
    std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), pclose);
    if (!pipe) {
      continue;
    }
    std::string json;
    char buf[4096];
    while (size_t n = std::fread(buf, 1, sizeof(buf), pipe.get())) {
      json.append(buf, n);
    }
    std::vector<PatroniMember> members;
    for (std::sregex_iterator it(json.begin(), json.end(), kMember), end; it != end; ++it) {
      members.push_back({(*it)[1], (*it)[2], (*it)[3], (*it)[4]});
    }
    if (!members.empty()) {
      return members;
    }
  }
  return absl::UnavailableError("no Patroni of KURT_PATRONI_URLS answers GET /cluster");
}

std::string HaStateDir() {
  const char* state = std::getenv("KURT_STATE_DIR");
  return absl::StrCat(state && *state ? state : SourceDir() + "/.kurt", "/ha");
}

}  // namespace kurt::testing
