// Handles one batch of kurt.clicks.v1 messages (the consumer's BatchHandler): in one database
// transaction it locks the batch's offset rows, skips what they say was already counted, streams
// the raw clicks to COPY while it decodes them, sends what cannot be counted to the dead-letter
// topic (acknowledged before the commit), adds the hourly aggregates and advances the offsets.
// Each click thus counts once across crashes, redeliveries and a former owner of a partition
// still finishing a batch.
//
// Lives as long as the consumer; Handle is called from the consumer's thread only.
#pragma once

#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "platform/kafka.h"
#include "platform/metrics.h"
#include "services/analytics/click_batch.h"
#include "services/analytics/click_store.h"
#include "services/analytics/dead_letters.h"

namespace kurt::analytics {

// What one handled batch did (for logs, metrics and tests).
struct BatchOutcome {
  int64_t stored = 0;
  // Messages below their partition's stored offset: already counted (a redelivery, or a former
  // owner of the partition got there first).
  int64_t duplicates = 0;
  std::vector<DeadLetter> dead_letters;
};

class ClickProcessor {
 public:
  // Every pointer outlives the processor.
  ClickProcessor(std::string group, ClickStore* store, DeadLetterSink* dead_letters,
                 metrics::Registry* registry);

  absl::Status Handle(const std::vector<kafka::Message>& batch);

 private:
  absl::Status HandleInTransaction(const std::vector<kafka::Message>& batch,
                                   ClickTransaction& tx, BatchOutcome* outcome);

  const std::string group_;
  ClickStore* store_;
  DeadLetterSink* dead_letters_;
  DimensionCache dimensions_;
  // Codes confirmed to name a link. Links are never removed (a deleted one keeps its row), so a
  // confirmation stays true; the set is cleared when it grows past a bound.
  absl::flat_hash_set<std::string> known_codes_;

  metrics::Counter* stored_;
  metrics::Counter* duplicates_;
  metrics::Family<metrics::Counter>* dead_lettered_;
  metrics::Counter* batches_ok_;
  metrics::Counter* batches_failed_;
  metrics::Histogram* batch_seconds_;
};

}  // namespace kurt::analytics
