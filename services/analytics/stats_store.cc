#include "services/analytics/stats_store.h"

#include "absl/strings/str_cat.h"

namespace kurt::analytics {
namespace {

// Hour bounds cross the wire as Unix seconds.
constexpr const char* kTopQuery =
    "SELECT %s, sum(clicks)::bigint AS n FROM %s "
    "WHERE code = $1 AND hour >= to_timestamp($2) AND hour < to_timestamp($3) "
    "GROUP BY 1 ORDER BY n DESC, 1 LIMIT $4";

std::string TopQuery(const char* column, const char* table) {
  char buf[512];
  std::snprintf(buf, sizeof(buf), kTopQuery, column, table);
  return buf;
}

}  // namespace

absl::StatusOr<StatsData> PgStatsStore::ReadOn(pg::PgPool* pool, const StatsQuery& q, bool* owned) {
  StatsData data;
  auto read = [&](pqxx::connection& c, const pg::PgPool& on) {
    data = StatsData();
    *owned = false;
    // One snapshot for every query of the request.
    pqxx::transaction<pqxx::isolation_level::repeatable_read, pqxx::readwrite_policy::read_only> tx(
        c);
    on.LimitStatements(tx);
    pqxx::result link = tx.exec_params(
        "SELECT 1 FROM links WHERE code = $1 AND account_id = $2 AND deleted_at IS NULL", q.code,
        q.account_id);
    if (link.empty()) {
      return;
    }
    *owned = true;
    const int64_t start = absl::ToUnixSeconds(q.start), end = absl::ToUnixSeconds(q.end);
    for (const auto& row :
         tx.exec_params("SELECT extract(epoch FROM hour)::bigint, clicks, bot_clicks "
                        "FROM click_hourly "
                        "WHERE code = $1 AND hour >= to_timestamp($2) AND hour < to_timestamp($3) "
                        "ORDER BY hour",
                        q.code, start, end)) {
      const absl::Time hour = absl::FromUnixSeconds(row[0].as<int64_t>());
      data.hourly.emplace_back(hour, row[1].as<int64_t>());
      if (const int64_t bots = row[2].as<int64_t>(); bots > 0) {
        data.hourly_bots.emplace_back(hour, bots);
      }
    }
    for (const auto& row : tx.exec_params(TopQuery("referrer", "click_referrers_hourly"), q.code,
                                          start, end, q.limit)) {
      data.referrers.emplace_back(row[0].as<std::string>(), row[1].as<int64_t>());
    }
    for (const auto& row :
         tx.exec_params(TopQuery("agent", "click_agents_hourly"), q.code, start, end, q.limit)) {
      data.agents.emplace_back(row[0].as<std::string>(), row[1].as<int64_t>());
    }
    // Unknown ('') is ranked as the "ZZ" it is shown as.
    for (const auto& row : tx.exec_params(
             TopQuery("CASE country WHEN '' THEN 'ZZ' ELSE country END", "click_countries_hourly"),
             q.code, start, end, q.limit)) {
      data.countries.emplace_back(row[0].as<std::string>(), row[1].as<int64_t>());
    }
    tx.commit();
  };
  absl::Status s =
      pool ? pool->Run([&](pqxx::connection& c) { read(c, *pool); }) : cluster_->RunRead(read);
  if (!s.ok()) {
    return s;
  }
  return data;
}

absl::StatusOr<StatsData> PgStatsStore::Read(const StatsQuery& query) {
  bool owned = false;
  absl::StatusOr<StatsData> data = ReadOn(nullptr, query, &owned);
  if (data.ok() && !owned) {
    // A link created a moment ago may not have reached the replica yet: the primary decides.
    data = ReadOn(&cluster_->primary(), query, &owned);
  }
  if (!data.ok()) {
    return data.status();
  }
  if (!owned) {
    return absl::NotFoundError(absl::StrCat("no link with code '", query.code, "'"));
  }
  return data;
}

}  // namespace kurt::analytics
