#include "services/analytics/click_processor.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "kurt/events/v1/click.pb.h"
#include "platform/core/log.h"

namespace kurt::analytics {
namespace {

constexpr size_t kMaxKnownCodes = 1000000;
// COPY data is handed to the database in chunks of about this size while decoding goes on (each
// chunk sorted for the index: the larger, the more of a link's rows sit together).
constexpr size_t kCopyChunkBytes = size_t{4} * 1024 * 1024;
// Dead letters logged one by one per batch; the rest are counted.
constexpr size_t kLoggedDeadLetters = 10;

}  // namespace

ClickProcessor::ClickProcessor(std::string group, ClickStore* store, DeadLetterSink* dead_letters,
                               metrics::Registry* registry, int parallelism,
                               EventWindowOptions windows, const user_agent::UapRegexes* spiders)
    : group_(std::move(group)),
      store_(store),
      dead_letters_(dead_letters),
      parallelism_(static_cast<size_t>(std::max(1, parallelism))),
      window_options_(windows) {
  dimensions_.reserve(parallelism_);
  for (size_t i = 0; i < parallelism_; ++i) {
    dimensions_.emplace_back(20000, spiders);
  }
  auto& clicks = registry->AddCounter(
      "kurt_analytics_clicks_total",
      "Click events consumed, by outcome (stored; duplicate: an offset already counted; "
      "repeated: a click already counted, published again; dead_lettered)",
      {"outcome"});
  stored_ = &clicks.WithLabels({"stored"});
  duplicates_ = &clicks.WithLabels({"duplicate"});
  repeated_ = &clicks.WithLabels({"repeated"});
  dead_lettered_ =
      &registry->AddCounter("kurt_analytics_dead_letters_total",
                            "Click events sent to the dead-letter topic, by reason", {"reason"});
  auto& batches =
      registry->AddCounter("kurt_analytics_batches_total",
                           "Batches handled, by result (a failed one is retried)", {"result"});
  batches_ok_ = &batches.WithLabels({"ok"});
  batches_failed_ = &batches.WithLabels({"error"});
  batch_seconds_ = &registry
                        ->AddHistogram("kurt_analytics_batch_seconds",
                                       "Time to handle one batch, transaction included")
                        .Get();
}

bool ClickProcessor::Known(absl::string_view code) const {
  std::shared_lock<std::shared_mutex> lock(known_mu_);
  return known_codes_.contains(code);
}

void ClickProcessor::Confirm(std::vector<std::string> codes) {
  std::unique_lock<std::shared_mutex> lock(known_mu_);
  if (known_codes_.size() + codes.size() > kMaxKnownCodes) {
    known_codes_.clear();
  }
  for (std::string& code : codes) {
    known_codes_.insert(std::move(code));
  }
}

absl::StatusOr<std::map<PartitionKey, EventWindow*>> ClickProcessor::Windows(
    const std::vector<const kafka::Message*>& batch, const OffsetMap& stored,
    ClickTransaction& tx) {
  // The earliest broker time of each partition's messages: where a window being seeded starts.
  std::map<PartitionKey, int64_t> first_ms;
  const kafka::Message* run = nullptr;
  int64_t* run_first = nullptr;
  for (const kafka::Message* m : batch) {
    if (run == nullptr || run->partition != m->partition || run->topic != m->topic) {
      run = m;
      run_first = &first_ms.try_emplace({m->topic, m->partition}, m->timestamp_ms).first->second;
    }
    *run_first = std::min(*run_first, m->timestamp_ms);
  }
  std::map<PartitionKey, EventWindow*> out;
  for (const auto& [partition, ms] : first_ms) {
    EventWindow* window = nullptr;
    {
      std::lock_guard<std::mutex> lock(windows_mu_);
      window = &windows_.try_emplace(partition, window_options_).first->second;
    }
    auto it = stored.find(partition);
    const int64_t offset = it == stored.end() ? 0 : it->second;
    if (!window->Fresh(offset)) {
      const absl::Time floor =
          (ms > 0 ? absl::FromUnixMillis(ms) : absl::Now()) - window_options_.span;
      absl::StatusOr<std::vector<ClickKey>> clicks = tx.ClicksSince(partition.second, floor);
      if (!clicks.ok()) {
        return clicks.status();
      }
      window->Seed(floor, *clicks, offset);
      KURT_LOG(kInfo, "click window seeded", {"partition", partition.second},
               {"clicks", clicks->size()});
    }
    out[partition] = window;
  }
  return out;
}

void ClickProcessor::CommitWindows(const BatchOutcome& outcome) {
  static const std::vector<std::pair<EventWindow::Key, absl::Time>> kNone;
  for (const auto& [partition, next] : outcome.next) {
    EventWindow* window = nullptr;
    {
      std::lock_guard<std::mutex> lock(windows_mu_);
      window = &windows_.try_emplace(partition, window_options_).first->second;
    }
    auto it = outcome.stored_keys.find(partition);
    window->Commit(it == outcome.stored_keys.end() ? kNone : it->second, next);
  }
}

absl::Status ClickProcessor::HandleInTransaction(const std::vector<const kafka::Message*>& batch,
                                                 ClickTransaction& tx, DimensionCache* dimensions,
                                                 BatchOutcome* outcome) {
  *outcome = BatchOutcome();
  absl::StatusOr<OffsetMap> stored = tx.LockOffsets(group_, PartitionsOf(batch));
  if (!stored.ok()) {
    return stored.status();
  }

  absl::StatusOr<std::map<PartitionKey, EventWindow*>> windows = Windows(batch, *stored, tx);
  if (!windows.ok()) {
    return windows.status();
  }
  // The clicks this transaction takes (and, once looked up, old ones stored already).
  absl::flat_hash_set<EventWindow::Key> taken;
  // Clicks older than their window: looked up in the database together.
  std::vector<const kafka::Message*> late;

  // A chunk is taken once it reaches kCopyChunkBytes, so the last row added may pass it.
  BatchBuilder builder(dimensions, kCopyChunkBytes + size_t{64} * 1024);
  events::v1::ClickEvent event;
  Click click;
  OffsetMap next;
  // Clicks whose code is not confirmed yet: looked up together once the first COPY is done.
  std::vector<const kafka::Message*> unconfirmed;
  // Codes this transaction found confirmed: asked of the shared set once each, not once per click
  // (its lock, shared by the writer threads, cost about a twentieth of the consumer's CPU).
  absl::flat_hash_set<std::string> known_here;
  auto known = [&](const std::string& code) {
    if (known_here.contains(code)) {
      return true;
    }
    if (!Known(code)) {
      return false;
    }
    known_here.insert(code);
    return true;
  };
  auto flush = [&](size_t at_least) -> absl::Status {
    if (builder.PendingCopyBytes() < std::max<size_t>(at_least, 1)) {
      return absl::OkStatus();
    }
    return tx.CopyClicks(builder.TakeCopyData());
  };
  OffsetFence fence(*stored);
  // The next offset of the partition of the current run of messages (entered once it has a
  // message that is new: a partition with none keeps its stored offset).
  const kafka::Message* run = nullptr;
  int64_t* run_next = nullptr;
  EventWindow* run_window = nullptr;
  std::vector<std::pair<EventWindow::Key, absl::Time>>* run_stored = nullptr;
  for (const kafka::Message* message : batch) {
    const kafka::Message& m = *message;
    if (!fence.IsNew(m)) {
      ++outcome->duplicates;
      continue;
    }
    if (run == nullptr || run->partition != m.partition || run->topic != m.topic) {
      run = &m;
      run_next = &next[{m.topic, m.partition}];
      run_window = windows->at({m.topic, m.partition});
      run_stored = &outcome->stored_keys[{m.topic, m.partition}];
    }
    // Offsets only grow within a partition: one below what this transaction already took is a
    // second copy of a message in the batch (fetched again after its partition came back to this
    // consumer while the batch filled), not a new one.
    if (m.offset < *run_next) {
      ++outcome->duplicates;
      continue;
    }
    *run_next = m.offset + 1;
    if (auto rejected = DecodeClick(m, &event, &click)) {
      outcome->dead_letters.push_back({&m, rejected->reason, std::move(rejected->detail)});
      continue;
    }
    const absl::Time time = absl::FromUnixMicros(click.time_micros);
    if (!run_window->Covers(time)) {
      late.push_back(&m);
      continue;
    }
    const EventWindow::Key key = EventWindow::KeyOf(event.code(), event.event_id());
    if (run_window->Contains(key) || !taken.insert(key).second) {
      ++outcome->repeated;
      continue;
    }
    run_stored->emplace_back(key, time);
    if (!known(event.code())) {
      unconfirmed.push_back(&m);
      continue;
    }
    builder.Add(event, click, m.partition, m.offset);
    if (absl::Status s = flush(kCopyChunkBytes); !s.ok()) {
      return s;
    }
  }
  if (absl::Status s = flush(0); !s.ok()) {
    return s;
  }

  if (!late.empty()) {
    std::vector<ClickKey> keys;
    keys.reserve(late.size());
    for (const kafka::Message* m : late) {
      DecodeClick(*m, &event, &click);
      keys.push_back(
          ClickKey{event.code(), event.event_id(), absl::FromUnixMicros(click.time_micros)});
    }
    absl::StatusOr<std::vector<ClickKey>> found = tx.StoredClicks(keys, window_options_.margin);
    if (!found.ok()) {
      return found.status();
    }
    for (const ClickKey& c : *found) {
      taken.insert(EventWindow::KeyOf(c.code, c.event_id));
    }
    for (size_t i = 0; i < late.size(); ++i) {
      const kafka::Message* m = late[i];
      const EventWindow::Key key = EventWindow::KeyOf(keys[i].code, keys[i].event_id);
      if (!taken.insert(key).second) {
        ++outcome->repeated;
        continue;
      }
      outcome->stored_keys[{m->topic, m->partition}].emplace_back(key, keys[i].time);
      if (!known(keys[i].code)) {
        unconfirmed.push_back(m);
        continue;
      }
      DecodeClick(*m, &event, &click);
      builder.Add(event, click, m->partition, m->offset);
      if (absl::Status s = flush(kCopyChunkBytes); !s.ok()) {
        return s;
      }
    }
    if (absl::Status s = flush(0); !s.ok()) {
      return s;
    }
  }

  if (!unconfirmed.empty()) {
    std::vector<std::string> codes;
    for (const kafka::Message* m : unconfirmed) {
      DecodeClick(*m, &event, &click);
      codes.push_back(event.code());
    }
    std::sort(codes.begin(), codes.end());
    codes.erase(std::unique(codes.begin(), codes.end()), codes.end());
    absl::StatusOr<std::vector<std::string>> existing = tx.ExistingCodes(codes);
    if (!existing.ok()) {
      return existing.status();
    }
    const absl::flat_hash_set<std::string> found(existing->begin(), existing->end());
    Confirm(std::move(*existing));
    for (const kafka::Message* m : unconfirmed) {
      DecodeClick(*m, &event, &click);
      if (!found.contains(event.code())) {
        outcome->dead_letters.push_back({m, RejectReason::kUnknownCode,
                                         absl::StrCat("no link with code '", event.code(), "'")});
        continue;
      }
      builder.Add(event, click, m->partition, m->offset);
      if (absl::Status s = flush(kCopyChunkBytes); !s.ok()) {
        return s;
      }
    }
    if (absl::Status s = flush(0); !s.ok()) {
      return s;
    }
  }
  outcome->stored = builder.rows();

  // In offset order, acknowledged by the broker before the offsets that skip them are committed.
  std::sort(outcome->dead_letters.begin(), outcome->dead_letters.end(),
            [](const DeadLetter& a, const DeadLetter& b) {
              return std::tie(a.message->topic, a.message->partition, a.message->offset) <
                     std::tie(b.message->topic, b.message->partition, b.message->offset);
            });
  if (absl::Status s = dead_letters_->Publish(outcome->dead_letters); !s.ok()) {
    return s;
  }
  if (builder.rows() > 0) {
    if (absl::Status s = tx.AddAggregates(builder.TakeAggregates()); !s.ok()) {
      return s;
    }
  }
  outcome->next = next;
  return tx.SetOffsets(group_, next);
}

absl::Status ClickProcessor::Handle(const std::vector<kafka::Message>& batch) {
  const absl::Time start = absl::Now();
  // Units of work: the whole batch, or one per partition when transactions run side by side.
  std::vector<std::vector<const kafka::Message*>> units;
  if (parallelism_ <= 1) {
    units.emplace_back();
    for (const kafka::Message& m : batch) {
      units.back().push_back(&m);
    }
  } else {
    std::map<std::pair<absl::string_view, int32_t>, size_t> unit_of;
    const kafka::Message* run = nullptr;  // first message of the current run of a partition
    size_t unit = 0;
    for (const kafka::Message& m : batch) {
      if (run == nullptr || run->partition != m.partition || run->topic != m.topic) {
        run = &m;
        auto [it, added] = unit_of.try_emplace({m.topic, m.partition}, units.size());
        if (added) {
          units.emplace_back();
        }
        unit = it->second;
      }
      units[unit].push_back(&m);
    }
  }
  std::vector<BatchOutcome> outcomes(units.size());
  std::vector<absl::Status> results(units.size());
  const size_t workers = std::min(units.size(), parallelism_);
  // Largest first, each to whichever worker is free: partitions of hot links are much larger than
  // the rest, and the batch is done only when its largest transaction is.
  std::vector<size_t> order(units.size());
  for (size_t u = 0; u < order.size(); ++u) {
    order[u] = u;
  }
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return units[a].size() > units[b].size(); });
  std::atomic<size_t> next_unit{0};
  auto work = [&](size_t worker) {
    for (size_t i; (i = next_unit.fetch_add(1)) < order.size();) {
      const size_t u = order[i];
      results[u] = store_->InTransaction([&](ClickTransaction& tx) {
        return HandleInTransaction(units[u], tx, &dimensions_[worker], &outcomes[u]);
      });
      if (results[u].ok()) {
        CommitWindows(outcomes[u]);
      }
    }
  };
  std::vector<std::thread> threads;
  for (size_t w = 1; w < workers; ++w) {
    threads.emplace_back(work, w);
  }
  work(0);
  for (std::thread& t : threads) {
    t.join();
  }

  BatchOutcome outcome;
  absl::Status s;
  for (size_t u = 0; u < units.size(); ++u) {
    if (!results[u].ok()) {
      if (s.ok()) {
        s = results[u];
      }
      continue;
    }
    // Committed: counted even when another partition's transaction failed.
    outcome.stored += outcomes[u].stored;
    outcome.duplicates += outcomes[u].duplicates;
    outcome.repeated += outcomes[u].repeated;
    for (DeadLetter& d : outcomes[u].dead_letters) {
      outcome.dead_letters.push_back(std::move(d));
    }
  }
  stored_->Increment(static_cast<double>(outcome.stored));
  duplicates_->Increment(static_cast<double>(outcome.duplicates));
  repeated_->Increment(static_cast<double>(outcome.repeated));
  for (size_t i = 0; i < outcome.dead_letters.size(); ++i) {
    const DeadLetter& d = outcome.dead_letters[i];
    dead_lettered_->WithLabels({std::string(RejectReasonName(d.reason))}).Increment();
    if (i < kLoggedDeadLetters) {
      KURT_LOG(kWarn, "click event dead-lettered", {"reason", RejectReasonName(d.reason)},
               {"detail", d.detail}, {"partition", d.message->partition},
               {"offset", d.message->offset});
    }
  }
  if (outcome.dead_letters.size() > kLoggedDeadLetters) {
    KURT_LOG(kWarn, "more click events dead-lettered in the batch",
             {"count", outcome.dead_letters.size() - kLoggedDeadLetters});
  }
  if (!s.ok()) {
    batches_failed_->Increment();
    return s;
  }
  batches_ok_->Increment();
  batch_seconds_->ObserveDuration(absl::Now() - start);
  if (outcome.duplicates > 0) {
    KURT_LOG(kInfo, "skipped click events already counted", {"count", outcome.duplicates});
  }
  if (outcome.repeated > 0) {
    KURT_LOG(kInfo, "skipped second events of clicks already counted", {"count", outcome.repeated});
  }
  KURT_LOG(kDebug, "batch stored", {"messages", batch.size()}, {"rows", outcome.stored},
           {"seconds", absl::ToDoubleSeconds(absl::Now() - start)});
  return absl::OkStatus();
}

}  // namespace kurt::analytics
