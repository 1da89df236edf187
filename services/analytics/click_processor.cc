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
                               metrics::Registry* registry, int parallelism)
    : group_(std::move(group)),
      store_(store),
      dead_letters_(dead_letters),
      parallelism_(static_cast<size_t>(std::max(1, parallelism))),
      dimensions_(parallelism_) {
  auto& clicks = registry->AddCounter(
      "kurt_analytics_clicks_total",
      "Click events consumed, by outcome (stored; duplicate: already counted; dead_lettered)",
      {"outcome"});
  stored_ = &clicks.WithLabels({"stored"});
  duplicates_ = &clicks.WithLabels({"duplicate"});
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

absl::Status ClickProcessor::HandleInTransaction(const std::vector<const kafka::Message*>& batch,
                                                 ClickTransaction& tx, DimensionCache* dimensions,
                                                 BatchOutcome* outcome) {
  *outcome = BatchOutcome();
  absl::StatusOr<OffsetMap> stored = tx.LockOffsets(group_, PartitionsOf(batch));
  if (!stored.ok()) {
    return stored.status();
  }

  // A chunk is taken once it reaches kCopyChunkBytes, so the last row added may pass it.
  BatchBuilder builder(dimensions, kCopyChunkBytes + size_t{64} * 1024);
  events::v1::ClickEvent event;
  Click click;
  OffsetMap next;
  // Clicks whose code is not confirmed yet: looked up together once the first COPY is done.
  std::vector<const kafka::Message*> unconfirmed;
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
  for (const kafka::Message* message : batch) {
    const kafka::Message& m = *message;
    if (!fence.IsNew(m)) {
      ++outcome->duplicates;
      continue;
    }
    if (run == nullptr || run->partition != m.partition || run->topic != m.topic) {
      run = &m;
      run_next = &next[{m.topic, m.partition}];
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
    if (!Known(event.code())) {
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
    for (DeadLetter& d : outcomes[u].dead_letters) {
      outcome.dead_letters.push_back(std::move(d));
    }
  }
  stored_->Increment(static_cast<double>(outcome.stored));
  duplicates_->Increment(static_cast<double>(outcome.duplicates));
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
  KURT_LOG(kDebug, "batch stored", {"messages", batch.size()}, {"rows", outcome.stored},
           {"seconds", absl::ToDoubleSeconds(absl::Now() - start)});
  return absl::OkStatus();
}

}  // namespace kurt::analytics
