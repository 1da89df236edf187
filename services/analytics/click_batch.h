// The pure part of ingesting a batch of click events: decoding and checking each Kafka message,
// fencing off offsets already accounted for, and building what the transaction writes — the raw
// rows as binary COPY data and the hourly aggregates. No I/O here; ClickProcessor drives these
// steps inside a database transaction.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "kurt/events/v1/click.pb.h"
#include "platform/kafka/kafka.h"
#include "services/analytics/bot_classifier.h"
#include "services/analytics/dimensions.h"

namespace kurt::analytics {

// (topic, partition): the unit Kafka orders messages in and offsets are kept for.
using PartitionKey = std::pair<std::string, int32_t>;
// The next offset to handle, per partition.
using OffsetMap = std::map<PartitionKey, int64_t>;

enum class RejectReason { kBadProtobuf, kInvalidEvent, kUnknownCode };

// The dlq-reason header value: "bad-protobuf", "invalid-event", "unknown-code".
absl::string_view RejectReasonName(RejectReason reason);

// A message that is not a countable click.
struct DeadLetter {
  const kafka::Message* message = nullptr;  // into the batch being handled
  RejectReason reason = RejectReason::kBadProtobuf;
  std::string detail;
};

// Why a message is not a click; nullopt when it is one.
struct Rejection {
  RejectReason reason;
  std::string detail;
};

// A decoded click: the event (cleaned) and what is derived from it.
struct Click {
  int64_t time_micros = 0;  // since the Unix epoch
  int64_t hour = 0;         // start of the UTC hour, seconds since the Unix epoch
};

// Parses `message` into `event` (reused between calls to spare allocations) and checks it. A code
// that is not well-formed is kUnknownCode (it cannot name a link); an event without a valid time
// is kInvalidEvent. Text fields are cut to the producer's limits and stripped of NUL characters
// (PostgreSQL text cannot hold them); a country that is not two upper-case letters becomes ""
// (unknown); a missing event id falls back to the event-id header, then
// to topic/partition/offset.
std::optional<Rejection> DecodeClick(const kafka::Message& message, events::v1::ClickEvent* event,
                                     Click* click);

// Tells whether each message is at or after its partition's stored offset (no stored offset: it
// is). Messages of a partition come in runs, so the stored offset is looked up once per run, not
// once per message (a lookup copies the topic name).
class OffsetFence {
 public:
  explicit OffsetFence(const OffsetMap& stored) : stored_(stored) {}
  bool IsNew(const kafka::Message& message);

 private:
  const OffsetMap& stored_;
  const kafka::Message* run_ = nullptr;  // the first message of the current run
  std::optional<int64_t> next_;          // the run's partition's stored offset
};

// The partitions of a batch, sorted.
std::vector<PartitionKey> PartitionsOf(const std::vector<const kafka::Message*>& batch);

struct HourlyCount {
  std::string code;
  int64_t hour = 0;
  int64_t clicks = 0;      // every click, bots' included
  int64_t bot_clicks = 0;  // of which bots'
  bool operator==(const HourlyCount&) const = default;
};

struct DimensionHourlyCount {
  std::string code;
  int64_t hour = 0;
  std::string value;
  int64_t clicks = 0;
  bool operator==(const DimensionHourlyCount&) const = default;
};

// Sums over a batch, each sorted by key (so that concurrent writers lock rows in one order).
struct Aggregates {
  std::vector<HourlyCount> hourly;
  std::vector<DimensionHourlyCount> referrers;
  std::vector<DimensionHourlyCount> agents;
  std::vector<DimensionHourlyCount> countries;  // "" when unknown
};

// Remembers the referrer host, the agent family and whether it is a bot's of recently seen header
// values: the same few thousand user agents make most of the traffic. Bounded; lives as long as
// the processor, used from its thread only.
class DimensionCache {
 public:
  // `spiders` (null: bots are told by kPreviewAgents and HEAD only) outlives the cache.
  explicit DimensionCache(size_t max_entries = 20000,
                          const user_agent::UapRegexes* spiders = nullptr)
      : max_entries_(max_entries), bots_(spiders, max_entries) {}
  AgentFamily Agent(absl::string_view user_agent);
  const std::string& Host(absl::string_view referrer);
  bool Bot(absl::string_view user_agent, bool head) { return bots_.IsBot(user_agent, head); }

 private:
  const size_t max_entries_;
  BotClassifier bots_;
  absl::flat_hash_map<std::string, AgentFamily> agents_;
  absl::flat_hash_map<std::string, std::string> hosts_;
};

// The columns of `clicks` the COPY data carries, in order.
inline constexpr const char* kClickCopyColumns[] = {
    "code",        "click_time",      "event_id",     "referrer", "user_agent",
    "client_hash", "kafka_partition", "kafka_offset", "bot",      "country"};

inline constexpr int kClickCopyFields = sizeof(kClickCopyColumns) / sizeof(kClickCopyColumns[0]);
// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01 00:00:00 UTC): binary COPY
// carries a timestamptz as microseconds since the latter.
inline constexpr int64_t kPostgresEpochMicros = int64_t{946684800} * 1000000;

// PostgreSQL's binary COPY format (the "Binary Format" section of COPY's manual page) frames the
// rows with a signature header before the first and a trailer after the last.
absl::string_view CopyBinaryHeader();
absl::string_view CopyBinaryTrailer();

// Accumulates one batch's clicks: their raw rows as PostgreSQL binary COPY data (drained as it
// grows, so that the database ingests while the batch is still being decoded) and their
// aggregates. Lives for one batch.
class BatchBuilder {
 public:
  // `copy_bytes`: about how much COPY data is taken at a time (room is made for it at once, not
  // by doubling).
  explicit BatchBuilder(DimensionCache* cache, size_t copy_bytes = 0) : cache_(cache) {
    copy_.reserve(copy_bytes);
  }

  // Adds a decoded click (its event as DecodeClick left it). It is a bot's as BotClassifier says
  // (through the cache); its agent family is then "Bot", and only then.
  void Add(const events::v1::ClickEvent& event, const Click& click, int32_t partition,
           int64_t offset);

  // Binary COPY tuples of the rows added since the last call, in (code, click time) order. The
  // order is for the database: its index on (code, click_time) then takes each link's rows one
  // after the other on the same pages, which costs it about a third less than arrival order.
  std::string TakeCopyData();
  size_t PendingCopyBytes() const { return copy_.size(); }
  int64_t rows() const { return rows_; }

  // The sums of every click added.
  Aggregates TakeAggregates() const;

 private:
  int Intern(std::vector<std::string>* names, absl::flat_hash_map<std::string, int>* ids,
             absl::string_view name);

  DimensionCache* cache_;
  std::string copy_;
  // Where each tuple of copy_ starts, with its sort key.
  struct Tuple {
    int code;  // per-batch id (codes_)
    int64_t time_micros;
    size_t begin;
  };
  std::vector<Tuple> tuples_;
  int64_t rows_ = 0;
  // Per-batch ids of codes and referrer hosts, so that sums are keyed by numbers.
  std::vector<std::string> codes_, hosts_, countries_;
  absl::flat_hash_map<std::string, int> code_ids_, host_ids_, country_ids_;
  // (clicks, bot clicks)
  absl::flat_hash_map<std::pair<int, int64_t>, std::pair<int64_t, int64_t>> hourly_;
  absl::flat_hash_map<std::tuple<int, int64_t, int>, int64_t> countries_by_hour_;
  absl::flat_hash_map<std::tuple<int, int64_t, int>, int64_t> referrers_;
  absl::flat_hash_map<std::tuple<int, int64_t, AgentFamily>, int64_t> agents_;
};

}  // namespace kurt::analytics
