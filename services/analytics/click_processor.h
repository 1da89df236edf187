// Handles one batch of kurt.clicks.v1 messages (the consumer's BatchHandler): in one database
// transaction it locks the batch's offset rows, skips what they say was already counted, streams
// the raw clicks to COPY while it decodes them, sends what cannot be counted to the dead-letter
// topic (acknowledged before the commit), adds the hourly aggregates and advances the offsets.
// Each click thus counts once across crashes, redeliveries and a former owner of a partition
// still finishing a batch. A second event of one click (the same code and event id: links
// published it again, see services/links/click_publisher.h) is dropped too, by the partition's
// EventWindow, or for an old click by a lookup in the same transaction.
//
// A batch spanning several partitions is written as one transaction per partition, up to
// `parallelism` of them at once (PostgreSQL works one statement per backend, so this is how a
// batch uses more than one core there). Exactly-once holds per partition: its clicks and its
// offset row are in the same transaction. If one fails, the batch comes again and the partitions
// already committed are skipped by their offsets.
//
// Lives as long as the consumer; Handle is called from the consumer's thread only, and runs its
// transactions on threads of its own for the duration of the call.
#pragma once

#include <map>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "platform/core/metrics.h"
#include "platform/kafka/kafka.h"
#include "services/analytics/click_batch.h"
#include "services/analytics/click_store.h"
#include "services/analytics/dead_letters.h"
#include "services/analytics/event_window.h"

namespace kurt::analytics {

// What one handled batch did (for logs, metrics and tests).
struct BatchOutcome {
  int64_t stored = 0;
  // Messages below their partition's stored offset: already counted (a redelivery, or a former
  // owner of the partition got there first).
  int64_t duplicates = 0;
  // Events of a click already counted (the same code and event id at another offset).
  int64_t repeated = 0;
  std::vector<DeadLetter> dead_letters;
  // What the committed transaction stored, for the partitions' windows.
  std::map<PartitionKey, std::vector<std::pair<EventWindow::Key, absl::Time>>> stored_keys;
  OffsetMap next;
};

class ClickProcessor {
 public:
  // Every pointer outlives the processor.
  // `parallelism`: transactions of one batch at once (1: the whole batch in one transaction).
  // `spiders`: uap-core's rules bots are told by (null: by kPreviewAgents and HEAD only).
  ClickProcessor(std::string group, ClickStore* store, DeadLetterSink* dead_letters,
                 metrics::Registry* registry, int parallelism = 1, EventWindowOptions windows = {},
                 const user_agent::UapRegexes* spiders = nullptr);

  absl::Status Handle(const std::vector<kafka::Message>& batch);

 private:
  absl::Status HandleInTransaction(const std::vector<const kafka::Message*>& messages,
                                   ClickTransaction& tx, DimensionCache* dimensions,
                                   BatchOutcome* outcome);
  bool Known(absl::string_view code) const;
  // The partitions' windows, seeded where they are not fresh.
  absl::StatusOr<std::map<PartitionKey, EventWindow*>> Windows(
      const std::vector<const kafka::Message*>& batch, const OffsetMap& stored,
      ClickTransaction& tx);
  // After a commit: what it stored goes into the partitions' windows.
  void CommitWindows(const BatchOutcome& outcome);
  void Confirm(std::vector<std::string> codes);

  const std::string group_;
  ClickStore* store_;
  DeadLetterSink* dead_letters_;
  const size_t parallelism_;
  // One per concurrent transaction (a cache is used by one thread at a time).
  std::vector<DimensionCache> dimensions_;
  // Codes confirmed to name a link. Links are never removed (a deleted one keeps its row), so a
  // confirmation stays true; the set is cleared when it grows past a bound.
  const EventWindowOptions window_options_;
  std::mutex windows_mu_;  // guards the map; a window is used by one transaction at a time
  std::map<PartitionKey, EventWindow> windows_;
  mutable std::shared_mutex known_mu_;
  absl::flat_hash_set<std::string> known_codes_;

  metrics::Counter* stored_;
  metrics::Counter* duplicates_;
  metrics::Counter* repeated_;
  metrics::Family<metrics::Counter>* dead_lettered_;
  metrics::Counter* batches_ok_;
  metrics::Counter* batches_failed_;
  metrics::Histogram* batch_seconds_;
};

}  // namespace kurt::analytics
