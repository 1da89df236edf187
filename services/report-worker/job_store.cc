#include "services/report-worker/job_store.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "platform/outbox/outbox.h"

namespace kurt::report_worker {

using reports::CompletedEvent;
using reports::CompletedEventId;
using reports::JobFromRow;
using reports::kJobColumns;
using reports::kOutboxTable;
using reports::ReportJob;
using reports::RequestedEvent;
namespace v1 = reports::v1;

namespace {

std::string Millis(absl::Duration d) { return absl::StrCat(absl::ToInt64Milliseconds(d)); }

void EnqueueCompleted(pqxx::work& tx, const std::string& topic, const ReportJob& job) {
  outbox::OutboxMessage m;
  m.topic = topic;
  // Keyed by account: one account's notifications stay in order.
  m.key = job.account_id;
  m.event_id = CompletedEventId(job.id);
  m.payload = CompletedEvent(job).SerializeAsString();
  outbox::Enqueue(tx, kOutboxTable, m);
}

}  // namespace

PgJobStore::PgJobStore(PgJobStoreOptions options, pg::PgPool* primary)
    : options_(std::move(options)), primary_(primary) {}

absl::StatusOr<ClaimResult> PgJobStore::Claim(const std::string& report_id) {
  ClaimResult out;
  absl::Status s = primary_->Transact([&](pqxx::work& tx) {
    out = ClaimResult{};
    pqxx::result r = tx.exec_params(
        absl::StrCat("SELECT ", kJobColumns,
                     ", (lease_until IS NULL OR lease_until < now()) FROM report_jobs "
                     "WHERE id = $1::uuid FOR UPDATE"),
        report_id);
    if (r.empty()) {
      out.outcome = ClaimOutcome::kUnknown;
      return;
    }
    ReportJob job = JobFromRow(r[0]);
    const bool expired = r[0][r[0].size() - 1].as<bool>();
    // PENDING: its message (or the scan) may start it. RUNNING: only once its lease (or its retry
    // backoff) is over.
    if (!(job.state == v1::PENDING || (job.state == v1::RUNNING && expired))) {
      out.outcome = ClaimOutcome::kNotClaimable;
      out.job = job;
      return;
    }
    if (job.attempts >= options_.max_attempts) {
      std::string reason =
          job.error.empty()
              ? absl::StrCat("gave up after ", job.attempts,
                             " attempts: its workers stopped while running it")
              : absl::StrCat("gave up after ", job.attempts, " attempts: ", job.error);
      FailInTransaction(tx, job, reason, /*owned_check=*/false);
      out.outcome = ClaimOutcome::kGaveUp;
      out.job = job;
      return;
    }
    pqxx::result claimed = tx.exec_params(
        absl::StrCat(
            "UPDATE report_jobs SET state = 'RUNNING', worker_id = $2, "
            "attempts = attempts + 1, lease_until = now() + $3 * interval '1 millisecond', "
            "heartbeat_time = now(), start_run_time = COALESCE(start_run_time, now()), "
            "progress_rows = 0, update_time = now() WHERE id = $1::uuid RETURNING ",
            kJobColumns),
        report_id, options_.worker_id, Millis(options_.lease));
    out.outcome = ClaimOutcome::kClaimed;
    out.job = JobFromRow(claimed[0]);
  });
  if (!s.ok()) {
    return s;
  }
  return out;
}

absl::StatusOr<std::set<std::string>> PgJobStore::Heartbeat(
    const std::vector<std::pair<std::string, int64_t>>& progress) {
  std::set<std::string> held;
  if (progress.empty()) {
    return held;
  }
  absl::Status s = primary_->Transact([&](pqxx::work& tx) {
    held.clear();
    std::vector<std::string> values;
    values.reserve(progress.size());
    for (const auto& [id, rows] : progress) {
      values.push_back(absl::StrCat("(", tx.quote(id), "::uuid, ", rows, "::bigint)"));
    }
    pqxx::result r = tx.exec_params(
        absl::StrCat(
            "UPDATE report_jobs j SET lease_until = now() + $1 * interval '1 millisecond', "
            "heartbeat_time = now(), progress_rows = v.rows, update_time = now() "
            "FROM (VALUES ",
            absl::StrJoin(values, ", "),
            ") AS v(id, rows) WHERE j.id = v.id AND j.worker_id = $2 AND "
            "j.state = 'RUNNING' RETURNING j.id::text"),
        Millis(options_.lease), options_.worker_id);
    for (const pqxx::row& row : r) {
      held.insert(row[0].as<std::string>());
    }
  });
  if (!s.ok()) {
    return s;
  }
  return held;
}

absl::StatusOr<bool> PgJobStore::Succeed(const ReportJob& job, const Artifact& artifact) {
  bool done = false;
  absl::Status s = primary_->Transact([&](pqxx::work& tx) {
    pqxx::result r = tx.exec_params(
        absl::StrCat("UPDATE report_jobs SET state = 'SUCCEEDED', progress_rows = $3, "
                     "row_count = $3, size_bytes = $4, content_type = $5, artifact_key = $6, "
                     "error = '', finish_time = now(), update_time = now(), lease_until = NULL "
                     "WHERE id = $1::uuid AND worker_id = $2 AND state = 'RUNNING' RETURNING ",
                     kJobColumns),
        job.id, options_.worker_id, artifact.rows, artifact.size_bytes, artifact.content_type,
        artifact.key);
    done = !r.empty();
    if (done) {
      EnqueueCompleted(tx, options_.completed_topic, JobFromRow(r[0]));
    }
  });
  if (!s.ok()) {
    return s;
  }
  return done;
}

bool PgJobStore::FailInTransaction(pqxx::work& tx, const ReportJob& job, const std::string& reason,
                                   bool owned_check) {
  const std::string update = absl::StrCat(
      "UPDATE report_jobs SET state = 'FAILED', error = $2, finish_time = now(), "
      "update_time = now(), lease_until = NULL WHERE id = $1::uuid");
  pqxx::result r =
      owned_check
          ? tx.exec_params(absl::StrCat(update,
                                        " AND worker_id = $3 AND state = 'RUNNING' "
                                        "RETURNING ",
                                        kJobColumns),
                           job.id, reason, options_.worker_id)
          : tx.exec_params(absl::StrCat(update, " RETURNING ", kJobColumns), job.id, reason);
  if (r.empty()) {
    return false;
  }
  ReportJob failed = JobFromRow(r[0]);
  EnqueueCompleted(tx, options_.completed_topic, failed);
  outbox::OutboxMessage dead;
  dead.topic = options_.dead_letter_topic;
  dead.key = failed.id;
  dead.event_id = absl::StrCat(failed.id, "/dead-letter");
  dead.payload = RequestedEvent(failed).SerializeAsString();
  dead.headers = {{"x-kurt-error", reason},
                  {"x-kurt-attempts", absl::StrCat(failed.attempts)},
                  {"x-kurt-original-topic", options_.requested_topic},
                  {"x-kurt-original-event-id", failed.request_event_id}};
  outbox::Enqueue(tx, kOutboxTable, dead);
  return true;
}

absl::StatusOr<bool> PgJobStore::Fail(const ReportJob& job, const std::string& reason) {
  bool done = false;
  absl::Status s = primary_->Transact(
      [&](pqxx::work& tx) { done = FailInTransaction(tx, job, reason, /*owned_check=*/true); });
  if (!s.ok()) {
    return s;
  }
  return done;
}

absl::StatusOr<bool> PgJobStore::RetryLater(const ReportJob& job, const std::string& reason,
                                            absl::Duration backoff) {
  bool done = false;
  absl::Status s = primary_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    done = tx.exec_params(
                 "UPDATE report_jobs SET worker_id = NULL, error = $3, update_time = now(), "
                 "lease_until = now() + $4 * interval '1 millisecond' "
                 "WHERE id = $1::uuid AND worker_id = $2 AND state = 'RUNNING'",
                 job.id, options_.worker_id, reason, Millis(backoff))
               .affected_rows() > 0;
  });
  if (!s.ok()) {
    return s;
  }
  return done;
}

absl::Status PgJobStore::Release(const ReportJob& job) {
  return primary_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    tx.exec_params(
        "UPDATE report_jobs SET worker_id = NULL, lease_until = now(), update_time = now(), "
        "attempts = GREATEST(attempts - 1, 0) "
        "WHERE id = $1::uuid AND worker_id = $2 AND state = 'RUNNING'",
        job.id, options_.worker_id);
  });
}

absl::StatusOr<std::vector<std::string>> PgJobStore::Expired(int limit) {
  std::vector<std::string> ids;
  absl::Status s = primary_->Run([&](pqxx::connection& c) {
    ids.clear();
    pqxx::nontransaction tx(c);
    pqxx::result r = tx.exec_params(
        "SELECT id::text FROM report_jobs WHERE state IN ('PENDING', 'RUNNING') AND "
        "lease_until < now() ORDER BY lease_until LIMIT $1",
        limit);
    for (const pqxx::row& row : r) {
      ids.push_back(row[0].as<std::string>());
    }
  });
  if (!s.ok()) {
    return s;
  }
  return ids;
}

absl::Status PgJobStore::DeadLetter(const kafka::Message& message, const std::string& reason) {
  return primary_->Transact([&](pqxx::work& tx) {
    outbox::OutboxMessage dead;
    dead.topic = options_.dead_letter_topic;
    dead.key = message.key;
    dead.payload = message.value;
    // Deterministic, so that a redelivered message is dead-lettered once.
    dead.event_id =
        absl::StrCat("dead-letter/", message.topic, "/", message.partition, "/", message.offset);
    dead.headers = {{"x-kurt-error", reason}, {"x-kurt-original-topic", message.topic}};
    if (auto id = message.Header(outbox::kEventIdHeader)) {
      dead.headers.emplace_back("x-kurt-original-event-id", std::string(*id));
    }
    outbox::Enqueue(tx, kOutboxTable, dead);
  });
}

}  // namespace kurt::report_worker
