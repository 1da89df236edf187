#include "services/accounts/accounts_store.h"

#include "absl/strings/str_cat.h"

namespace kurt::accounts {
namespace {

constexpr const char* kKeyColumns =
    "id, account_id, prefix, secret_hash, name, "
    "(extract(epoch from create_time) * 1000000)::bigint, "
    "(extract(epoch from revoked_at) * 1000000)::bigint";

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
  return k;
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
    pqxx::result r = tx.exec_params(
        absl::StrCat("SELECT ", kKeyColumns,
                     " FROM api_keys WHERE account_id = $1 ORDER BY create_time DESC, id DESC"),
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
                                    "WHERE id = $1 AND account_id = $2 RETURNING ",
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

}  // namespace kurt::accounts
