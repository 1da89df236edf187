#include "services/analytics/click_store.h"

#include <libpq-fe.h>

#include <algorithm>
#include <memory>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "pqxx/largeobject"

namespace kurt::analytics {
namespace {

template <typename T, typename F>
std::string NumberArrayLiteral(const std::vector<T>& items, F number_of) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) {
      out.push_back(',');
    }
    absl::StrAppend(&out, number_of(items[i]));
  }
  out.push_back('}');
  return out;
}

// Rows of (code, event id, Unix microseconds).
std::vector<ClickKey> ClickKeys(const pqxx::result& r) {
  std::vector<ClickKey> out;
  out.reserve(r.size());
  for (const auto& row : r) {
    out.push_back(ClickKey{row[0].as<std::string>(), row[1].as<std::string>(),
                           absl::FromUnixMicros(row[2].as<int64_t>())});
  }
  return out;
}

// Adds one batch's sums to an hourly dimension table (referrers, agents or countries).
//
// MERGE, not INSERT ... ON CONFLICT DO UPDATE: the latter first probes the key index for a
// conflict, then locks the row it found (a WAL record of its own) before updating it; MERGE finds
// the row by the same index and updates it, about 40 % less PostgreSQL CPU per row. MERGE takes no
// lock against a concurrent insert of the same key: two transactions never add the same row,
// since a code's clicks are in one partition and a partition's writers queue on its offset row
// (LockOffsets); were the partitions of a topic ever changed, the loser of such a race would fail
// on the key and its batch come again, finding the row.
void UpsertDimension(pqxx::work& tx, const char* table, const char* column,
                     const std::vector<DimensionHourlyCount>& counts) {
  if (counts.empty()) {
    return;
  }
  tx.exec_params(
      absl::StrCat("MERGE INTO ", table,
                   " t USING (SELECT c COLLATE \"C\" AS c, to_timestamp(h) AS h, "
                   "v COLLATE \"C\" AS v, n FROM "
                   "unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[]) AS u(c, h, v, n)) s "
                   "ON t.code = s.c AND t.hour = s.h AND t.",
                   column, " = s.v WHEN MATCHED THEN UPDATE SET clicks = t.clicks + s.n ",
                   "WHEN NOT MATCHED THEN INSERT (code, hour, ", column,
                   ", clicks) VALUES (s.c, s.h, s.v, s.n)"),
      pg::TextArrayLiteral(counts, [](const auto& c) -> const std::string& { return c.code; }),
      NumberArrayLiteral(counts, [](const auto& c) { return c.hour; }),
      pg::TextArrayLiteral(counts, [](const auto& c) -> const std::string& { return c.value; }),
      NumberArrayLiteral(counts, [](const auto& c) { return c.clicks; }));
}

// libpqxx 6 has no binary COPY, but its largeobject class hands subclasses the libpq connection
// of a transaction, which is all that COPY ... FROM STDIN needs.
struct RawConnection : pqxx::largeobject {
  static PGconn* Of(const pqxx::dbtransaction& tx) { return raw_connection(tx); }
};

// `COPY table (columns) FROM STDIN (FORMAT binary)` inside the transaction, fed with ready-made
// tuples (BatchBuilder's): PostgreSQL reads them without parsing text, which was about a quarter
// of what a text COPY cost it. Throws pqxx exceptions, as the rest of the transaction.
class BinaryCopyIn {
 public:
  // `sql`: the COPY ... FROM STDIN (FORMAT binary) statement; it outlives this.
  BinaryCopyIn(pqxx::dbtransaction& tx, const std::string& sql)
      : conn_(RawConnection::Of(tx)), sql_(sql) {
    PGresult* r = PQexec(conn_, sql_.c_str());
    const bool started = PQresultStatus(r) == PGRES_COPY_IN;
    std::string error = started ? "" : ErrorOf(r);
    std::string state = started ? "" : SqlStateOf(r);
    PQclear(r);
    if (!started) {
      Throw(error, state);
    }
    active_ = true;
    Put(CopyBinaryHeader());
  }
  BinaryCopyIn(const BinaryCopyIn&) = delete;
  BinaryCopyIn& operator=(const BinaryCopyIn&) = delete;
  // Abandoned (an error on the way): ends the COPY as failed, so that the connection is back in
  // the (failed) transaction, which then rolls back.
  ~BinaryCopyIn() {
    if (!active_) {
      return;
    }
    PQputCopyEnd(conn_, "abandoned");
    Finish();
  }

  void Write(absl::string_view tuples) {
    if (!tuples.empty()) {
      Put(tuples);
    }
  }

  void Complete() {
    Put(CopyBinaryTrailer());
    active_ = false;
    if (PQputCopyEnd(conn_, nullptr) != 1) {
      throw pqxx::broken_connection(PQerrorMessage(conn_));
    }
    auto [error, state] = Finish();
    if (!error.empty()) {
      Throw(error, state);
    }
  }

 private:
  static std::string ErrorOf(const PGresult* r) {
    const char* m = PQresultErrorMessage(r);
    return m != nullptr ? m : "";
  }
  static std::string SqlStateOf(const PGresult* r) {
    const char* s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    return s != nullptr ? s : "";
  }
  [[noreturn]] void Throw(const std::string& error, const std::string& state) {
    if (PQstatus(conn_) != CONNECTION_OK) {
      throw pqxx::broken_connection(error);
    }
    throw pqxx::sql_error(error, sql_, state.empty() ? nullptr : state.c_str());
  }

  void Put(absl::string_view data) {
    if (PQputCopyData(conn_, data.data(), static_cast<int>(data.size())) != 1) {
      active_ = false;
      throw pqxx::broken_connection(PQerrorMessage(conn_));
    }
  }

  // Collects the COPY's results; returns the first error and its SQLSTATE.
  std::pair<std::string, std::string> Finish() {
    std::pair<std::string, std::string> first;
    while (PGresult* r = PQgetResult(conn_)) {
      if (PQresultStatus(r) != PGRES_COMMAND_OK && first.first.empty()) {
        first = {ErrorOf(r), SqlStateOf(r)};
      }
      PQclear(r);
    }
    return first;
  }

  PGconn* conn_;
  const std::string& sql_;
  bool active_ = false;
};

class PgClickTransaction : public ClickTransaction {
 public:
  explicit PgClickTransaction(pqxx::work& tx) : tx_(tx) {}

  absl::StatusOr<OffsetMap> LockOffsets(const std::string& group,
                                        const std::vector<PartitionKey>& partitions) override {
    try {
      EndCopy();
      std::string topics = pg::TextArrayLiteral(partitions, [](const auto& p) { return p.first; });
      std::string numbers = NumberArrayLiteral(partitions, [](const auto& p) { return p.second; });
      // A missing row starts at 0; SetOffsets moves it before the commit.
      tx_.exec_params(
          "INSERT INTO analytics_consumer_offsets (group_id, topic, kafka_partition, next_offset) "
          "SELECT $1, t, p, 0 FROM unnest($2::text[], $3::int[]) AS u(t, p) "
          "ON CONFLICT (group_id, topic, kafka_partition) DO NOTHING",
          group, topics, numbers);
      // Sorted, so that writers sharing partitions lock them in one order.
      pqxx::result r = tx_.exec_params(
          "SELECT topic, kafka_partition, next_offset FROM analytics_consumer_offsets "
          "WHERE group_id = $1 AND (topic, kafka_partition) IN "
          "(SELECT t, p FROM unnest($2::text[], $3::int[]) AS u(t, p)) "
          "ORDER BY topic, kafka_partition FOR UPDATE",
          group, topics, numbers);
      OffsetMap out;
      for (const auto& row : r) {
        out[{row[0].as<std::string>(), row[1].as<int32_t>()}] = row[2].as<int64_t>();
      }
      return out;
    } catch (...) {
      return pg::StatusFromCurrentException("locking consumer offsets");
    }
  }

  absl::StatusOr<std::vector<std::string>> ExistingCodes(
      const std::vector<std::string>& codes) override {
    std::vector<std::string> out;
    if (codes.empty()) {
      return out;
    }
    try {
      EndCopy();
      pqxx::result r = tx_.exec_params("SELECT code FROM links WHERE code = ANY($1::text[])",
                                       pg::TextArrayLiteral(codes));
      for (const auto& row : r) {
        out.push_back(row[0].as<std::string>());
      }
      return out;
    } catch (...) {
      return pg::StatusFromCurrentException("looking up link codes");
    }
  }

  absl::StatusOr<std::vector<ClickKey>> ClicksSince(int32_t partition, absl::Time since) override {
    try {
      EndCopy();
      // Through clicks_time_brin: the recent blocks of the table, not all of it.
      pqxx::result r = tx_.exec_params(
          "SELECT code, event_id, (extract(epoch FROM click_time) * 1000000)::bigint FROM clicks "
          "WHERE kafka_partition = $1 AND click_time >= timestamptz 'epoch' + $2 * interval "
          "'1 microsecond'",
          partition, absl::ToUnixMicros(since));
      return ClickKeys(r);
    } catch (...) {
      return pg::StatusFromCurrentException("reading the partition's recent clicks");
    }
  }

  absl::StatusOr<std::vector<ClickKey>> StoredClicks(const std::vector<ClickKey>& clicks,
                                                     absl::Duration margin) override {
    if (clicks.empty()) {
      return std::vector<ClickKey>();
    }
    try {
      EndCopy();
      // Per click, its code over its time and the margin: a probe of the (code, click_time)
      // B-tree on an ended day. The day being written has none (migration 0020), so the times of
      // all the clicks bound the scan as well: the planner prunes the partitions outside them and
      // may read the current day's rows of that span once (clicks_time_brin), not per click.
      absl::Time first = clicks.front().time;
      absl::Time last = first;
      for (const ClickKey& c : clicks) {
        first = std::min(first, c.time);
        last = std::max(last, c.time);
      }
      pqxx::result r = tx_.exec_params(
          "SELECT u.code, u.id, u.us FROM unnest($1::text[], $2::text[], $3::bigint[]) AS u(code, "
          "id, us) WHERE EXISTS (SELECT 1 FROM clicks c WHERE c.code = u.code AND "
          "c.event_id = u.id AND c.click_time BETWEEN timestamptz 'epoch' + (u.us - $4) * "
          "interval '1 microsecond' AND timestamptz 'epoch' + (u.us + $4) * "
          "interval '1 microsecond' AND c.click_time BETWEEN timestamptz 'epoch' + $5 * "
          "interval '1 microsecond' AND timestamptz 'epoch' + $6 * interval '1 microsecond')",
          pg::TextArrayLiteral(clicks,
                               [](const ClickKey& c) -> const std::string& { return c.code; }),
          pg::TextArrayLiteral(clicks,
                               [](const ClickKey& c) -> const std::string& { return c.event_id; }),
          NumberArrayLiteral(clicks, [](const ClickKey& c) { return absl::ToUnixMicros(c.time); }),
          absl::ToInt64Microseconds(margin), absl::ToUnixMicros(first - margin),
          absl::ToUnixMicros(last + margin));
      return ClickKeys(r);
    } catch (...) {
      return pg::StatusFromCurrentException("looking up clicks stored already");
    }
  }

  absl::Status CopyClicks(std::string tuples) override {
    try {
      if (!copy_) {
        // The same statement for every batch: built once.
        static const std::string kCopyClicks =
            absl::StrCat("COPY clicks (", absl::StrJoin(kClickCopyColumns, ", "),
                         ") FROM STDIN (FORMAT binary)");
        copy_ = std::make_unique<BinaryCopyIn>(tx_, kCopyClicks);
      }
      copy_->Write(tuples);
      return absl::OkStatus();
    } catch (...) {
      copy_.reset();
      return pg::StatusFromCurrentException("copying clicks");
    }
  }

  absl::Status AddAggregates(const Aggregates& a) override {
    try {
      EndCopy();
      if (!a.hourly.empty()) {
        // MERGE, as UpsertDimension (why there).
        tx_.exec_params(
            "MERGE INTO click_hourly t USING (SELECT c COLLATE \"C\" AS c, to_timestamp(h) AS h, "
            "n, b FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[]) AS u(c, h, n, "
            "b)) s ON t.code = s.c AND t.hour = s.h "
            "WHEN MATCHED THEN UPDATE SET clicks = t.clicks + s.n, bot_clicks = t.bot_clicks + s.b "
            "WHEN NOT MATCHED THEN INSERT (code, hour, clicks, bot_clicks) "
            "VALUES (s.c, s.h, s.n, s.b)",
            pg::TextArrayLiteral(a.hourly,
                                 [](const auto& c) -> const std::string& { return c.code; }),
            NumberArrayLiteral(a.hourly, [](const auto& c) { return c.hour; }),
            NumberArrayLiteral(a.hourly, [](const auto& c) { return c.clicks; }),
            NumberArrayLiteral(a.hourly, [](const auto& c) { return c.bot_clicks; }));
      }
      UpsertDimension(tx_, "click_referrers_hourly", "referrer", a.referrers);
      UpsertDimension(tx_, "click_agents_hourly", "agent", a.agents);
      UpsertDimension(tx_, "click_countries_hourly", "country", a.countries);
      return absl::OkStatus();
    } catch (...) {
      return pg::StatusFromCurrentException("adding click aggregates");
    }
  }

  absl::Status SetOffsets(const std::string& group, const OffsetMap& next_offsets) override {
    if (next_offsets.empty()) {
      return absl::OkStatus();
    }
    try {
      EndCopy();
      std::vector<std::pair<PartitionKey, int64_t>> next(next_offsets.begin(), next_offsets.end());
      tx_.exec_params(
          "UPDATE analytics_consumer_offsets o SET next_offset = u.n, update_time = now() "
          "FROM unnest($2::text[], $3::int[], $4::bigint[]) AS u(t, p, n) "
          "WHERE o.group_id = $1 AND o.topic = u.t AND o.kafka_partition = u.p",
          group, pg::TextArrayLiteral(next, [](const auto& e) { return e.first.first; }),
          NumberArrayLiteral(next, [](const auto& e) { return e.first.second; }),
          NumberArrayLiteral(next, [](const auto& e) { return e.second; }));
      return absl::OkStatus();
    } catch (...) {
      return pg::StatusFromCurrentException("storing consumer offsets");
    }
  }

  // Ends a COPY in progress (another statement cannot run before); throws on failure.
  void EndCopy() {
    if (!copy_) {
      return;
    }
    std::unique_ptr<BinaryCopyIn> copy = std::move(copy_);
    copy->Complete();
  }

 private:
  pqxx::work& tx_;
  std::unique_ptr<BinaryCopyIn> copy_;
};

}  // namespace

absl::Status PgClickStore::InTransaction(const std::function<absl::Status(ClickTransaction&)>& fn) {
  absl::Status result;
  absl::Status s = primary_->Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    primary_->LimitStatements(tx);
    // The commit is the acknowledgement of the batch's offsets, so it waits for the WAL flush
    // (and, in the --ha shape, for the synchronous standby): synchronous_commit stays on. With it
    // off, a crash or a failover could take back a commit that others had acted on — offsets
    // mirrored to Kafka (--mirror_offsets_to_kafka; a partition whose first offset row was lost
    // would resume from them, past the lost clicks), dead letters already published, counts
    // already read. It costs no measurable CPU (docs/analytics.md).
    PgClickTransaction t(tx);
    result = fn(t);
    // Leaving without commit rolls back.
    if (result.ok()) {
      t.EndCopy();
      tx.commit();
    }
  });
  if (!s.ok()) {
    return s;
  }
  return result;
}

absl::StatusOr<OffsetMap> PgClickStore::LoadOffsets(const std::string& group,
                                                    const std::string& topic) {
  OffsetMap out;
  absl::Status s = primary_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    pqxx::result r = tx.exec_params(
        "SELECT kafka_partition, next_offset FROM analytics_consumer_offsets "
        "WHERE group_id = $1 AND topic = $2",
        group, topic);
    for (const auto& row : r) {
      out[{topic, row[0].as<int32_t>()}] = row[1].as<int64_t>();
    }
  });
  if (!s.ok()) {
    return s;
  }
  return out;
}

absl::StatusOr<int> PgClickStore::EnsurePartitions(absl::Time first_day, int days) {
  int created = 0;
  absl::Status s = primary_->Transact([&](pqxx::work& tx) {
    created = tx.exec_params1(
                    "SELECT analytics_ensure_click_days("
                    "timestamptz 'epoch' + $1::bigint * interval '1 second', $2)",
                    absl::ToUnixSeconds(first_day), days)[0]
                  .as<int>();
  });
  if (!s.ok()) {
    return s;
  }
  return created;
}

namespace {

// The maintenance pool: the primary's, without a statement timeout (a day's index build reads the
// whole day), two connections (the lock's and the builds').
pg::PoolOptions MaintenanceOptions(pg::PoolOptions o) {
  o.name = absl::StrCat(o.name, "-maintenance");
  o.max_connections = 2;
  o.statement_timeout = absl::ZeroDuration();
  return o;
}

}  // namespace

PgClickStore::PgClickStore(pg::PgPool* primary)
    : primary_(primary), maintenance_(MaintenanceOptions(primary->options())) {}

absl::StatusOr<DayIndexing> PgClickStore::IndexEndedDays() {
  DayIndexing out;
  absl::Status built;
  absl::Status s = maintenance_.Run([&](pqxx::connection& lock_conn) {
    // Instances take turns on an advisory lock of a transaction kept open on one connection while
    // another builds: CREATE INDEX CONCURRENTLY refuses to run in a transaction block, and under
    // PgBouncer's transaction pooling a session lock could stay on a server session other clients
    // are given. The open transaction holds no snapshot between statements (READ COMMITTED) and
    // no lock on clicks, so the builds do not wait for it.
    pqxx::work lock(lock_conn);
    if (!lock.exec1(
                 "SELECT pg_try_advisory_xact_lock(hashtext('kurt.analytics.click_day_indexes'))")
             [0]
                 .as<bool>()) {
      out.busy_elsewhere = true;
      return;
    }
    built = maintenance_.Run([&](pqxx::connection& c) {
      pqxx::nontransaction tx(c);
      // Ended partitions (the default one has no end) without a valid B-tree on (code,
      // click_time) and without a build in progress (one started by hand, or by an instance
      // whose lock connection was lost), and whether an INVALID index holds this work's name.
      pqxx::result todo = tx.exec(
          "SELECT c.relname, EXISTS (SELECT 1 FROM pg_index x JOIN pg_class i ON i.oid = "
          "x.indexrelid WHERE x.indrelid = c.oid AND i.relname = c.relname || '_code_time' AND "
          "NOT x.indisvalid) FROM analytics_click_partitions() p JOIN pg_class c ON c.oid = p.part "
          "WHERE p.hi <= now() AND NOT EXISTS (SELECT 1 FROM pg_index x WHERE x.indrelid = c.oid "
          "AND x.indisvalid AND pg_get_indexdef(x.indexrelid) LIKE '%USING btree (code, "
          "click_time)') AND NOT EXISTS (SELECT 1 FROM pg_stat_progress_create_index b WHERE "
          "b.relid = c.oid) ORDER BY p.lo");
      for (const auto& row : todo) {
        const std::string part = row[0].as<std::string>();
        const std::string index = tx.quote_name(part + "_code_time");
        if (row[1].as<bool>()) {
          tx.exec(absl::StrCat("DROP INDEX CONCURRENTLY IF EXISTS ", index));
          out.repaired.push_back(part);
        }
        tx.exec(absl::StrCat("CREATE INDEX CONCURRENTLY ", index, " ON ", tx.quote_name(part),
                             " (code, click_time)"));
        out.built.push_back(part);
      }
    });
    lock.commit();
  });
  if (!s.ok()) {
    return s;
  }
  if (!built.ok()) {
    return built;
  }
  return out;
}

}  // namespace kurt::analytics
