#include "platform/outbox/outbox.h"

#include <cstdlib>
#include <map>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "platform/core/log.h"

namespace kurt::outbox {

bool IsValidTableName(absl::string_view name) {
  if (name.empty() || name.size() > 63) {
    return false;
  }
  if (!(absl::ascii_islower(name[0]) || name[0] == '_')) {
    return false;
  }
  for (char c : name) {
    if (!(absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '_')) {
      return false;
    }
  }
  return true;
}

namespace {

void CheckTable(absl::string_view table) {
  if (!IsValidTableName(table)) {
    KURT_LOG(kError, "invalid outbox table name", {"table", table});
    std::abort();
  }
}

}  // namespace

bool Enqueue(pqxx::work& tx, absl::string_view table, const OutboxMessage& message) {
  CheckTable(table);
  std::vector<std::string> keys, values;
  for (const auto& [k, v] : message.headers) {
    keys.push_back(tx.quote(k));
    values.push_back(tx.quote(v));
  }
  std::string headers =
      keys.empty() ? "'{}'::jsonb"
                   : absl::StrCat("jsonb_object(ARRAY[", absl::StrJoin(keys, ","),
                                  "]::text[], ARRAY[", absl::StrJoin(values, ","), "]::text[])");
  pqxx::binarystring payload(message.payload.data(), message.payload.size());
  pqxx::result r = tx.exec_params(
      absl::StrCat("INSERT INTO ", table,
                   " (topic, message_key, payload, event_id, headers) VALUES ($1, $2, $3, $4, ",
                   headers, ") ON CONFLICT (event_id) DO NOTHING RETURNING id"),
      message.topic, message.key, payload, message.event_id);
  if (r.empty()) {
    return false;
  }
  tx.exec(absl::StrCat("NOTIFY ", table));
  return true;
}

absl::Status KafkaPublisher::Publish(const OutboxMessage& message,
                                     kafka::DeliveryCallback on_delivery) {
  kafka::Headers headers;
  headers.reserve(message.headers.size() + 1);
  headers.emplace_back(std::string(kEventIdHeader), message.event_id);
  for (const auto& h : message.headers) {
    if (h.first != kEventIdHeader) {
      headers.push_back(h);
    }
  }
  return producer_->Produce(message.topic, message.key, message.payload, headers,
                            std::move(on_delivery));
}

OutboxRelay::OutboxRelay(RelayOptions options, pg::PgPool* pool, Publisher* publisher,
                         metrics::Registry* registry)
    : options_(std::move(options)), pool_(pool), publisher_(publisher) {
  CheckTable(options_.table);
  published_ = &registry
                    ->AddCounter("kurt_outbox_published_total", "Outbox rows published and marked",
                                 {"table"})
                    .WithLabels({options_.table});
  failures_ =
      &registry
           ->AddCounter("kurt_outbox_delivery_failures_total",
                        "Outbox messages the broker did not acknowledge (retried)", {"table"})
           .WithLabels({options_.table});
  errors_ = &registry
                 ->AddCounter("kurt_outbox_relay_errors_total",
                              "Relay rounds that failed (database or producer errors)", {"table"})
                 .WithLabels({options_.table});
  backlog_ = &registry
                  ->AddGauge("kurt_outbox_unpublished_rows",
                             "Unpublished rows seen by the last cleanup", {"table"})
                  .WithLabels({options_.table});
  if (!options_.listen_url.empty()) {
    pg::ListenerOptions listen;
    listen.url = options_.listen_url;
    listen.channels = {options_.table};
    listen.name = options_.table;
    // A NOTIFY, or a (re)connection after which rows may be waiting that no NOTIFY announced.
    listener_ = std::make_unique<pg::Listener>(
        listen, [this](absl::string_view, absl::string_view) { Wake(); }, [this] { Wake(); },
        registry);
  }
}

OutboxRelay::~OutboxRelay() { Stop(); }

void OutboxRelay::Start() {
  stop_ = false;
  thread_ = std::thread([this] { Loop(); });
  if (listener_) {
    listener_->Start();
  }
}

void OutboxRelay::Stop() {
  if (listener_) {
    listener_->Stop();
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

void OutboxRelay::Wake() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    woken_ = true;
  }
  cv_.notify_all();
}

void OutboxRelay::WaitForWork(absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, absl::ToChronoMilliseconds(timeout), [&] { return woken_ || stop_.load(); });
  woken_ = false;
}

void OutboxRelay::Loop() {
  absl::Duration backoff = options_.poll_interval;
  absl::Time next_cleanup = absl::Now() + absl::Seconds(10);
  while (!stop_) {
    absl::StatusOr<int> n = RelayOnce();
    if (!n.ok()) {
      errors_->Increment();
      KURT_LOG(kWarn, "outbox relay round failed", {"table", options_.table},
               {"error", n.status().ToString()});
      WaitForWork(backoff);
      backoff = std::min(backoff * 2, absl::Seconds(5));
      continue;
    }
    backoff = options_.poll_interval;
    if (absl::Now() >= next_cleanup) {
      next_cleanup = absl::Now() + absl::Minutes(1);
      absl::StatusOr<int64_t> deleted = DeletePublished();
      if (!deleted.ok()) {
        KURT_LOG(kWarn, "outbox cleanup failed", {"error", deleted.status().ToString()});
      }
    }
    if (*n < options_.batch_size) {
      WaitForWork(options_.poll_interval);
    }
  }
}

namespace {

// Acknowledgements of one round, filled by the producer's delivery thread. Shared with the
// callbacks, which may outlive the round when it gives up waiting.
struct Acks {
  std::mutex mu;
  std::condition_variable cv;
  int outstanding = 0;
  std::vector<bool> ok;
};

struct Row {
  int64_t id = 0;
  OutboxMessage message;
};

}  // namespace

absl::StatusOr<int> OutboxRelay::RelayOnce() {
  int published = 0;
  int failed = 0;
  absl::Status status = pool_->Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    pool_->LimitStatements(tx);
    // Rows other relays hold are skipped, not waited for; each row's headers come as extra
    // result rows (the LEFT JOIN keeps rows without any).
    pqxx::result r = tx.exec(absl::StrCat(
        "SELECT o.id, o.topic, o.message_key, o.payload, o.event_id, h.key, h.value FROM "
        "(SELECT id, topic, message_key, payload, event_id, headers FROM ",
        options_.table, " WHERE published_time IS NULL ORDER BY id LIMIT ", options_.batch_size,
        " FOR UPDATE SKIP LOCKED) o LEFT JOIN LATERAL jsonb_each_text(o.headers) h ON true "
        "ORDER BY o.id"));
    std::vector<Row> rows;
    for (const pqxx::row& row : r) {
      int64_t id = row[0].as<int64_t>();
      if (rows.empty() || rows.back().id != id) {
        Row next;
        next.id = id;
        next.message.topic = row[1].as<std::string>();
        next.message.key = row[2].as<std::string>();
        pqxx::binarystring payload(row[3]);
        next.message.payload = payload.str();
        next.message.event_id = row[4].as<std::string>();
        rows.push_back(std::move(next));
      }
      if (!row[5].is_null()) {
        rows.back().message.headers.emplace_back(row[5].as<std::string>(),
                                                 row[6].as<std::string>());
      }
    }
    if (rows.empty()) {
      return;
    }

    auto acks = std::make_shared<Acks>();
    acks->ok.assign(rows.size(), false);
    for (size_t i = 0; i < rows.size(); ++i) {
      {
        std::lock_guard<std::mutex> lock(acks->mu);
        ++acks->outstanding;
      }
      absl::Status s = publisher_->Publish(rows[i].message, [acks, i](const absl::Status& st) {
        std::lock_guard<std::mutex> lock(acks->mu);
        acks->ok[i] = st.ok();
        --acks->outstanding;
        acks->cv.notify_all();
      });
      if (!s.ok()) {
        // Not queued: no callback will come. The rows from here on are left for the next round.
        std::lock_guard<std::mutex> lock(acks->mu);
        --acks->outstanding;
        KURT_LOG(kWarn, "outbox publish not queued", {"error", s.ToString()});
        break;
      }
    }
    std::vector<int64_t> done;
    {
      std::unique_lock<std::mutex> lock(acks->mu);
      acks->cv.wait_for(lock, absl::ToChronoMilliseconds(options_.ack_timeout),
                        [&] { return acks->outstanding == 0; });
      for (size_t i = 0; i < rows.size(); ++i) {
        if (acks->ok[i]) {
          done.push_back(rows[i].id);
        } else {
          ++failed;
        }
      }
    }
    if (!done.empty()) {
      tx.exec(absl::StrCat("UPDATE ", options_.table, " SET published_time = now() WHERE id IN (",
                           absl::StrJoin(done, ","), ")"));
    }
    tx.commit();
    published = static_cast<int>(done.size());
  });
  if (published > 0) {
    published_->Increment(published);
  }
  if (failed > 0) {
    failures_->Increment(failed);
  }
  if (!status.ok()) {
    return status;
  }
  if (failed > 0 && published == 0) {
    return absl::UnavailableError(
        absl::StrCat(failed, " outbox messages were not acknowledged by the broker"));
  }
  return published;
}

absl::StatusOr<int64_t> OutboxRelay::DeletePublished() {
  int64_t deleted = 0;
  absl::Status s = pool_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    deleted = static_cast<int64_t>(
        tx.exec(absl::StrCat("DELETE FROM ", options_.table,
                             " WHERE published_time < now() - interval '",
                             absl::ToInt64Seconds(options_.retention), " seconds'"))
            .affected_rows());
    backlog_->Set(tx.exec1(absl::StrCat("SELECT count(*) FROM ", options_.table,
                                        " WHERE published_time IS NULL"))[0]
                      .as<double>());
  });
  if (!s.ok()) {
    return s;
  }
  return deleted;
}

}  // namespace kurt::outbox
