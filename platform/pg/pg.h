// PostgreSQL connection pools (libpqxx) with primary and replica roles. libpqxx throws; nothing
// above this header sees an exception: every call returns a Status whose code says what a caller
// can do (UNAVAILABLE: retry or fall back; ALREADY_EXISTS: a unique key was taken; ...).
//
// A PgPool lives as long as the services that use it; every method is thread-safe. A connection
// is used by one thread at a time, between Acquire and its return to the pool.
//
// The URL may name PgBouncer in transaction pooling (as deployed): then each transaction, and each
// statement outside one, may run on a different server session, so nothing here keeps state in a
// session. A pool's statement timeout is set with SET LOCAL inside each transaction, where it ends
// with the transaction; no named prepared statements, session advisory locks or LISTEN (see
// platform/pg/listener.h for LISTEN, which takes a direct connection).
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "pqxx/pqxx"

ABSL_DECLARE_FLAG(std::string, pg_primary_url);
ABSL_DECLARE_FLAG(std::string, pg_replica_url);

namespace kurt::pg {

// Maps the exception being handled (call inside a catch block) to a Status.
absl::Status StatusFromCurrentException(absl::string_view what);

// A PostgreSQL text[] literal ({"a","b"}) of text_of(item) for each item: every element
// double-quoted, '"' and '\' escaped; for array parameters ($1::text[]), one parameter for many
// values.
template <typename T, typename F>
std::string TextArrayLiteral(const std::vector<T>& items, F text_of) {
  std::string out = "{";
  bool first = true;
  for (const T& item : items) {
    if (!first) {
      out.push_back(',');
    }
    first = false;
    out.push_back('"');
    for (char c : text_of(item)) {
      if (c == '"' || c == '\\') {
        out.push_back('\\');
      }
      out.push_back(c);
    }
    out.push_back('"');
  }
  out.push_back('}');
  return out;
}

inline std::string TextArrayLiteral(const std::vector<std::string>& values) {
  return TextArrayLiteral(values, [](const std::string& s) -> const std::string& { return s; });
}

struct PoolOptions {
  std::string url;
  std::string name = "primary";  // for logs and metrics
  int max_connections = 8;
  absl::Duration acquire_timeout = absl::Seconds(2);
  absl::Duration connect_timeout = absl::Seconds(2);
  // Bounds every statement of the pool's transactions (SET LOCAL at their start: Transact, and
  // LimitStatements for transactions opened in Run). Statements outside a transaction get it too
  // on a direct connection (a startup option); through PgBouncer, which drops startup options
  // (ignore_startup_parameters), they run under the server's own default. 0: none set.
  absl::Duration statement_timeout = absl::Seconds(10);
};

class PgPool {
 public:
  explicit PgPool(PoolOptions options);
  ~PgPool();

  // Runs `fn` with a connection of the pool. Exceptions from libpqxx become a Status; a broken
  // connection is dropped instead of being returned to the pool.
  absl::Status Run(const std::function<void(pqxx::connection&)>& fn);

  // Runs `fn` in a transaction (committed when fn returns without throwing), the pool's statement
  // timeout set for it.
  absl::Status Transact(const std::function<void(pqxx::work&)>& fn);

  // Sets the pool's statement timeout for the rest of `tx` (SET LOCAL). Code that opens its own
  // transaction in Run calls it first.
  void LimitStatements(pqxx::transaction_base& tx) const;

  // SELECT 1 on a connection of the pool.
  absl::Status Ping();

  const PoolOptions& options() const { return options_; }

 private:
  absl::StatusOr<std::unique_ptr<pqxx::connection>> Acquire();
  void Release(std::unique_ptr<pqxx::connection> conn, bool broken);

  const PoolOptions options_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_;
  int open_ = 0;
};

struct ClusterOptions {
  PoolOptions primary;
  std::vector<PoolOptions> replicas;
  // A replica further behind than this is not used for reads.
  absl::Duration max_replica_lag = absl::Seconds(5);
  // How often replica health and lag are measured.
  absl::Duration check_interval = absl::Milliseconds(500);
};

// The primary and its read replicas. A background thread measures each replica's lag (bytes of
// WAL not yet replayed, and the age of the last replayed transaction) so that ReadPool can skip a
// replica that is down or too far behind.
class PgCluster {
 public:
  explicit PgCluster(ClusterOptions options);
  ~PgCluster();

  // From the standard flags (--pg_primary_url, --pg_replica_url with comma-separated URLs).
  static ClusterOptions OptionsFromFlags(int max_connections);

  PgPool& primary() { return *primary_; }
  // A healthy replica within the lag bound (round-robin), or the primary when there is none.
  PgPool& ReadPool();
  // Whether some replica is usable right now.
  bool ReplicaAvailable() const;

  // Runs `fn` on a replica; if the replica fails with UNAVAILABLE, marks it down and runs `fn` on
  // the primary.
  absl::Status RunRead(const std::function<void(pqxx::connection&)>& fn);
  // The same, telling `fn` whose connection it has (for LimitStatements).
  absl::Status RunRead(const std::function<void(pqxx::connection&, const PgPool&)>& fn);

  // Measures the replicas now (tests call it instead of waiting for the background thread).
  void CheckReplicasNow();

 private:
  struct Replica {
    std::unique_ptr<PgPool> pool;
    std::atomic<bool> usable{false};
    std::atomic<double> lag_seconds{0};
  };
  void CheckLoop();

  const ClusterOptions options_;
  std::unique_ptr<PgPool> primary_;
  std::vector<std::unique_ptr<Replica>> replicas_;
  std::atomic<unsigned> next_{0};
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stop_ = false;
  std::thread checker_;
};

}  // namespace kurt::pg
