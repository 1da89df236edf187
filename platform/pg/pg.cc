#include "platform/pg/pg.h"

#include <exception>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "platform/core/backend_error.h"
#include "platform/core/config.h"
#include "platform/core/log.h"

ABSL_FLAG(std::string, pg_primary_url, "postgresql://kurt@127.0.0.1:15432/kurt",
          "PostgreSQL primary (writes)");
ABSL_FLAG(std::string, pg_replica_url, "postgresql://kurt@127.0.0.1:15433/kurt",
          "PostgreSQL read replicas, comma-separated (empty: read from the primary)");

namespace kurt::pg {

namespace {

absl::Status StatusFromException(absl::string_view what) {
  try {
    throw;
  } catch (const pqxx::broken_connection& e) {
    return absl::UnavailableError(absl::StrCat(what, ": database connection lost: ", e.what()));
  } catch (const pqxx::in_doubt_error& e) {
    return absl::UnavailableError(absl::StrCat(what, ": commit outcome unknown: ", e.what()));
  } catch (const pqxx::sql_error& e) {
    const std::string& state = e.sqlstate();
    const std::string msg = absl::StrCat(what, ": ", absl::StripAsciiWhitespace(e.what()));
    if (state.empty()) {
      // No SQLSTATE: libpq's own error, not the server's (the connection failed under the call).
      return absl::UnavailableError(msg);
    }
    if (state == "23505") {
      return absl::AlreadyExistsError(msg);
    }
    if (absl::StartsWith(state, "23")) {
      return absl::FailedPreconditionError(msg);
    }
    if (state == "57014") {
      return absl::DeadlineExceededError(msg);
    }
    if (state == "40001" || state == "40P01") {
      return absl::AbortedError(msg);
    }
    if (absl::StartsWith(state, "08") || state == "57P01" || state == "57P02" || state == "57P03" ||
        state == "53300") {
      return absl::UnavailableError(msg);
    }
    if (state == "25006") {
      // A write reached a server in recovery: the primary's address led to a standby, as it does
      // for a moment during a failover (HAProxy follows Patroni, which names the new leader just
      // before its promotion completes). A retry reaches a primary.
      return absl::UnavailableError(msg);
    }
    if (absl::StartsWith(state, "22")) {
      return absl::InvalidArgumentError(msg);
    }
    return absl::InternalError(absl::StrCat(msg, " (SQLSTATE ", state, ")"));
  } catch (const pqxx::conversion_error& e) {
    return absl::InternalError(
        absl::StrCat(what, ": unexpected value from the database: ", e.what()));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(what, ": ", e.what()));
  }
}

}  // namespace

absl::Status StatusFromCurrentException(absl::string_view what) {
  // PostgreSQL's texts name tables, constraints and values: logged, never answered.
  return platform::BackendError(StatusFromException(what));
}

PgPool::PgPool(PoolOptions options) : options_(std::move(options)) {}

PgPool::~PgPool() = default;

absl::StatusOr<std::unique_ptr<pqxx::connection>> PgPool::Acquire() {
  {
    std::unique_lock<std::mutex> lock(mu_);
    const auto deadline =
        std::chrono::steady_clock::now() + absl::ToChronoMilliseconds(options_.acquire_timeout);
    while (idle_.empty() && open_ >= options_.max_connections) {
      if (cv_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() &&
          open_ >= options_.max_connections) {
        return absl::UnavailableError(absl::StrCat("database pool ", options_.name,
                                                   ": no connection free within ",
                                                   absl::FormatDuration(options_.acquire_timeout)));
      }
    }
    if (!idle_.empty()) {
      auto conn = std::move(idle_.back());
      idle_.pop_back();
      return conn;
    }
    ++open_;
  }
  // Connect outside the lock: it can take a while.
  try {
    std::string url = options_.url;
    absl::StrAppend(&url, url.find('?') == std::string::npos ? "?" : "&", "connect_timeout=",
                    std::max<int64_t>(1, absl::ToInt64Seconds(options_.connect_timeout)),
                    "&application_name=kurt-", options_.name);
    if (options_.statement_timeout > absl::ZeroDuration()) {
      // A startup option, not a SET: through PgBouncer a SET would stay on a server session that
      // other clients are then given, while PgBouncer drops startup options.
      absl::StrAppend(&url, "&options=-c%20statement_timeout%3D",
                      absl::ToInt64Milliseconds(options_.statement_timeout));
    }
    return std::make_unique<pqxx::connection>(url);
  } catch (...) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      --open_;
    }
    cv_.notify_one();
    return StatusFromCurrentException(absl::StrCat("connecting to ", options_.name));
  }
}

void PgPool::Release(std::unique_ptr<pqxx::connection> conn, bool broken) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (broken || !conn->is_open()) {
      --open_;
    } else {
      idle_.push_back(std::move(conn));
    }
  }
  cv_.notify_one();
}

absl::Status PgPool::Run(const std::function<void(pqxx::connection&)>& fn) {
  auto conn = Acquire();
  if (!conn.ok()) {
    return conn.status();
  }
  absl::Status status;
  bool broken = false;
  try {
    fn(**conn);
  } catch (...) {
    status = StatusFromCurrentException(options_.name);
    broken = absl::IsUnavailable(status) || !(*conn)->is_open();
    if (broken && !absl::IsUnavailable(status)) {
      // Whatever was reported, the connection went away under the call (the server or PgBouncer
      // closed it): the database is what failed, and a retry on a new connection may succeed.
      status = absl::UnavailableError(status.message());
    }
  }
  if (broken) {
    // Close it outright: a half-dead socket must not go back to the pool.
    try {
      (*conn)->disconnect();
    } catch (...) {
    }
  }
  Release(std::move(*conn), broken);
  return status;
}

absl::Status PgPool::Transact(const std::function<void(pqxx::work&)>& fn) {
  return Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    LimitStatements(tx);
    fn(tx);
    tx.commit();
  });
}

void PgPool::LimitStatements(pqxx::transaction_base& tx) const {
  if (options_.statement_timeout > absl::ZeroDuration()) {
    tx.exec(absl::StrCat("SET LOCAL statement_timeout = ",
                         absl::ToInt64Milliseconds(options_.statement_timeout)));
  }
}

absl::Status PgPool::Ping() {
  return Run([](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    tx.exec("SELECT 1");
  });
}

PgCluster::PgCluster(ClusterOptions options)
    : options_(std::move(options)), primary_(std::make_unique<PgPool>(options_.primary)) {
  for (const PoolOptions& r : options_.replicas) {
    auto replica = std::make_unique<Replica>();
    replica->pool = std::make_unique<PgPool>(r);
    replicas_.push_back(std::move(replica));
  }
  if (!replicas_.empty()) {
    CheckReplicasNow();
    checker_ = std::thread([this] { CheckLoop(); });
  }
}

PgCluster::~PgCluster() {
  {
    std::lock_guard<std::mutex> lock(stop_mu_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  if (checker_.joinable()) {
    checker_.join();
  }
}

ClusterOptions PgCluster::OptionsFromFlags(int max_connections) {
  ClusterOptions o;
  o.primary.url = absl::GetFlag(FLAGS_pg_primary_url);
  o.primary.name = "primary";
  o.primary.max_connections = max_connections;
  int i = 0;
  for (absl::string_view url :
       absl::StrSplit(absl::GetFlag(FLAGS_pg_replica_url), ',', absl::SkipWhitespace())) {
    PoolOptions r;
    r.url = std::string(absl::StripAsciiWhitespace(url));
    r.name = absl::StrCat("replica", i++);
    r.max_connections = max_connections;
    // A dead replica must not hold up reads that can go to the primary.
    r.acquire_timeout = absl::Milliseconds(500);
    r.connect_timeout = absl::Seconds(1);
    o.replicas.push_back(std::move(r));
  }
  return o;
}

void PgCluster::CheckReplicasNow() {
  std::string primary_lsn;
  absl::Status primary_ok = primary_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    primary_lsn = tx.exec1("SELECT pg_current_wal_lsn()::text")[0].as<std::string>();
  });
  for (auto& r : replicas_) {
    double lag = 0;
    bool in_recovery = false;
    absl::Status s = r->pool->Run([&](pqxx::connection& c) {
      pqxx::nontransaction tx(c);
      if (primary_ok.ok()) {
        // Bytes of WAL the replica has not replayed; when there are some, the age of the last
        // replayed transaction says how stale its data may be.
        pqxx::row row = tx.exec1(absl::StrCat(
            "SELECT pg_is_in_recovery(), "
            "COALESCE(pg_wal_lsn_diff(",
            tx.quote(primary_lsn),
            "::pg_lsn, pg_last_wal_replay_lsn()), 0), "
            "COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 1e9)"));
        in_recovery = row[0].as<bool>();
        lag = row[1].as<double>() > 0 ? row[2].as<double>() : 0;
      } else {
        in_recovery = tx.exec1("SELECT pg_is_in_recovery()")[0].as<bool>();
      }
    });
    bool usable = s.ok() && in_recovery && lag <= absl::ToDoubleSeconds(options_.max_replica_lag);
    if (usable != r->usable.load()) {
      KURT_LOG(kInfo, usable ? "replica usable" : "replica not used for reads",
               {"replica", r->pool->options().name}, {"lag_seconds", lag},
               {"error", s.ok() ? "" : std::string(s.message())});
    }
    r->lag_seconds = lag;
    r->usable = usable;
  }
}

void PgCluster::CheckLoop() {
  std::unique_lock<std::mutex> lock(stop_mu_);
  while (!stop_) {
    stop_cv_.wait_for(lock, absl::ToChronoMilliseconds(options_.check_interval));
    if (stop_) {
      break;
    }
    lock.unlock();
    CheckReplicasNow();
    lock.lock();
  }
}

bool PgCluster::ReplicaAvailable() const {
  for (const auto& r : replicas_) {
    if (r->usable) {
      return true;
    }
  }
  return false;
}

PgPool& PgCluster::ReadPool() {
  const size_t n = replicas_.size();
  unsigned start = next_.fetch_add(1, std::memory_order_relaxed);
  for (size_t i = 0; i < n; ++i) {
    Replica& r = *replicas_[(start + i) % n];
    if (r.usable.load(std::memory_order_relaxed)) {
      return *r.pool;
    }
  }
  return *primary_;
}

absl::Status PgCluster::RunRead(const std::function<void(pqxx::connection&)>& fn) {
  return RunRead([&](pqxx::connection& c, const PgPool&) { fn(c); });
}

absl::Status PgCluster::RunRead(const std::function<void(pqxx::connection&, const PgPool&)>& fn) {
  PgPool& pool = ReadPool();
  absl::Status s = pool.Run([&](pqxx::connection& c) { fn(c, pool); });
  if (&pool == primary_.get() || !absl::IsUnavailable(s)) {
    return s;
  }
  for (auto& r : replicas_) {
    if (r->pool.get() == &pool) {
      r->usable = false;  // until the checker sees it again
    }
  }
  KURT_LOG(kWarn, "replica read failed; reading from the primary", {"replica", pool.options().name},
           {"error", s.message()});
  return primary_->Run([&](pqxx::connection& c) { fn(c, *primary_); });
}

}  // namespace kurt::pg
