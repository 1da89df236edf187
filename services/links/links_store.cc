#include "services/links/links_store.h"

#include "absl/strings/str_cat.h"

namespace kurt::links {
namespace {

// Timestamps cross the wire as microseconds since the epoch: exact both ways.
constexpr const char* kColumns =
    "code, account_id, target_url, "
    "(extract(epoch from create_time) * 1000000)::bigint, "
    "(extract(epoch from update_time) * 1000000)::bigint, "
    "(extract(epoch from expire_time) * 1000000)::bigint";

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
  return l;
}

absl::Status NotFound(const std::string& code) {
  return absl::NotFoundError(absl::StrCat("no link with code '", code, "'"));
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
        absl::StrCat("INSERT INTO links (code, account_id, target_url, expire_time) VALUES "
                     "($1, $2, $3, ",
                     Param(kFromMicros, 4), ") ON CONFLICT (code) DO NOTHING RETURNING ", kColumns),
        link.code, link.account_id, link.target_url, Micros(link.expire_time));
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

absl::StatusOr<std::vector<LinkRecord>> PgLinksStore::List(const std::string& account_id, int limit,
                                                           const std::optional<ListCursor>& after) {
  std::vector<LinkRecord> out;
  // Owners expect to see a link they just created: lists read the primary, through the
  // (account_id, create_time DESC, code DESC) index.
  absl::Status s = cluster_->primary().Run([&](pqxx::connection& c) {
    out.clear();
    pqxx::nontransaction tx(c);
    pqxx::result r;
    if (after) {
      r = tx.exec_params(
          absl::StrCat("SELECT ", kColumns,
                       " FROM links WHERE account_id = $1 AND deleted_at IS NULL AND "
                       "(create_time, code) < (",
                       Param(kFromMicros, 2),
                       ", $3) ORDER BY create_time DESC, code DESC "
                       "LIMIT $4"),
          account_id, absl::ToUnixMicros(after->create_time), after->code, limit);
    } else {
      r = tx.exec_params(absl::StrCat("SELECT ", kColumns,
                                      " FROM links WHERE account_id = $1 AND deleted_at IS NULL "
                                      "ORDER BY create_time DESC, code DESC LIMIT $2"),
                         account_id, limit);
    }
    for (const auto& row : r) {
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
                     " ELSE expire_time END, update_time = now() "
                     "WHERE code = $1 AND account_id = $2 AND deleted_at IS NULL RETURNING ",
                     kColumns),
        code, account_id, update.target_url, Micros(update.expire_time), update.clear_expire_time);
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
