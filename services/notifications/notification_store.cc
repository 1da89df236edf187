#include "services/notifications/notification_store.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "kurt/reports/v1/reports.pb.h"
#include "platform/grpc/timestamps.h"

namespace kurt::notifications {
namespace {

using platform::SetTimestamp;

constexpr const char* kColumns =
    "n.id, n.account_id, n.event_id, n.type, n.message, n.report_id, n.report_kind, "
    "n.report_state, n.row_count, n.size_bytes, n.error, "
    "(extract(epoch from n.create_time) * 1000000)::bigint, "
    "(extract(epoch from n.ack_time) * 1000000)::bigint";

NotificationRecord FromRow(const pqxx::row& r, int at = 0) {
  NotificationRecord n;
  n.id = r[at + 0].as<int64_t>();
  n.account_id = r[at + 1].as<std::string>();
  n.event_id = r[at + 2].as<std::string>();
  n.type = r[at + 3].as<std::string>();
  n.message = r[at + 4].as<std::string>();
  n.report_id = r[at + 5].as<std::string>();
  n.report_kind = r[at + 6].as<std::string>();
  n.report_state = r[at + 7].as<std::string>();
  n.row_count = r[at + 8].as<int64_t>();
  n.size_bytes = r[at + 9].as<int64_t>();
  n.error = r[at + 10].as<std::string>();
  n.create_time = absl::FromUnixMicros(r[at + 11].as<int64_t>());
  if (!r[at + 12].is_null()) {
    n.ack_time = absl::FromUnixMicros(r[at + 12].as<int64_t>());
  }
  return n;
}

}  // namespace

void ToProto(const NotificationRecord& r, v1::Notification* out) {
  out->set_id(absl::StrCat(r.id));
  out->set_type(r.type);
  out->set_message(r.message);
  v1::ReportNotice* report = out->mutable_report();
  report->set_report_id(r.report_id);
  reports::v1::ReportKind kind;
  if (reports::v1::ReportKind_Parse(r.report_kind, &kind)) {
    report->set_kind(kind);
  }
  reports::v1::ReportState state;
  if (reports::v1::ReportState_Parse(r.report_state, &state)) {
    report->set_state(state);
  }
  report->set_row_count(r.row_count);
  report->set_size_bytes(r.size_bytes);
  if (r.report_state == "SUCCEEDED") {
    report->set_content_path(absl::StrCat("/v1/reports/", r.report_id, "/content"));
  }
  report->set_error(r.error);
  SetTimestamp(r.create_time, out->mutable_create_time());
  if (r.ack_time) {
    SetTimestamp(*r.ack_time, out->mutable_ack_time());
  }
}

std::string MessageFor(const events::v1::ReportCompleted& e) {
  const std::string what =
      e.kind() == reports::v1::SUMMARY_JSON ? "JSON summary" : "CSV report of clicks";
  if (e.state() == reports::v1::SUCCEEDED) {
    return absl::StrCat("Your ", what, " is ready (", e.row_count(), " clicks).");
  }
  return absl::StrCat("Your ", what, " failed: ", e.error());
}

PgNotificationStore::PgNotificationStore(pg::PgPool* primary) : primary_(primary) {}

absl::StatusOr<int> PgNotificationStore::StoreCompleted(
    const std::vector<events::v1::ReportCompleted>& events) {
  // By account (stable: one account's events keep their Kafka order), so that concurrent
  // transactions take the per-account locks in the same order.
  std::vector<const events::v1::ReportCompleted*> sorted;
  sorted.reserve(events.size());
  for (const auto& e : events) {
    sorted.push_back(&e);
  }
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](auto* a, auto* b) { return a->account_id() < b->account_id(); });
  int inserted = 0;
  absl::Status s = primary_->Transact([&](pqxx::work& tx) {
    inserted = 0;
    std::set<std::string> locked, notify;
    for (const events::v1::ReportCompleted* e : sorted) {
      if (locked.insert(e->account_id()).second) {
        // Ids are drawn under this lock, so an account's ids commit in increasing order and a
        // stream that resumes after id N misses nothing.
        tx.exec_params("SELECT pg_advisory_xact_lock(hashtext('kurt.notifications:' || $1))",
                       e->account_id());
      }
      pqxx::result r = tx.exec_params(
          "INSERT INTO notifications (account_id, event_id, type, message, report_id, "
          "report_kind, report_state, row_count, size_bytes, error) VALUES "
          "($1, $2, 'report.completed', $3, $4, $5, $6, $7, $8, $9) "
          "ON CONFLICT (event_id) DO NOTHING RETURNING id",
          e->account_id(), e->event_id(), MessageFor(*e), e->report_id(),
          reports::v1::ReportKind_Name(e->kind()), reports::v1::ReportState_Name(e->state()),
          e->row_count(), e->size_bytes(), e->error());
      if (r.empty()) {
        continue;
      }
      ++inserted;
      notify.insert(e->account_id());
      tx.exec_params(
          "INSERT INTO webhook_deliveries (notification_id, account_id, url) "
          "SELECT $1, account_id, url FROM webhooks WHERE account_id = $2",
          r[0][0].as<int64_t>(), e->account_id());
    }
    for (const std::string& account : notify) {
      tx.exec_params(absl::StrCat("SELECT pg_notify('", kNotifyChannel, "', $1)"), account);
    }
  });
  if (!s.ok()) {
    return s;
  }
  return inserted;
}

absl::StatusOr<std::vector<NotificationRecord>> PgNotificationStore::List(
    const std::string& account_id, int limit, int64_t before, bool unacked_only) {
  std::vector<NotificationRecord> out;
  absl::Status s = primary_->Run([&](pqxx::connection& c) {
    out.clear();
    pqxx::nontransaction tx(c);
    pqxx::result r = tx.exec_params(
        absl::StrCat("SELECT ", kColumns,
                     " FROM notifications n WHERE n.account_id = $1 AND ($2 = 0 OR n.id < $2)",
                     unacked_only ? " AND n.ack_time IS NULL" : "", " ORDER BY n.id DESC LIMIT $3"),
        account_id, before, limit);
    for (const pqxx::row& row : r) {
      out.push_back(FromRow(row));
    }
  });
  if (!s.ok()) {
    return s;
  }
  return out;
}

absl::StatusOr<std::vector<NotificationRecord>> PgNotificationStore::After(
    const std::string& account_id, int64_t after, int limit) {
  std::vector<NotificationRecord> out;
  absl::Status s = primary_->Run([&](pqxx::connection& c) {
    out.clear();
    pqxx::nontransaction tx(c);
    pqxx::result r =
        tx.exec_params(absl::StrCat("SELECT ", kColumns,
                                    " FROM notifications n WHERE n.account_id = $1 AND n.id > $2 "
                                    "ORDER BY n.id LIMIT $3"),
                       account_id, after, limit);
    for (const pqxx::row& row : r) {
      out.push_back(FromRow(row));
    }
  });
  if (!s.ok()) {
    return s;
  }
  return out;
}

absl::StatusOr<int64_t> PgNotificationStore::LastId(const std::string& account_id) {
  int64_t id = 0;
  absl::Status s = primary_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    id = tx.exec_params1("SELECT COALESCE(max(id), 0) FROM notifications WHERE account_id = $1",
                         account_id)[0]
             .as<int64_t>();
  });
  if (!s.ok()) {
    return s;
  }
  return id;
}

absl::StatusOr<NotificationRecord> PgNotificationStore::Ack(const std::string& account_id,
                                                            int64_t id) {
  std::optional<NotificationRecord> out;
  absl::Status s = primary_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    pqxx::result r = tx.exec_params(
        absl::StrCat("UPDATE notifications n SET ack_time = COALESCE(n.ack_time, now()) "
                     "WHERE n.id = $1 AND n.account_id = $2 RETURNING ",
                     kColumns),
        id, account_id);
    if (!r.empty()) {
      out = FromRow(r[0]);
    }
  });
  if (!s.ok()) {
    return s;
  }
  if (!out) {
    return absl::NotFoundError(absl::StrCat("no notification with id '", id, "'"));
  }
  return *out;
}

absl::StatusOr<WebhookRecord> PgNotificationStore::SetWebhook(const std::string& account_id,
                                                              const std::string& url,
                                                              const std::string& secret) {
  WebhookRecord out;
  absl::Status s = primary_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    if (url.empty()) {
      tx.exec_params("DELETE FROM webhooks WHERE account_id = $1", account_id);
      out.update_time = absl::FromUnixMicros(
          tx.exec1("SELECT (extract(epoch from now()) * 1000000)::bigint")[0].as<int64_t>());
      return;
    }
    pqxx::row r = tx.exec_params1(
        "INSERT INTO webhooks (account_id, url, secret) VALUES ($1, $2, $3) "
        "ON CONFLICT (account_id) "
        "DO UPDATE SET url = EXCLUDED.url, secret = EXCLUDED.secret, update_time = now() "
        "RETURNING url, (extract(epoch from update_time) * 1000000)::bigint",
        account_id, url, secret);
    out.url = r[0].as<std::string>();
    out.update_time = absl::FromUnixMicros(r[1].as<int64_t>());
  });
  if (!s.ok()) {
    return s;
  }
  return out;
}

absl::StatusOr<std::optional<WebhookRecord>> PgNotificationStore::GetWebhook(
    const std::string& account_id) {
  std::optional<WebhookRecord> out;
  absl::Status s = primary_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    pqxx::result r = tx.exec_params(
        "SELECT url, (extract(epoch from update_time) * 1000000)::bigint FROM webhooks "
        "WHERE account_id = $1",
        account_id);
    if (!r.empty()) {
      out = WebhookRecord{r[0][0].as<std::string>(), absl::FromUnixMicros(r[0][1].as<int64_t>())};
    }
  });
  if (!s.ok()) {
    return s;
  }
  return out;
}

absl::StatusOr<std::vector<Delivery>> PgNotificationStore::ClaimDeliveries(
    int limit, absl::Duration lease, const std::vector<std::string>& busy) {
  std::vector<Delivery> out;
  absl::Status s = primary_->Transact([&](pqxx::work& tx) {
    out.clear();
    pqxx::result r = tx.exec_params(
        absl::StrCat("WITH oldest AS (SELECT DISTINCT ON (account_id) id FROM webhook_deliveries "
                     "WHERE state = 'PENDING' AND next_attempt_time <= now() "
                     "AND account_id <> ALL($3::text[]) "
                     "ORDER BY account_id, next_attempt_time, id), "
                     "due AS (SELECT d.id FROM webhook_deliveries d JOIN oldest USING (id) "
                     "WHERE d.state = 'PENDING' AND d.next_attempt_time <= now() "
                     "ORDER BY d.next_attempt_time LIMIT $1 FOR UPDATE OF d SKIP LOCKED), "
                     "claimed AS (UPDATE webhook_deliveries d SET attempts = d.attempts + 1, "
                     "next_attempt_time = now() + $2 * interval '1 millisecond' FROM due "
                     "WHERE d.id = due.id "
                     "RETURNING d.id, d.url, d.attempts, d.notification_id, d.account_id) "
                     "SELECT claimed.id, claimed.url, claimed.attempts, claimed.account_id, "
                     "COALESCE(w.secret, ''), ",
                     kColumns,
                     " FROM claimed JOIN notifications n ON n.id = claimed.notification_id "
                     "LEFT JOIN webhooks w ON w.account_id = claimed.account_id "
                     "ORDER BY claimed.id"),
        limit, absl::ToInt64Milliseconds(lease), pg::TextArrayLiteral(busy));
    for (const pqxx::row& row : r) {
      Delivery d;
      d.id = row[0].as<int64_t>();
      d.url = row[1].as<std::string>();
      d.attempts = row[2].as<int>();
      d.account_id = row[3].as<std::string>();
      d.secret = row[4].as<std::string>();
      d.notification = FromRow(row, 5);
      out.push_back(std::move(d));
    }
  });
  if (!s.ok()) {
    return s;
  }
  return out;
}

namespace {

// An UPDATE fenced by the claim's attempt found no row: another sender holds the delivery now.
absl::Status Fenced(const pqxx::result& r, int64_t delivery_id, int attempt) {
  if (r.affected_rows() == 0) {
    return absl::AbortedError(absl::StrCat("webhook delivery ", delivery_id,
                                           ": the lease of attempt ", attempt,
                                           " lapsed and another sender claimed it"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status PgNotificationStore::MarkDelivered(int64_t delivery_id, int attempt, int http_status) {
  absl::Status fenced;
  absl::Status s = primary_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    fenced = Fenced(
        tx.exec_params("UPDATE webhook_deliveries SET state = 'DELIVERED', delivered_time = now(), "
                       "last_status = $3, last_error = '' "
                       "WHERE id = $1 AND attempts = $2 AND state = 'PENDING'",
                       delivery_id, attempt, http_status),
        delivery_id, attempt);
  });
  return s.ok() ? fenced : s;
}

absl::Status PgNotificationStore::MarkAttemptFailed(int64_t delivery_id, int attempt,
                                                    int http_status, const std::string& error,
                                                    std::optional<absl::Duration> retry_in) {
  absl::Status fenced;
  absl::Status s = primary_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    if (retry_in) {
      fenced =
          Fenced(tx.exec_params("UPDATE webhook_deliveries SET last_status = $3, last_error = $4, "
                                "next_attempt_time = now() + $5 * interval '1 millisecond' "
                                "WHERE id = $1 AND attempts = $2 AND state = 'PENDING'",
                                delivery_id, attempt, http_status, error,
                                absl::ToInt64Milliseconds(*retry_in)),
                 delivery_id, attempt);
    } else {
      fenced = Fenced(
          tx.exec_params("UPDATE webhook_deliveries SET state = 'FAILED', last_status = $3, "
                         "last_error = $4 WHERE id = $1 AND attempts = $2 AND state = 'PENDING'",
                         delivery_id, attempt, http_status, error),
          delivery_id, attempt);
    }
  });
  return s.ok() ? fenced : s;
}

}  // namespace kurt::notifications
