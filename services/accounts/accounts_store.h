// Where accounts and API keys live: the interface the service uses and its PostgreSQL
// implementation (all of the accounts SQL is in accounts_store.cc). Everything reads and writes
// the primary: a key created or revoked a moment ago must be seen at once.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "platform/pg/pg.h"

namespace kurt::accounts {

struct AccountRecord {
  std::string id;
  std::string name;
  absl::Time create_time;
};

struct KeyRecord {
  std::string id;
  std::string account_id;
  std::string prefix;
  std::string secret_hash;
  std::string name;
  absl::Time create_time;
  std::optional<absl::Time> revoke_time;
};

class AccountsStore {
 public:
  virtual ~AccountsStore() = default;
  // The account and its first key, in one transaction.
  virtual absl::StatusOr<std::pair<AccountRecord, KeyRecord>> CreateAccount(
      const AccountRecord& account, const KeyRecord& key) = 0;
  // NOT_FOUND when the account does not exist.
  virtual absl::StatusOr<KeyRecord> InsertKey(const KeyRecord& key) = 0;
  // The account's keys, newest first.
  virtual absl::StatusOr<std::vector<KeyRecord>> ListKeys(const std::string& account_id) = 0;
  // Sets revoke_time (once); NOT_FOUND unless the account owns the key.
  virtual absl::StatusOr<KeyRecord> RevokeKey(const std::string& account_id,
                                              const std::string& key_id) = 0;
  // The key with this prefix (revoked or not), or nullopt.
  virtual absl::StatusOr<std::optional<KeyRecord>> FindKey(const std::string& prefix) = 0;
};

class PgAccountsStore : public AccountsStore {
 public:
  // `cluster` outlives the store.
  explicit PgAccountsStore(pg::PgCluster* cluster) : cluster_(cluster) {}

  absl::StatusOr<std::pair<AccountRecord, KeyRecord>> CreateAccount(const AccountRecord& account,
                                                                    const KeyRecord& key) override;
  absl::StatusOr<KeyRecord> InsertKey(const KeyRecord& key) override;
  absl::StatusOr<std::vector<KeyRecord>> ListKeys(const std::string& account_id) override;
  absl::StatusOr<KeyRecord> RevokeKey(const std::string& account_id,
                                      const std::string& key_id) override;
  absl::StatusOr<std::optional<KeyRecord>> FindKey(const std::string& prefix) override;

 private:
  pg::PgCluster* cluster_;
};

}  // namespace kurt::accounts
