#include "services/analytics/click_processor.h"

#include "absl/time/clock.h"
#include "kurt/events/v1/click.pb.h"
#include "platform/log.h"

namespace kurt::analytics {
namespace {

constexpr size_t kMaxKnownCodes = 1000000;

}  // namespace

ClickProcessor::ClickProcessor(std::string group, ClickStore* store,
                               DeadLetterSink* dead_letters, metrics::Registry* registry)
    : group_(std::move(group)), store_(store), dead_letters_(dead_letters) {
  auto& clicks = registry->AddCounter(
      "kurt_analytics_clicks_total",
      "Click events consumed, by outcome (stored; duplicate: already counted; dead_lettered)",
      {"outcome"});
  stored_ = &clicks.WithLabels({"stored"});
  duplicates_ = &clicks.WithLabels({"duplicate"});
  dead_lettered_ = &registry->AddCounter("kurt_analytics_dead_letters_total",
                                         "Click events sent to the dead-letter topic, by reason",
                                         {"reason"});
  auto& batches = registry->AddCounter("kurt_analytics_batches_total",
                                       "Batches handled, by result (a failed one is retried)",
                                       {"result"});
  batches_ok_ = &batches.WithLabels({"ok"});
  batches_failed_ = &batches.WithLabels({"error"});
  batch_seconds_ = &registry
                        ->AddHistogram("kurt_analytics_batch_seconds",
                                       "Time to handle one batch, transaction included")
                        .Get();
}

absl::Status ClickProcessor::Handle(const std::vector<kafka::Message>& batch) {
  const absl::Time start = absl::Now();
  // Decoding needs no lock: done before the transaction, which then stays short.
  std::vector<Decoded> decoded;
  decoded.reserve(batch.size());
  events::v1::ClickEvent scratch;
  for (const kafka::Message& m : batch) decoded.push_back(DecodeClick(m, &scratch));
  const std::vector<PartitionKey> partitions = PartitionsOf(batch);
  auto known = [this](const std::string& code) { return Known(code); };

  BatchPlan plan;
  absl::Status s = store_->InTransaction([&](ClickTransaction& tx) -> absl::Status {
    absl::StatusOr<OffsetMap> stored = tx.LockOffsets(group_, partitions);
    if (!stored.ok()) return stored.status();
    std::vector<std::string> unknown = CodesToCheck(batch, decoded, *stored, known);
    if (!unknown.empty()) {
      absl::StatusOr<std::vector<std::string>> existing = tx.ExistingCodes(unknown);
      if (!existing.ok()) return existing.status();
      if (known_codes_.size() + existing->size() > kMaxKnownCodes) known_codes_.clear();
      for (std::string& code : *existing) known_codes_.insert(std::move(code));
    }
    plan = PlanBatch(batch, decoded, *stored, known);
    // Acknowledged by the broker before the offsets that skip them are committed.
    if (absl::Status d = dead_letters_->Publish(plan.dead_letters); !d.ok()) return d;
    return tx.Write(group_, plan);
  });
  if (!s.ok()) {
    batches_failed_->Increment();
    return s;
  }
  batches_ok_->Increment();
  batch_seconds_->ObserveDuration(absl::Now() - start);
  stored_->Increment(static_cast<double>(plan.rows.size()));
  duplicates_->Increment(static_cast<double>(plan.duplicates));
  for (const DeadLetter& d : plan.dead_letters) {
    dead_lettered_->WithLabels({std::string(RejectReasonName(d.reason))}).Increment();
    KURT_LOG(kWarn, "click event dead-lettered", {"reason", RejectReasonName(d.reason)},
             {"detail", d.detail}, {"partition", d.message->partition},
             {"offset", d.message->offset});
  }
  if (plan.duplicates > 0) {
    KURT_LOG(kInfo, "skipped click events already counted", {"count", plan.duplicates});
  }
  KURT_LOG(kDebug, "batch stored", {"messages", batch.size()}, {"rows", plan.rows.size()},
           {"seconds", absl::ToDoubleSeconds(absl::Now() - start)});
  return absl::OkStatus();
}

}  // namespace kurt::analytics
