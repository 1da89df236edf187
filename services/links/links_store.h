// Where links live: the interface the service uses, and its PostgreSQL implementation (all of the
// links SQL is in links_store.cc). Writes and owner reads go to the primary; lookups for the
// redirect name the database they read from, so the resolver can confirm a replica's miss on the
// primary.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "platform/core/metrics.h"
#include "platform/pg/pg.h"
#include "services/links/link_limits.h"

namespace kurt::links {

struct LinkRecord {
  std::string code;
  std::string account_id;
  std::string target_url;
  absl::Time create_time;
  absl::Time update_time;
  std::optional<absl::Time> expire_time;
  // Lower case, distinct, at most kMaxTags (links_rpcs.h checks them before they get here).
  std::vector<std::string> tags;
  LinkLimits limits;
  // Redirects counted against limits.max_clicks.
  int64_t click_count = 0;
  // For Insert and InsertBatch: the argon2id hash of the link's password (then
  // limits.password_protected). Reads leave it empty: the hash is read by PasswordHash alone.
  std::optional<std::string> password_hash;
};

// What the redirect needs of a live (not deleted) link.
struct ResolveRecord {
  std::string target_url;
  std::optional<absl::Time> expire_time;
  LinkLimits limits;
};

struct LinkUpdate {
  std::optional<std::string> target_url;
  std::optional<absl::Time> expire_time;
  bool clear_expire_time = false;
  // Replaces the tags when set (empty: removes them all).
  std::optional<std::vector<std::string>> tags;
  std::optional<absl::Time> valid_since;
  bool clear_valid_since = false;
  std::optional<int64_t> max_clicks;
  bool clear_max_clicks = false;  // also sets the count back to 0
  std::optional<std::string> fallback_url;
  bool clear_fallback_url = false;
  std::optional<bool> forward_query;
  // Replaces the redirect rules when set (empty: removes them all).
  std::optional<std::vector<RedirectRule>> redirect_rules;
  // A new password's argon2id hash, or clear_password to remove it.
  std::optional<std::string> password_hash;
  bool clear_password = false;
};

// ListLinks' filters; unset: no filter.
struct ListFilter {
  // Links carrying this tag (lower case).
  std::optional<std::string> tag;
  // Links whose code or target URL holds this text, compared case-insensitively.
  std::optional<std::string> query;
};

// Keyset position for ListLinks: the last link of the previous page.
struct ListCursor {
  absl::Time create_time;
  std::string code;
};

// One link of a batch to create: under its alias, or under a random code the store may change
// when it is taken.
struct BatchLink {
  LinkRecord link;
  bool alias = false;
};

// What InsertBatch did: either the batch's request id had been seen (`replayed` holds what was
// recorded then, or `other_request` says it came with other links and nothing was done), or the
// links were inserted: per BatchLink, the link, or nullopt when its alias was taken.
struct BatchInsertResult {
  std::optional<std::string> replayed;
  bool other_request = false;
  std::vector<std::optional<LinkRecord>> created;
};

// Makes the record of a batch (the response the caller gets) from what was inserted.
using BatchRecorder = std::function<std::string(const std::vector<std::optional<LinkRecord>>&)>;

// How long a batch's request id is remembered.
inline constexpr absl::Duration kBatchRequestIdRetention = absl::Hours(24);
// How many expired records of other accounts each batch with a request id removes (the index
// link_batches_create_time finds the oldest).
inline constexpr int kBatchSweep = 16;

enum class ReadFrom { kReplica, kPrimary };

// A query and its parameters, as text (PostgreSQL types each by its place in the query).
struct SqlQuery {
  std::string sql;
  std::vector<std::string> params;
};

// The query PgLinksStore::List runs: here so that a test can EXPLAIN exactly that.
SqlQuery ListQuery(const std::string& account_id, int limit, const std::optional<ListCursor>& after,
                   const ListFilter& filter);

class LinksStore {
 public:
  virtual ~LinksStore() = default;
  // ALREADY_EXISTS when the code is taken (by a live or a deleted link).
  virtual absl::StatusOr<LinkRecord> Insert(const LinkRecord& link) = 0;
  // Inserts the links of one batch for `account_id` in one transaction. A random code that is
  // taken is replaced by `new_code()` (a few times at most); a taken alias is left out. With a
  // `request_id`, `record(created)` is stored with the links, in the same transaction, and a
  // later call with the same (account_id, request_id), within kBatchRequestIdRetention, inserts
  // nothing and returns it as `replayed` (or `other_request` when its `request_hash`, a digest
  // of the links asked for, differs).
  virtual absl::StatusOr<BatchInsertResult> InsertBatch(
      const std::string& account_id, const std::string& request_id, const std::string& request_hash,
      std::vector<BatchLink> links, const std::function<std::string()>& new_code,
      const BatchRecorder& record) = 0;
  // NOT_FOUND unless the account owns a live link with this code.
  virtual absl::StatusOr<LinkRecord> Get(const std::string& account_id,
                                         const std::string& code) = 0;
  // Up to `limit` live links of the account that pass `filter`, newest first, after `after`.
  virtual absl::StatusOr<std::vector<LinkRecord>> List(const std::string& account_id, int limit,
                                                       const std::optional<ListCursor>& after,
                                                       const ListFilter& filter) = 0;
  virtual absl::StatusOr<LinkRecord> Update(const std::string& account_id, const std::string& code,
                                            const LinkUpdate& update) = 0;
  virtual absl::Status Delete(const std::string& account_id, const std::string& code) = 0;
  // The live link with this code, or nullopt (unknown or deleted). Expiry is the caller's to
  // check. kReplica falls back to the primary when no replica is usable.
  virtual absl::StatusOr<std::optional<ResolveRecord>> LookUp(const std::string& code,
                                                              ReadFrom from) = 0;
  // Counts one redirect of a link with a max_clicks, on the primary, atomically: false (and
  // nothing counted) when the count has reached max_clicks or the link is gone. Exact however
  // many replicas count at once.
  virtual absl::StatusOr<bool> CountClick(const std::string& code) = 0;
  // Gives back a CountClick whose redirect did not go out.
  virtual absl::Status UncountClick(const std::string& code) = 0;
  // The password hash of the live link with this code, from the primary (a password set a
  // moment ago holds at once); nullopt when the link has none, NOT_FOUND when there is no link.
  virtual absl::StatusOr<std::optional<std::string>> PasswordHash(const std::string& code) = 0;
};

class PgLinksStore : public LinksStore {
 public:
  // `cluster` outlives the store. Lookups are counted in kurt_links_db_reads_total{source}.
  PgLinksStore(pg::PgCluster* cluster, metrics::Registry* registry);

  absl::StatusOr<LinkRecord> Insert(const LinkRecord& link) override;
  absl::StatusOr<BatchInsertResult> InsertBatch(const std::string& account_id,
                                                const std::string& request_id,
                                                const std::string& request_hash,
                                                std::vector<BatchLink> links,
                                                const std::function<std::string()>& new_code,
                                                const BatchRecorder& record) override;
  absl::StatusOr<LinkRecord> Get(const std::string& account_id, const std::string& code) override;
  absl::StatusOr<std::vector<LinkRecord>> List(const std::string& account_id, int limit,
                                               const std::optional<ListCursor>& after,
                                               const ListFilter& filter) override;
  absl::StatusOr<LinkRecord> Update(const std::string& account_id, const std::string& code,
                                    const LinkUpdate& update) override;
  absl::Status Delete(const std::string& account_id, const std::string& code) override;
  absl::StatusOr<std::optional<ResolveRecord>> LookUp(const std::string& code,
                                                      ReadFrom from) override;
  absl::StatusOr<bool> CountClick(const std::string& code) override;
  absl::Status UncountClick(const std::string& code) override;
  absl::StatusOr<std::optional<std::string>> PasswordHash(const std::string& code) override;

 private:
  pg::PgCluster* cluster_;
  metrics::Counter* replica_reads_;
  metrics::Counter* primary_reads_;
};

}  // namespace kurt::links
