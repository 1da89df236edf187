// Where accounts, the people who sign in to them, their sessions and API keys live: the interface
// the service uses and its PostgreSQL implementation (all of the accounts SQL is in
// accounts_store.cc). Everything reads and writes the primary: a key created or revoked, or a
// session signed out, a moment ago must be seen at once.
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

// An API key, or a session token: a key that names its session and expires.
struct KeyRecord {
  std::string id;
  std::string account_id;
  std::string prefix;
  std::string secret_hash;
  std::string name;
  absl::Time create_time;
  std::optional<absl::Time> revoke_time;
  std::string session_id;                 // empty for an API key
  std::optional<absl::Time> expire_time;  // set exactly for session tokens
};

struct UserRecord {
  std::string id;
  std::string account_id;
  std::string email;          // lower-cased
  std::string password_hash;  // argon2id string
};

struct RefreshRecord {
  std::string prefix;
  std::string session_id;
  std::string secret_hash;
  absl::Time expire_time;
  std::optional<absl::Time> spend_time;
  // Of its session (read with the token; not written by StartSession or Rotate).
  std::string account_id;
  std::string email;
  bool session_ended = false;
};

// What a sign-in writes: the session, its first session token and refresh token.
struct NewSession {
  std::string id;
  std::string account_id;
  std::string user_id;
  KeyRecord token;  // session_id and expire_time set
  RefreshRecord refresh;
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
  // The key or session token with this prefix (revoked or not), or nullopt.
  virtual absl::StatusOr<std::optional<KeyRecord>> FindKey(const std::string& prefix) = 0;

  // The account, its person and their first session, in one transaction; ALREADY_EXISTS when
  // the email is taken.
  virtual absl::StatusOr<AccountRecord> SignUp(const AccountRecord& account, const UserRecord& user,
                                               const NewSession& session) = 0;
  virtual absl::StatusOr<std::optional<UserRecord>> FindUser(const std::string& email) = 0;
  virtual absl::Status StartSession(const NewSession& session) = 0;
  // The refresh token with this prefix (spent or not) and its session, or nullopt.
  virtual absl::StatusOr<std::optional<RefreshRecord>> FindRefresh(const std::string& prefix) = 0;
  // Spends the refresh token `spent` at `now` and writes its session's next session token and
  // refresh token, in one transaction. FAILED_PRECONDITION when it was spent already (another
  // refresh won) or its session ended.
  virtual absl::Status Rotate(const std::string& spent, absl::Time now, const KeyRecord& token,
                              const RefreshRecord& refresh) = 0;
  // Ends the session at `now`: revokes its session tokens and spends its refresh tokens. Returns
  // the prefixes of the session tokens it revoked (for the cache).
  virtual absl::StatusOr<std::vector<std::string>> EndSession(const std::string& session_id,
                                                              absl::Time now) = 0;
  // Deletes up to `limit` of each: session tokens expired for an hour, refresh tokens past their
  // expiry, and sessions with neither left. Returns how many rows went.
  virtual absl::StatusOr<int64_t> SweepExpired(absl::Time now, int limit) = 0;
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
  absl::StatusOr<AccountRecord> SignUp(const AccountRecord& account, const UserRecord& user,
                                       const NewSession& session) override;
  absl::StatusOr<std::optional<UserRecord>> FindUser(const std::string& email) override;
  absl::Status StartSession(const NewSession& session) override;
  absl::StatusOr<std::optional<RefreshRecord>> FindRefresh(const std::string& prefix) override;
  absl::Status Rotate(const std::string& spent, absl::Time now, const KeyRecord& token,
                      const RefreshRecord& refresh) override;
  absl::StatusOr<std::vector<std::string>> EndSession(const std::string& session_id,
                                                      absl::Time now) override;
  absl::StatusOr<int64_t> SweepExpired(absl::Time now, int limit) override;

 private:
  pg::PgCluster* cluster_;
};

}  // namespace kurt::accounts
