#include "services/accounts/accounts_store.h"

#include "absl/strings/str_cat.h"

namespace kurt::accounts {
namespace {

constexpr const char* kKeyColumns =
    "id, account_id, prefix, secret_hash, name, "
    "(extract(epoch from create_time) * 1000000)::bigint, "
    "(extract(epoch from revoked_at) * 1000000)::bigint, coalesce(session_id, ''), "
    "(extract(epoch from expire_time) * 1000000)::bigint";

// A timestamptz from microseconds since the epoch (a bigint parameter), exactly.
std::string Micros(int param) {
  return absl::StrCat("(timestamptz 'epoch' + $", param, "::bigint * interval '1 microsecond')");
}

KeyRecord KeyFromRow(const pqxx::row& r) {
  KeyRecord k;
  k.id = r[0].as<std::string>();
  k.account_id = r[1].as<std::string>();
  k.prefix = r[2].as<std::string>();
  k.secret_hash = r[3].as<std::string>();
  k.name = r[4].as<std::string>();
  k.create_time = absl::FromUnixMicros(r[5].as<int64_t>());
  if (!r[6].is_null()) {
    k.revoke_time = absl::FromUnixMicros(r[6].as<int64_t>());
  }
  k.session_id = r[7].as<std::string>();
  if (!r[8].is_null()) {
    k.expire_time = absl::FromUnixMicros(r[8].as<int64_t>());
  }
  return k;
}

void InsertSessionToken(pqxx::work& tx, const KeyRecord& token) {
  tx.exec_params0(
      absl::StrCat("INSERT INTO api_keys (id, account_id, prefix, secret_hash, name, session_id, "
                   "expire_time) VALUES ($1, $2, $3, $4, '', $5, ",
                   Micros(6), ")"),
      token.id, token.account_id, token.prefix, token.secret_hash, token.session_id,
      absl::ToUnixMicros(*token.expire_time));
}

void InsertRefresh(pqxx::work& tx, const RefreshRecord& refresh) {
  tx.exec_params0(absl::StrCat("INSERT INTO refresh_tokens (prefix, session_id, secret_hash, "
                               "expire_time) VALUES ($1, $2, $3, ",
                               Micros(4), ")"),
                  refresh.prefix, refresh.session_id, refresh.secret_hash,
                  absl::ToUnixMicros(refresh.expire_time));
}

void InsertSession(pqxx::work& tx, const NewSession& session) {
  tx.exec_params0("INSERT INTO sessions (id, account_id, user_id) VALUES ($1, $2, $3)", session.id,
                  session.account_id, session.user_id);
  InsertSessionToken(tx, session.token);
  InsertRefresh(tx, session.refresh);
}

absl::Status KeyNotFound(const std::string& id) {
  return absl::NotFoundError(absl::StrCat("no API key with id '", id, "'"));
}

}  // namespace

absl::StatusOr<std::pair<AccountRecord, KeyRecord>> PgAccountsStore::CreateAccount(
    const AccountRecord& account, const KeyRecord& key) {
  std::pair<AccountRecord, KeyRecord> out;
  absl::Status s = cluster_->primary().Transact([&](pqxx::work& tx) {
    pqxx::row a = tx.exec_params1(
        "INSERT INTO accounts (id, name) VALUES ($1, $2) "
        "RETURNING id, name, (extract(epoch from create_time) * 1000000)::bigint",
        account.id, account.name);
    out.first.id = a[0].as<std::string>();
    out.first.name = a[1].as<std::string>();
    out.first.create_time = absl::FromUnixMicros(a[2].as<int64_t>());
    out.second = KeyFromRow(tx.exec_params1(
        absl::StrCat("INSERT INTO api_keys (id, account_id, prefix, secret_hash, name) "
                     "VALUES ($1, $2, $3, $4, $5) RETURNING ",
                     kKeyColumns),
        key.id, account.id, key.prefix, key.secret_hash, key.name));
  });
  if (!s.ok()) {
    return s;
  }
  return out;
}

absl::StatusOr<KeyRecord> PgAccountsStore::InsertKey(const KeyRecord& key) {
  std::optional<KeyRecord> out;
  absl::Status s = cluster_->primary().Transact([&](pqxx::work& tx) {
    pqxx::result r = tx.exec_params(
        absl::StrCat("INSERT INTO api_keys (id, account_id, prefix, secret_hash, name) "
                     "SELECT $1, id, $3, $4, $5 FROM accounts WHERE id = $2 RETURNING ",
                     kKeyColumns),
        key.id, key.account_id, key.prefix, key.secret_hash, key.name);
    if (!r.empty()) {
      out = KeyFromRow(r[0]);
    }
  });
  if (!s.ok()) {
    return s;
  }
  if (!out) {
    return absl::NotFoundError(absl::StrCat("no account '", key.account_id, "'"));
  }
  return *out;
}

absl::StatusOr<std::vector<KeyRecord>> PgAccountsStore::ListKeys(const std::string& account_id) {
  std::vector<KeyRecord> out;
  absl::Status s = cluster_->primary().Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    pqxx::result r =
        tx.exec_params(absl::StrCat("SELECT ", kKeyColumns,
                                    " FROM api_keys WHERE account_id = $1 AND session_id IS NULL "
                                    "ORDER BY create_time DESC, id DESC"),
                       account_id);
    for (const auto& row : r) {
      out.push_back(KeyFromRow(row));
    }
  });
  if (!s.ok()) {
    return s;
  }
  return out;
}

absl::StatusOr<KeyRecord> PgAccountsStore::RevokeKey(const std::string& account_id,
                                                     const std::string& key_id) {
  std::optional<KeyRecord> out;
  absl::Status s = cluster_->primary().Transact([&](pqxx::work& tx) {
    pqxx::result r =
        tx.exec_params(absl::StrCat("UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) "
                                    "WHERE id = $1 AND account_id = $2 AND session_id IS NULL "
                                    "RETURNING ",
                                    kKeyColumns),
                       key_id, account_id);
    if (!r.empty()) {
      out = KeyFromRow(r[0]);
    }
  });
  if (!s.ok()) {
    return s;
  }
  if (!out) {
    return KeyNotFound(key_id);
  }
  return *out;
}

absl::StatusOr<std::optional<KeyRecord>> PgAccountsStore::FindKey(const std::string& prefix) {
  std::optional<KeyRecord> out;
  absl::Status s = cluster_->primary().Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    pqxx::result r = tx.exec_params(
        absl::StrCat("SELECT ", kKeyColumns, " FROM api_keys WHERE prefix = $1"), prefix);
    if (!r.empty()) {
      out = KeyFromRow(r[0]);
    }
  });
  if (!s.ok()) {
    return s;
  }
  return out;
}

absl::StatusOr<AccountRecord> PgAccountsStore::SignUp(const AccountRecord& account,
                                                      const UserRecord& user,
                                                      const NewSession& session) {
  AccountRecord out;
  absl::Status s = cluster_->primary().Transact([&](pqxx::work& tx) {
    pqxx::row a = tx.exec_params1(
        "INSERT INTO accounts (id, name) VALUES ($1, $2) "
        "RETURNING id, name, (extract(epoch from create_time) * 1000000)::bigint",
        account.id, account.name);
    out.id = a[0].as<std::string>();
    out.name = a[1].as<std::string>();
    out.create_time = absl::FromUnixMicros(a[2].as<int64_t>());
    tx.exec_params0(
        "INSERT INTO users (id, account_id, email, password_hash) VALUES ($1, $2, $3, $4)", user.id,
        account.id, user.email, user.password_hash);
    InsertSession(tx, session);
  });
  if (!s.ok()) {
    return s;
  }
  return out;
}

absl::StatusOr<std::optional<UserRecord>> PgAccountsStore::FindUser(const std::string& email) {
  std::optional<UserRecord> out;
  absl::Status s = cluster_->primary().Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    pqxx::result r = tx.exec_params(
        "SELECT id, account_id, email, password_hash FROM users WHERE email = $1", email);
    if (!r.empty()) {
      out = UserRecord{r[0][0].as<std::string>(), r[0][1].as<std::string>(),
                       r[0][2].as<std::string>(), r[0][3].as<std::string>()};
    }
  });
  if (!s.ok()) {
    return s;
  }
  return out;
}

absl::Status PgAccountsStore::StartSession(const NewSession& session) {
  return cluster_->primary().Transact([&](pqxx::work& tx) { InsertSession(tx, session); });
}

absl::StatusOr<std::optional<RefreshRecord>> PgAccountsStore::FindRefresh(
    const std::string& prefix) {
  std::optional<RefreshRecord> out;
  absl::Status s = cluster_->primary().Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    pqxx::result r = tx.exec_params(
        "SELECT r.prefix, r.session_id, r.secret_hash, "
        "(extract(epoch from r.expire_time) * 1000000)::bigint, "
        "(extract(epoch from r.spend_time) * 1000000)::bigint, s.account_id, u.email, "
        "s.revoke_time IS NOT NULL "
        "FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id "
        "JOIN users u ON u.id = s.user_id WHERE r.prefix = $1",
        prefix);
    if (r.empty()) {
      return;
    }
    const pqxx::row row = r[0];
    RefreshRecord t;
    t.prefix = row[0].as<std::string>();
    t.session_id = row[1].as<std::string>();
    t.secret_hash = row[2].as<std::string>();
    t.expire_time = absl::FromUnixMicros(row[3].as<int64_t>());
    if (!row[4].is_null()) {
      t.spend_time = absl::FromUnixMicros(row[4].as<int64_t>());
    }
    t.account_id = row[5].as<std::string>();
    t.email = row[6].as<std::string>();
    t.session_ended = row[7].as<bool>();
    out = std::move(t);
  });
  if (!s.ok()) {
    return s;
  }
  return out;
}

absl::Status PgAccountsStore::Rotate(const std::string& spent, absl::Time now,
                                     const KeyRecord& token, const RefreshRecord& refresh) {
  bool rotated = false;
  absl::Status s = cluster_->primary().Transact([&](pqxx::work& tx) {
    // The token is spent only if unspent and its session live: of two refreshes with one token,
    // one wins.
    pqxx::result r = tx.exec_params(
        absl::StrCat("UPDATE refresh_tokens r SET spend_time = ", Micros(2),
                     " FROM sessions s WHERE r.prefix = $1 AND r.spend_time IS NULL "
                     "AND s.id = r.session_id AND s.revoke_time IS NULL RETURNING r.prefix"),
        spent, absl::ToUnixMicros(now));
    if (r.empty()) {
      return;
    }
    InsertSessionToken(tx, token);
    InsertRefresh(tx, refresh);
    rotated = true;
  });
  if (!s.ok()) {
    return s;
  }
  if (!rotated) {
    return absl::FailedPreconditionError("refresh token already spent, or its session ended");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> PgAccountsStore::EndSession(const std::string& session_id,
                                                                     absl::Time now) {
  std::vector<std::string> prefixes;
  absl::Status s = cluster_->primary().Transact([&](pqxx::work& tx) {
    prefixes.clear();
    const int64_t micros = absl::ToUnixMicros(now);
    tx.exec_params0(absl::StrCat("UPDATE sessions SET revoke_time = coalesce(revoke_time, ",
                                 Micros(2), ") WHERE id = $1"),
                    session_id, micros);
    tx.exec_params0(absl::StrCat("UPDATE refresh_tokens SET spend_time = ", Micros(2),
                                 " WHERE session_id = $1 AND spend_time IS NULL"),
                    session_id, micros);
    pqxx::result r =
        tx.exec_params(absl::StrCat("UPDATE api_keys SET revoked_at = coalesce(revoked_at, ",
                                    Micros(2), ") WHERE session_id = $1 RETURNING prefix"),
                       session_id, micros);
    for (const auto& row : r) {
      prefixes.push_back(row[0].as<std::string>());
    }
  });
  if (!s.ok()) {
    return s;
  }
  return prefixes;
}

absl::StatusOr<int64_t> PgAccountsStore::SweepExpired(absl::Time now, int limit) {
  int64_t deleted = 0;
  absl::Status s = cluster_->primary().Transact([&](pqxx::work& tx) {
    const int64_t micros = absl::ToUnixMicros(now);
    const std::string tokens = absl::StrCat(
        "DELETE FROM api_keys WHERE id IN (SELECT id FROM api_keys WHERE expire_time < ", Micros(1),
        " - interval '1 hour' LIMIT $2)");
    const std::string refresh = absl::StrCat(
        "DELETE FROM refresh_tokens WHERE prefix IN (SELECT prefix FROM refresh_tokens "
        "WHERE expire_time < ",
        Micros(1), " LIMIT $2)");
    // After the two above, in the same transaction: a session whose last tokens just went.
    const std::string sessions =
        "DELETE FROM sessions WHERE id IN (SELECT s.id FROM sessions s "
        "WHERE NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.session_id = s.id) "
        "AND NOT EXISTS (SELECT 1 FROM api_keys k WHERE k.session_id = s.id) LIMIT $1)";
    size_t rows = tx.exec_params(tokens, micros, limit).affected_rows();
    rows += tx.exec_params(refresh, micros, limit).affected_rows();
    rows += tx.exec_params(sessions, limit).affected_rows();
    deleted = static_cast<int64_t>(rows);
  });
  if (!s.ok()) {
    return s;
  }
  return deleted;
}

}  // namespace kurt::accounts
