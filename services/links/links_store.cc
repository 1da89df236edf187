#include "services/links/links_store.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "pqxx/prepared_statement"

namespace kurt::links {
namespace {

// Timestamps cross the wire as microseconds since the epoch: exact both ways.
constexpr const char* kColumns =
    "code, account_id, target_url, "
    "(extract(epoch from create_time) * 1000000)::bigint, "
    "(extract(epoch from update_time) * 1000000)::bigint, "
    "(extract(epoch from expire_time) * 1000000)::bigint, "
    "array_to_string(tags, ',')";

// Tags cross the wire joined by commas, which their charset (links_rpcs.cc) leaves out.
constexpr char kTagSeparator = ',';

constexpr const char* kFromMicros =
    "(timestamptz 'epoch' + ($%d::bigint) * interval '1 microsecond')";

std::optional<int64_t> Micros(const std::optional<absl::Time>& t) {
  if (!t) {
    return std::nullopt;
  }
  return absl::ToUnixMicros(*t);
}

LinkRecord FromRow(const pqxx::row& r) {
  LinkRecord l;
  l.code = r[0].as<std::string>();
  l.account_id = r[1].as<std::string>();
  l.target_url = r[2].as<std::string>();
  l.create_time = absl::FromUnixMicros(r[3].as<int64_t>());
  l.update_time = absl::FromUnixMicros(r[4].as<int64_t>());
  if (!r[5].is_null()) {
    l.expire_time = absl::FromUnixMicros(r[5].as<int64_t>());
  }
  if (std::string tags = r[6].as<std::string>(); !tags.empty()) {
    l.tags = absl::StrSplit(tags, kTagSeparator);
  }
  return l;
}

absl::Status NotFound(const std::string& code) {
  return absl::NotFoundError(absl::StrCat("no link with code '", code, "'"));
}

// A LIKE pattern matching `text` anywhere: its own %, _ and \ taken literally.
std::string ContainsPattern(const std::string& text) {
  std::string out = "%";
  for (char c : text) {
    if (c == '%' || c == '_' || c == '\\') {
      out += '\\';
    }
    out += c;
  }
  out += '%';
  return out;
}

std::string Param(const char* fmt, int n) {
  char buf[96];
  std::snprintf(buf, sizeof(buf), fmt, n);
  return buf;
}

}  // namespace

PgLinksStore::PgLinksStore(pg::PgCluster* cluster, metrics::Registry* registry)
    : cluster_(cluster) {
  auto& reads =
      registry->AddCounter("kurt_links_db_reads_total",
                           "Database lookups made by Resolve, by where they went", {"source"});
  replica_reads_ = &reads.WithLabels({"replica"});
  primary_reads_ = &reads.WithLabels({"primary"});
}

absl::StatusOr<LinkRecord> PgLinksStore::Insert(const LinkRecord& link) {
  std::optional<LinkRecord> out;
  absl::Status s = cluster_->primary().Transact([&](pqxx::work& tx) {
    pqxx::result r = tx.exec_params(
        absl::StrCat("INSERT INTO links (code, account_id, target_url, expire_time, tags) VALUES "
                     "($1, $2, $3, ",
                     Param(kFromMicros, 4),
                     ", string_to_array($5, ',')) ON CONFLICT (code) DO NOTHING RETURNING ",
                     kColumns),
        link.code, link.account_id, link.target_url, Micros(link.expire_time),
        absl::StrJoin(link.tags, std::string(1, kTagSeparator)));
    if (!r.empty()) {
      out = FromRow(r[0]);
    }
  });
  if (!s.ok()) {
    return s;
  }
  if (!out) {
    return absl::AlreadyExistsError(absl::StrCat("code '", link.code, "' is taken"));
  }
  return *out;
}

absl::StatusOr<LinkRecord> PgLinksStore::Get(const std::string& account_id,
                                             const std::string& code) {
  std::optional<LinkRecord> out;
  absl::Status s = cluster_->primary().Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    pqxx::result r = tx.exec_params(
        absl::StrCat("SELECT ", kColumns,
                     " FROM links WHERE code = $1 AND account_id = $2 AND deleted_at IS NULL"),
        code, account_id);
    if (!r.empty()) {
      out = FromRow(r[0]);
    }
  });
  if (!s.ok()) {
    return s;
  }
  if (!out) {
    return NotFound(code);
  }
  return *out;
}

SqlQuery ListQuery(const std::string& account_id, int limit, const std::optional<ListCursor>& after,
                   const ListFilter& filter) {
  // Unfiltered, through the (account_id, create_time DESC, code DESC) index; a tag through the
  // GIN index on tags, a query through the trigram indexes on code and target_url
  // (migrations/0012), each as the planner finds cheaper. Every filter is a condition on the same
  // keyset order, so pages stay exact whichever index serves them.
  SqlQuery q;
  q.sql =
      absl::StrCat("SELECT ", kColumns, " FROM links WHERE account_id = $1 AND deleted_at IS NULL");
  q.params.push_back(account_id);
  int n = 1;
  if (after) {
    absl::StrAppend(&q.sql, " AND (create_time, code) < (", Param(kFromMicros, n + 1), ", $", n + 2,
                    ")");
    q.params.push_back(absl::StrCat(absl::ToUnixMicros(after->create_time)));
    q.params.push_back(after->code);
    n += 2;
  }
  if (filter.tag) {
    absl::StrAppend(&q.sql, " AND tags @> ARRAY[$", ++n, "::text]");
    q.params.push_back(*filter.tag);
  }
  if (filter.query) {
    ++n;
    absl::StrAppend(&q.sql, " AND (code ILIKE $", n, " OR target_url ILIKE $", n, ")");
    q.params.push_back(ContainsPattern(*filter.query));
  }
  absl::StrAppend(&q.sql, " ORDER BY create_time DESC, code DESC LIMIT $", ++n);
  q.params.push_back(absl::StrCat(limit));
  return q;
}

absl::StatusOr<std::vector<LinkRecord>> PgLinksStore::List(const std::string& account_id, int limit,
                                                           const std::optional<ListCursor>& after,
                                                           const ListFilter& filter) {
  // Owners expect to see a link they just created: lists read the primary.
  const SqlQuery q = ListQuery(account_id, limit, after, filter);
  std::vector<LinkRecord> out;
  absl::Status s = cluster_->primary().Run([&](pqxx::connection& c) {
    out.clear();
    pqxx::nontransaction tx(c);
    for (const auto& row : tx.exec_params(
             q.sql, pqxx::prepare::make_dynamic_params(q.params.begin(), q.params.end()))) {
      out.push_back(FromRow(row));
    }
  });
  if (!s.ok()) {
    return s;
  }
  return out;
}

absl::StatusOr<LinkRecord> PgLinksStore::Update(const std::string& account_id,
                                                const std::string& code, const LinkUpdate& update) {
  std::optional<LinkRecord> out;
  absl::Status s = cluster_->primary().Transact([&](pqxx::work& tx) {
    pqxx::result r = tx.exec_params(
        absl::StrCat("UPDATE links SET target_url = COALESCE($3, target_url), "
                     "expire_time = CASE WHEN $5 THEN NULL WHEN $4::bigint IS NOT NULL THEN ",
                     Param(kFromMicros, 4),
                     " ELSE expire_time END, "
                     "tags = COALESCE(string_to_array($6, ','), tags), update_time = now() "
                     "WHERE code = $1 AND account_id = $2 AND deleted_at IS NULL RETURNING ",
                     kColumns),
        code, account_id, update.target_url, Micros(update.expire_time), update.clear_expire_time,
        update.tags
            ? std::optional<std::string>(absl::StrJoin(*update.tags, std::string(1, kTagSeparator)))
            : std::nullopt);
    if (!r.empty()) {
      out = FromRow(r[0]);
    }
  });
  if (!s.ok()) {
    return s;
  }
  if (!out) {
    return NotFound(code);
  }
  return *out;
}

absl::Status PgLinksStore::Delete(const std::string& account_id, const std::string& code) {
  int affected = 0;
  absl::Status s = cluster_->primary().Transact([&](pqxx::work& tx) {
    affected = static_cast<int>(
        tx.exec_params("UPDATE links SET deleted_at = now(), update_time = now() "
                       "WHERE code = $1 AND account_id = $2 AND deleted_at IS NULL",
                       code, account_id)
            .affected_rows());
  });
  if (!s.ok()) {
    return s;
  }
  if (affected == 0) {
    return NotFound(code);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<ResolveRecord>> PgLinksStore::LookUp(const std::string& code,
                                                                  ReadFrom from) {
  std::optional<ResolveRecord> out;
  auto query = [&](pqxx::connection& c) {
    out.reset();
    pqxx::nontransaction tx(c);
    pqxx::result r = tx.exec_params(
        "SELECT target_url, (extract(epoch from expire_time) * 1000000)::bigint "
        "FROM links WHERE code = $1 AND deleted_at IS NULL",
        code);
    if (r.empty()) {
      return;
    }
    out = ResolveRecord{r[0][0].as<std::string>(), std::nullopt};
    if (!r[0][1].is_null()) {
      out->expire_time = absl::FromUnixMicros(r[0][1].as<int64_t>());
    }
  };
  absl::Status s;
  if (from == ReadFrom::kPrimary) {
    primary_reads_->Increment();
    s = cluster_->primary().Run(query);
  } else {
    replica_reads_->Increment();
    s = cluster_->RunRead(query);
  }
  if (!s.ok()) {
    return s;
  }
  return out;
}

}  // namespace kurt::links
