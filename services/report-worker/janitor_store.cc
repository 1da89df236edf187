#include "services/report-worker/janitor_store.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "services/reports/report_job.h"

namespace kurt::report_worker {

PgJanitorStore::PgJanitorStore(pg::PgPool* primary) : primary_(primary) {}

absl::StatusOr<std::set<Attempt>> PgJanitorStore::LiveAttempts(
    const std::vector<Attempt>& attempts) {
  std::set<Attempt> live;
  std::vector<std::string> ids;
  for (const Attempt& a : attempts) {
    // Only UUIDs go into the array literal.
    if (reports::IsReportId(a.first)) {
      ids.push_back(a.first);
    }
  }
  if (ids.empty()) {
    return live;
  }
  absl::Status s = primary_->Run([&](pqxx::connection& c) {
    live.clear();
    pqxx::nontransaction tx(c);
    pqxx::result r = tx.exec_params(
        "SELECT id::text, attempts FROM report_jobs WHERE id = ANY($1::uuid[]) "
        "AND state = 'RUNNING'",
        absl::StrCat("{", absl::StrJoin(ids, ","), "}"));
    std::set<Attempt> running;
    for (const pqxx::row& row : r) {
      running.emplace(row[0].as<std::string>(), row[1].as<int>());
    }
    for (const Attempt& a : attempts) {
      if (running.count(a) > 0) {
        live.insert(a);
      }
    }
  });
  if (!s.ok()) {
    return s;
  }
  return live;
}

absl::StatusOr<int> PgJanitorStore::ExpireFinished(absl::Duration retention, int limit) {
  int expired = 0;
  absl::Status s = primary_->Transact([&](pqxx::work& tx) {
    // Another janitor's rows are skipped, not waited for: each report expires once.
    pqxx::result r = tx.exec_params(
        "UPDATE report_jobs SET state = 'EXPIRED', expire_time = now(), update_time = now() "
        "WHERE id IN (SELECT id FROM report_jobs WHERE state = 'SUCCEEDED' "
        "AND finish_time < now() - $1::bigint * interval '1 millisecond' "
        "ORDER BY finish_time LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING id",
        absl::ToInt64Milliseconds(retention), limit);
    expired = static_cast<int>(r.size());
  });
  if (!s.ok()) {
    return s;
  }
  return expired;
}

absl::StatusOr<std::vector<ExpiredArtifact>> PgJanitorStore::ArtifactsToDelete(int limit) {
  std::vector<ExpiredArtifact> out;
  absl::Status s = primary_->Run([&](pqxx::connection& c) {
    out.clear();
    pqxx::nontransaction tx(c);
    pqxx::result r = tx.exec_params(
        "SELECT id::text, artifact_key FROM report_jobs "
        "WHERE state = 'EXPIRED' AND artifact_key <> '' ORDER BY expire_time LIMIT $1",
        limit);
    for (const pqxx::row& row : r) {
      out.push_back({row[0].as<std::string>(), row[1].as<std::string>()});
    }
  });
  if (!s.ok()) {
    return s;
  }
  return out;
}

absl::StatusOr<bool> PgJanitorStore::ForgetArtifact(const ExpiredArtifact& artifact) {
  bool forgotten = false;
  absl::Status s = primary_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    pqxx::result r = tx.exec_params(
        "UPDATE report_jobs SET artifact_key = '', update_time = now() "
        "WHERE id = $1::uuid AND state = 'EXPIRED' AND artifact_key = $2",
        artifact.report_id, artifact.key);
    forgotten = r.affected_rows() > 0;
  });
  if (!s.ok()) {
    return s;
  }
  return forgotten;
}

}  // namespace kurt::report_worker
