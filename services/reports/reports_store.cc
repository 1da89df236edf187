#include "services/reports/reports_store.h"

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "platform/outbox/outbox.h"

namespace kurt::reports {
namespace {

absl::Status NotFound(const std::string& id) {
  return absl::NotFoundError(absl::StrCat("no report with id '", id, "'"));
}

bool SameParameters(const ReportJob& job, const NewReport& r) {
  return job.kind == r.kind && job.code == r.code && job.start_time == r.start_time &&
         job.end_time == r.end_time;
}

}  // namespace

PgReportsStore::PgReportsStore(PgReportsStoreOptions options, pg::PgCluster* cluster)
    : options_(std::move(options)), cluster_(cluster) {}

absl::StatusOr<CreateResult> PgReportsStore::Create(const NewReport& report) {
  CreateResult out;
  bool found = false;
  absl::Status refused;
  const ReportQuota& quota = options_.quota;
  absl::Status s = cluster_->primary().Transact([&](pqxx::work& tx) {
    refused = absl::OkStatus();
    if (quota.max_active > 0 || quota.max_per_day > 0) {
      // One account's creates take turns (until commit), so each counts what the one before it
      // committed and concurrent requests cannot overshoot the quota together. Other accounts
      // are not held up.
      tx.exec_params("SELECT pg_advisory_xact_lock(hashtext('kurt.reports.quota:' || $1))",
                     report.account_id);
      if (!report.request_id.empty()) {
        // A retry of a request that was accepted is answered whatever the quota says now.
        pqxx::result existing = tx.exec_params(
            absl::StrCat("SELECT ", kJobColumns,
                         " FROM report_jobs WHERE account_id = $1 AND request_id = $2"),
            report.account_id, report.request_id);
        if (!existing.empty()) {
          out.job = JobFromRow(existing[0]);
          found = true;
          return;
        }
      }
      if (quota.max_active > 0) {
        const auto active = tx.exec_params(
                                  "SELECT count(*) FROM (SELECT 1 FROM report_jobs WHERE "
                                  "account_id = $1 AND state IN ('PENDING', 'RUNNING') "
                                  "LIMIT $2) AS a",
                                  report.account_id, quota.max_active)[0][0]
                                .as<int64_t>();
        if (active >= quota.max_active) {
          refused = absl::ResourceExhaustedError(
              absl::StrCat("report quota: an account may have ", quota.max_active,
                           " reports PENDING or RUNNING at once, and this one has ", active,
                           "; wait for one to finish, or cancel one, then ask again"));
          refused.SetPayload(kQuotaPayload, absl::Cord("active"));
          return;
        }
      }
      if (quota.max_per_day > 0) {
        // The quota-th newest report of the last 24 hours: while it is in the window, the window
        // is full; the next report may be created once it has left it.
        pqxx::result r = tx.exec_params(
            "SELECT to_char((create_time + interval '1 day') AT TIME ZONE 'UTC', "
            "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM report_jobs "
            "WHERE account_id = $1 AND create_time > now() - interval '1 day' "
            "ORDER BY create_time DESC, id DESC OFFSET $2::int - 1 LIMIT 1",
            report.account_id, quota.max_per_day);
        if (!r.empty()) {
          refused = absl::ResourceExhaustedError(absl::StrCat(
              "report quota: an account may create ", quota.max_per_day,
              " reports in 24 hours, and this one has; the next one can be created after ",
              r[0][0].as<std::string>()));
          refused.SetPayload(kQuotaPayload, absl::Cord("daily"));
          return;
        }
      }
    }
    // A request_id taken by a concurrent request makes this INSERT wait for it, then do nothing;
    // the SELECT below then sees the winner's job.
    pqxx::result r = tx.exec_params(
        absl::StrCat(
            "INSERT INTO report_jobs (id, account_id, request_id, kind, code, start_time, "
            "end_time, request_event_id, lease_until) VALUES (gen_random_uuid(), $1, "
            "NULLIF($2, ''), $3, $4, $5::timestamptz, $6::timestamptz, gen_random_uuid()::text, "
            "now() + $7 * interval '1 millisecond') "
            "ON CONFLICT (account_id, request_id) DO NOTHING RETURNING ",
            kJobColumns),
        report.account_id, report.request_id, KindName(report.kind), report.code,
        Rfc3339(report.start_time), Rfc3339(report.end_time),
        absl::ToInt64Milliseconds(options_.pending_grace));
    if (r.empty()) {
      pqxx::result existing = tx.exec_params(
          absl::StrCat("SELECT ", kJobColumns,
                       " FROM report_jobs WHERE account_id = $1 AND request_id = $2"),
          report.account_id, report.request_id);
      if (existing.empty()) {
        return;  // cannot happen: the conflict was on this key
      }
      out.job = JobFromRow(existing[0]);
      found = true;
      return;
    }
    out.job = JobFromRow(r[0]);
    out.created = true;
    outbox::OutboxMessage m;
    m.topic = options_.requested_topic;
    m.key = out.job.id;
    m.event_id = out.job.request_event_id;
    m.payload = RequestedEvent(out.job).SerializeAsString();
    outbox::Enqueue(tx, kOutboxTable, m);
  });
  if (!s.ok()) {
    return s;
  }
  if (!refused.ok()) {
    return refused;
  }
  if (!out.created && !found) {
    return absl::AbortedError("report request conflicted; retry");
  }
  if (found && !SameParameters(out.job, report)) {
    return absl::AlreadyExistsError(absl::StrCat("request_id: '", report.request_id,
                                                 "' was already used for a different report (",
                                                 out.job.id, ")"));
  }
  return out;
}

absl::StatusOr<ReportJob> PgReportsStore::Get(const std::string& account_id,
                                              const std::string& id) {
  std::optional<ReportJob> out;
  absl::Status s = cluster_->primary().Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    pqxx::result r =
        tx.exec_params(absl::StrCat("SELECT ", kJobColumns,
                                    " FROM report_jobs WHERE id = $1::uuid AND account_id = $2"),
                       id, account_id);
    if (!r.empty()) {
      out = JobFromRow(r[0]);
    }
  });
  if (!s.ok()) {
    return s;
  }
  if (!out) {
    return NotFound(id);
  }
  return *out;
}

absl::StatusOr<std::vector<ReportJob>> PgReportsStore::List(
    const std::string& account_id, int limit, const std::optional<platform::PageKey>& after) {
  std::vector<ReportJob> out;
  absl::Status s = cluster_->RunRead([&](pqxx::connection& c) {
    out.clear();
    pqxx::nontransaction tx(c);
    pqxx::result r;
    if (after) {
      r = tx.exec_params(
          absl::StrCat("SELECT ", kJobColumns,
                       " FROM report_jobs WHERE account_id = $1 AND (create_time, id) < "
                       "(timestamptz 'epoch' + $2::bigint * interval '1 microsecond', $3::uuid) "
                       "ORDER BY create_time DESC, id DESC LIMIT $4"),
          account_id, absl::ToUnixMicros(after->time), after->key, limit);
    } else {
      r = tx.exec_params(absl::StrCat("SELECT ", kJobColumns,
                                      " FROM report_jobs WHERE account_id = $1 "
                                      "ORDER BY create_time DESC, id DESC LIMIT $2"),
                         account_id, limit);
    }
    for (const pqxx::row& row : r) {
      out.push_back(JobFromRow(row));
    }
  });
  if (!s.ok()) {
    return s;
  }
  return out;
}

absl::StatusOr<ReportJob> PgReportsStore::Cancel(const std::string& account_id,
                                                 const std::string& id) {
  std::optional<ReportJob> out;
  absl::Status s = cluster_->primary().Transact([&](pqxx::work& tx) {
    // The worker notices at its next heartbeat (its lease renewal requires RUNNING).
    pqxx::result r = tx.exec_params(
        absl::StrCat("UPDATE report_jobs SET state = 'CANCELLED', finish_time = now(), "
                     "update_time = now(), lease_until = NULL "
                     "WHERE id = $1::uuid AND account_id = $2 AND state IN ('PENDING', 'RUNNING') "
                     "RETURNING ",
                     kJobColumns),
        id, account_id);
    if (r.empty()) {
      r = tx.exec_params(absl::StrCat("SELECT ", kJobColumns,
                                      " FROM report_jobs WHERE id = $1::uuid AND account_id = $2"),
                         id, account_id);
    }
    if (!r.empty()) {
      out = JobFromRow(r[0]);
    }
  });
  if (!s.ok()) {
    return s;
  }
  if (!out) {
    return NotFound(id);
  }
  return *out;
}

absl::StatusOr<bool> PgReportsStore::OwnsLink(const std::string& account_id,
                                              const std::string& code) {
  bool owned = false;
  absl::Status s = cluster_->primary().Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    owned =
        !tx.exec_params("SELECT 1 FROM links WHERE code = $1 AND account_id = $2", code, account_id)
             .empty();
  });
  if (!s.ok()) {
    return s;
  }
  return owned;
}

}  // namespace kurt::reports
