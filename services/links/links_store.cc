#include "services/links/links_store.h"

#include <map>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/util/json_util.h"
#include "kurt/links/v1/links.pb.h"
#include "platform/core/log.h"
#include "pqxx/prepared_statement"

namespace kurt::links {
namespace {

// Timestamps cross the wire as microseconds since the epoch: exact both ways.
constexpr const char* kColumns =
    "code, account_id, target_url, "
    "(extract(epoch from create_time) * 1000000)::bigint, "
    "(extract(epoch from update_time) * 1000000)::bigint, "
    "(extract(epoch from expire_time) * 1000000)::bigint, "
    "array_to_string(tags, ','), "
    "(extract(epoch from valid_since) * 1000000)::bigint, max_clicks, clicks, fallback_url, "
    "forward_query, redirect_rules::text, password_hash IS NOT NULL";

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

// Redirect rules cross the wire as the JSON of a Link holding only them; the column keeps the
// array (readable in psql), NULL for none.
std::optional<std::string> RulesJson(const std::vector<RedirectRule>& rules) {
  if (rules.empty()) {
    return std::nullopt;
  }
  v1::Link link;
  RulesToProto(rules, link.mutable_redirect_rules());
  std::string json;
  if (auto s = google::protobuf::util::MessageToJsonString(link, &json); !s.ok()) {
    KURT_LOG(kError, "redirect rules not written as JSON", {"error", std::string(s.message())});
    std::abort();  // a message of ours always prints
  }
  return json;
}

constexpr const char* kRulesFromJson = "($%d::jsonb -> 'redirectRules')";

std::vector<RedirectRule> RulesFromColumn(const pqxx::field& f) {
  if (f.is_null()) {
    return {};
  }
  v1::Link link;
  absl::StatusOr<std::vector<RedirectRule>> rules;
  if (auto s = google::protobuf::util::JsonStringToMessage(
          absl::StrCat("{\"redirectRules\":", f.as<std::string>(), "}"), &link);
      !s.ok()) {
    rules = absl::DataLossError(std::string(s.message()));
  } else {
    rules = RulesFromProto(link.redirect_rules());
  }
  if (!rules.ok()) {
    // Only this file writes the column, with rules checked before: someone else wrote it.
    KURT_LOG(kError, "stored redirect rules unreadable; the link answers without them",
             {"error", rules.status().ToString()});
    return {};
  }
  return *std::move(rules);
}

// valid_since (as micros), max_clicks at first + 1, fallback_url at first + 3, forward_query at
// first + 4, redirect_rules at first + 5 and whether there is a password at first + 6 (first + 2
// is each query's own).
LinkLimits LimitsFromRow(const pqxx::row& r, int first) {
  LinkLimits limits;
  if (!r[first].is_null()) {
    limits.valid_since = absl::FromUnixMicros(r[first].as<int64_t>());
  }
  if (!r[first + 1].is_null()) {
    limits.max_clicks = r[first + 1].as<int64_t>();
  }
  if (!r[first + 3].is_null()) {
    limits.fallback_url = r[first + 3].as<std::string>();
  }
  limits.forward_query = r[first + 4].as<bool>();
  limits.redirect_rules = RulesFromColumn(r[first + 5]);
  limits.password_protected = r[first + 6].as<bool>();
  return limits;
}

// The database's check that valid_since precedes expire_time (migrations/0014), said as the
// request's mistake.
absl::Status WindowChecked(absl::Status s) {
  if (absl::IsFailedPrecondition(s) &&
      absl::StrContains(s.message(), "links_valid_since_before_expiry")) {
    return absl::InvalidArgumentError("valid_since: must be before the link's expire_time");
  }
  return s;
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
  l.limits = LimitsFromRow(r, 7);
  l.click_count = r[9].as<int64_t>();
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

// Tries of a batch's random codes, as CreateLink's: 62^7 codes make one collision rare.
constexpr int kBatchCodeAttempts = 5;

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
        absl::StrCat("INSERT INTO links (code, account_id, target_url, expire_time, tags, "
                     "valid_since, max_clicks, fallback_url, forward_query, redirect_rules, "
                     "password_hash) VALUES ($1, $2, $3, ",
                     Param(kFromMicros, 4), ", string_to_array($5, ','), ", Param(kFromMicros, 6),
                     ", $7, $8, $9, ", Param(kRulesFromJson, 10),
                     ", $11) ON CONFLICT (code) DO NOTHING RETURNING ", kColumns),
        link.code, link.account_id, link.target_url, Micros(link.expire_time),
        absl::StrJoin(link.tags, std::string(1, kTagSeparator)), Micros(link.limits.valid_since),
        link.limits.max_clicks, link.limits.fallback_url, link.limits.forward_query,
        RulesJson(link.limits.redirect_rules), link.password_hash);
    if (!r.empty()) {
      out = FromRow(r[0]);
    }
  });
  if (!s.ok()) {
    return WindowChecked(s);
  }
  if (!out) {
    return absl::AlreadyExistsError(absl::StrCat("code '", link.code, "' is taken"));
  }
  return *out;
}

absl::StatusOr<BatchInsertResult> PgLinksStore::InsertBatch(
    const std::string& account_id, const std::string& request_id, const std::string& request_hash,
    std::vector<BatchLink> links, const std::function<std::string()>& new_code,
    const BatchRecorder& record) {
  BatchInsertResult out;
  absl::Status s = cluster_->primary().Transact([&](pqxx::work& tx) {
    out = BatchInsertResult{};
    out.created.assign(links.size(), std::nullopt);
    if (!request_id.empty()) {
      // This account's expired records, whose ids may be given again now, and a few of any
      // account's: a record whose account never makes another batch still goes, as long as
      // batches are made at all (each removes up to kBatchSweep, more than the one it adds).
      const std::string expired =
          absl::StrCat("create_time < now() - interval '",
                       absl::ToInt64Seconds(kBatchRequestIdRetention), " seconds'");
      tx.exec_params(
          absl::StrCat("DELETE FROM link_batches WHERE (account_id = $1 AND ", expired,
                       ") OR (account_id, request_id) IN (SELECT account_id, request_id FROM "
                       "link_batches WHERE ",
                       expired, " ORDER BY create_time LIMIT ", kBatchSweep,
                       " FOR UPDATE SKIP LOCKED)"),
          account_id);
      // Claims the request id; a concurrent call with the same one waits here until this
      // transaction ends, then finds its record.
      const pqxx::binarystring hash(request_hash.data(), request_hash.size());
      pqxx::result claimed = tx.exec_params(
          "INSERT INTO link_batches (account_id, request_id, request_hash, response) "
          "VALUES ($1, $2, $3, '') ON CONFLICT (account_id, request_id) DO NOTHING RETURNING 1",
          account_id, request_id, hash);
      if (claimed.empty()) {
        pqxx::result seen = tx.exec_params(
            "SELECT response, request_hash FROM link_batches "
            "WHERE account_id = $1 AND request_id = $2",
            account_id, request_id);
        if (!seen.empty()) {
          if (pqxx::binarystring(seen[0][1]).str() != request_hash) {
            out.other_request = true;
          } else {
            out.replayed = pqxx::binarystring(seen[0][0]).str();
          }
          return;
        }
      }
    }
    // Every link still to insert, by index; all of them go in one multi-row INSERT per round.
    std::vector<size_t> pending;
    for (size_t i = 0; i < links.size(); ++i) {
      pending.push_back(i);
    }
    for (int attempt = 0; attempt < kBatchCodeAttempts && !pending.empty(); ++attempt) {
      std::string sql =
          "INSERT INTO links (code, account_id, target_url, expire_time, tags, valid_since, "
          "max_clicks, fallback_url, forward_query, redirect_rules, password_hash) VALUES ";
      constexpr int kParamsPerLink = 11;
      std::vector<std::string> params;
      params.reserve(pending.size() * kParamsPerLink);
      std::map<std::string, size_t> by_code;
      // Text parameters, NULL written as '': a microsecond count, a URL or a count is never empty.
      auto micros = [](const std::optional<absl::Time>& t) {
        const std::optional<int64_t> m = Micros(t);
        return m ? absl::StrCat(*m) : std::string();
      };
      for (size_t i : pending) {
        const LinkRecord& l = links[i].link;
        const int n = static_cast<int>(params.size());
        auto p = [n](int k) { return absl::StrCat("$", n + k); };
        auto time = [&](int k) {
          return absl::StrCat("timestamptz 'epoch' + NULLIF(", p(k),
                              ", '')::bigint * interval '1 microsecond'");
        };
        absl::StrAppend(&sql, params.empty() ? "" : ", ", "(", p(1), ", ", p(2), ", ", p(3), ", ",
                        time(4), ", string_to_array(", p(5), ", ','), ", time(6), ", NULLIF(", p(7),
                        ", '')::bigint, NULLIF(", p(8), ", ''), ", p(9), "::boolean, (NULLIF(",
                        p(10), ", '')::jsonb -> 'redirectRules'), NULLIF(", p(11), ", ''))");
        params.push_back(l.code);
        params.push_back(account_id);
        params.push_back(l.target_url);
        params.push_back(micros(l.expire_time));
        params.push_back(absl::StrJoin(l.tags, std::string(1, kTagSeparator)));
        params.push_back(micros(l.limits.valid_since));
        params.push_back(l.limits.max_clicks ? absl::StrCat(*l.limits.max_clicks) : std::string());
        params.push_back(l.limits.fallback_url.value_or(""));
        params.push_back(l.limits.forward_query ? "true" : "false");
        params.push_back(RulesJson(l.limits.redirect_rules).value_or(""));
        params.push_back(l.password_hash.value_or(""));
        by_code.emplace(l.code, i);
      }
      absl::StrAppend(&sql, " ON CONFLICT (code) DO NOTHING RETURNING ", kColumns);
      for (const pqxx::row& row :
           tx.exec_params(sql, pqxx::prepare::make_dynamic_params(params.begin(), params.end()))) {
        LinkRecord created = FromRow(row);
        out.created[by_code.at(created.code)] = std::move(created);
      }
      std::vector<size_t> again;
      for (size_t i : pending) {
        if (!out.created[i] && !links[i].alias) {
          links[i].link.code = new_code();
          again.push_back(i);
        }
      }
      pending = std::move(again);
    }
    if (!pending.empty()) {
      throw std::runtime_error("no free random code after several tries");
    }
    if (!request_id.empty()) {
      const std::string response = record(out.created);
      tx.exec_params(
          "UPDATE link_batches SET response = $3 WHERE account_id = $1 AND request_id = $2",
          account_id, request_id, pqxx::binarystring(response.data(), response.size()));
    }
  });
  if (!s.ok()) {
    return WindowChecked(s);
  }
  return out;
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
  // Unfiltered, through the (account_id, create_time DESC, code DESC) index; a tag through
  // link_tags' primary key (account, tag, create time, code), whose order is the list's, so a page
  // reads only its own rows; a query through the per-account trigram indexes on code and
  // target_url (both in migrations/0017). Every filter keeps the same keyset order, so pages are
  // exact whichever index serves them.
  SqlQuery q;
  // link_tags' create time is the link's; ordering by it lets its index give the order.
  const char* time = filter.tag ? "link_time" : "create_time";
  q.sql = absl::StrCat("SELECT ", kColumns, " FROM links",
                       filter.tag ? " JOIN link_tags USING (code)" : "",
                       " WHERE account_id = $1 AND deleted_at IS NULL");
  q.params.push_back(account_id);
  int n = 1;
  if (filter.tag) {
    absl::StrAppend(&q.sql, " AND tag_account = $1 AND tag = $", ++n);
    q.params.push_back(*filter.tag);
  }
  if (after) {
    absl::StrAppend(&q.sql, " AND (", time, ", code) < (", Param(kFromMicros, n + 1), ", $", n + 2,
                    ")");
    q.params.push_back(absl::StrCat(absl::ToUnixMicros(after->create_time)));
    q.params.push_back(after->code);
    n += 2;
  }
  if (filter.query) {
    ++n;
    absl::StrAppend(&q.sql, " AND (code ILIKE $", n, " OR target_url ILIKE $", n, ")");
    q.params.push_back(ContainsPattern(*filter.query));
  }
  absl::StrAppend(&q.sql, " ORDER BY ", time, " DESC, code DESC LIMIT $", ++n);
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
                     "tags = COALESCE(string_to_array($6, ','), tags), "
                     "valid_since = CASE WHEN $8 THEN NULL WHEN $7::bigint IS NOT NULL THEN ",
                     Param(kFromMicros, 7),
                     " ELSE valid_since END, "
                     "max_clicks = CASE WHEN $10 THEN NULL ELSE COALESCE($9::bigint, max_clicks) "
                     "END, clicks = CASE WHEN $10 THEN 0 ELSE clicks END, "
                     "fallback_url = CASE WHEN $12 THEN NULL ELSE COALESCE($11, fallback_url) END, "
                     "forward_query = COALESCE($13::boolean, forward_query), "
                     "redirect_rules = CASE WHEN $15 THEN NULL WHEN $14::jsonb IS NOT NULL THEN ",
                     Param(kRulesFromJson, 14),
                     " ELSE redirect_rules END, "
                     "password_hash = CASE WHEN $17 THEN NULL ELSE COALESCE($16, password_hash) "
                     "END, update_time = now() "
                     "WHERE code = $1 AND account_id = $2 AND deleted_at IS NULL RETURNING ",
                     kColumns),
        code, account_id, update.target_url, Micros(update.expire_time), update.clear_expire_time,
        update.tags
            ? std::optional<std::string>(absl::StrJoin(*update.tags, std::string(1, kTagSeparator)))
            : std::nullopt,
        Micros(update.valid_since), update.clear_valid_since, update.max_clicks,
        update.clear_max_clicks, update.fallback_url, update.clear_fallback_url,
        update.forward_query,
        update.redirect_rules ? RulesJson(*update.redirect_rules) : std::nullopt,
        update.redirect_rules && update.redirect_rules->empty(), update.password_hash,
        update.clear_password);
    if (!r.empty()) {
      out = FromRow(r[0]);
    }
  });
  if (!s.ok()) {
    return WindowChecked(s);
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
        "SELECT target_url, (extract(epoch from expire_time) * 1000000)::bigint, "
        "(extract(epoch from valid_since) * 1000000)::bigint, max_clicks, NULL, fallback_url, "
        "forward_query, redirect_rules::text, password_hash IS NOT NULL FROM links WHERE code = $1 "
        "AND deleted_at IS NULL",
        code);
    if (r.empty()) {
      return;
    }
    out = ResolveRecord{r[0][0].as<std::string>(), std::nullopt, LimitsFromRow(r[0], 2)};
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

absl::StatusOr<bool> PgLinksStore::CountClick(const std::string& code) {
  // One statement, on the primary, outside a transaction: PostgreSQL takes the row's lock for the
  // UPDATE and re-checks `clicks < max_clicks` on the row as the previous holder left it, so
  // concurrent counts (from any number of replicas) serialize on the row and exactly max_clicks
  // of them succeed. A link whose max_clicks was removed a moment ago counts too (its count
  // starts again from 0 once the removal is in: the UPDATE that removed it set it to 0).
  bool counted = false;
  absl::Status s = cluster_->primary().Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    counted = tx.exec_params(
                    "UPDATE links SET clicks = clicks + 1 WHERE code = $1 AND "
                    "deleted_at IS NULL AND (max_clicks IS NULL OR clicks < max_clicks)",
                    code)
                  .affected_rows() > 0;
  });
  if (!s.ok()) {
    return s;
  }
  return counted;
}

absl::Status PgLinksStore::UncountClick(const std::string& code) {
  return cluster_->primary().Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    tx.exec_params("UPDATE links SET clicks = clicks - 1 WHERE code = $1 AND clicks > 0", code);
  });
}

absl::StatusOr<std::optional<std::string>> PgLinksStore::PasswordHash(const std::string& code) {
  bool found = false;
  std::optional<std::string> hash;
  absl::Status s = cluster_->primary().Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    pqxx::result r = tx.exec_params(
        "SELECT password_hash FROM links WHERE code = $1 AND deleted_at IS NULL", code);
    found = !r.empty();
    hash.reset();
    if (found && !r[0][0].is_null()) {
      hash = r[0][0].as<std::string>();
    }
  });
  if (!s.ok()) {
    return s;
  }
  if (!found) {
    return NotFound(code);
  }
  return hash;
}

}  // namespace kurt::links
