// The pure part of ingesting a batch of click events: decoding each Kafka message, fencing off
// offsets already accounted for, choosing what goes to the dead-letter topic, and summing the
// hourly aggregates. No I/O here; ClickProcessor runs these steps inside a database transaction.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "kurt/events/v1/click.pb.h"
#include "platform/kafka.h"
#include "services/analytics/dimensions.h"

namespace kurt::analytics {

// (topic, partition): the unit Kafka orders messages in and offsets are kept for.
using PartitionKey = std::pair<std::string, int32_t>;
// The next offset to handle, per partition.
using OffsetMap = std::map<PartitionKey, int64_t>;

// One click as the raw table stores it, with the values it is aggregated by.
struct ClickRow {
  std::string code;
  int64_t time_micros = 0;  // since the Unix epoch
  std::string event_id;
  std::string referrer;
  std::string user_agent;
  std::string client_hash;
  int32_t partition = 0;
  int64_t offset = 0;
  int64_t hour = 0;  // start of the UTC hour, seconds since the Unix epoch
  std::string referrer_host;
  AgentFamily agent = AgentFamily::kOther;
};

enum class RejectReason { kBadProtobuf, kInvalidEvent, kUnknownCode };

// The dlq-reason header value: "bad-protobuf", "invalid-event", "unknown-code".
absl::string_view RejectReasonName(RejectReason reason);

// A message that is not a countable click.
struct DeadLetter {
  const kafka::Message* message = nullptr;  // into the batch being handled
  RejectReason reason = RejectReason::kBadProtobuf;
  std::string detail;
};

// The outcome of decoding one message: a row, or why there is none.
struct Decoded {
  std::optional<ClickRow> row;
  RejectReason reason = RejectReason::kBadProtobuf;
  std::string detail;
};

// Decodes a kurt.events.v1.ClickEvent. A code that is not well-formed is kUnknownCode (it cannot
// name a link); an event without a valid time is kInvalidEvent. Text fields are cut to the
// producer's limits and stripped of NUL characters (PostgreSQL text cannot hold them); a missing
// event id falls back to the event-id header, then to topic/partition/offset.
// `scratch` is reused between calls to spare allocations.
Decoded DecodeClick(const kafka::Message& message, events::v1::ClickEvent* scratch);

// Whether a code has the shape of a link's code: [A-Za-z0-9_-]{3,64}.
bool IsWellFormedCode(absl::string_view code);

struct HourlyCount {
  std::string code;
  int64_t hour = 0;
  int64_t clicks = 0;
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
};

Aggregates Aggregate(const std::vector<ClickRow>& rows);

// What one batch changes, decided under the lock of its partitions' offset rows.
struct BatchPlan {
  std::vector<ClickRow> rows;
  Aggregates aggregates;
  std::vector<DeadLetter> dead_letters;
  // Per partition with handled messages: the offset after the last of them.
  OffsetMap next_offsets;
  // Messages below their partition's stored offset: already counted (a redelivery, or a former
  // owner of the partition got there first).
  int64_t duplicates = 0;
};

// The partitions of a batch, sorted.
std::vector<PartitionKey> PartitionsOf(const std::vector<kafka::Message>& batch);

// Whether message i is at or after its partition's stored offset (no stored offset: it is).
bool IsNew(const kafka::Message& message, const OffsetMap& stored);

// The codes of new, decoded messages, deduplicated, for which `known` says false.
std::vector<std::string> CodesToCheck(const std::vector<kafka::Message>& batch,
                                      const std::vector<Decoded>& decoded,
                                      const OffsetMap& stored,
                                      const std::function<bool(const std::string&)>& known);

// Builds the plan: skips messages below `stored`, dead-letters rejects and codes `known` says
// are not links, moves the rest into rows (from `decoded`) and sums them.
BatchPlan PlanBatch(const std::vector<kafka::Message>& batch, std::vector<Decoded>& decoded,
                    const OffsetMap& stored,
                    const std::function<bool(const std::string&)>& known);

// "YYYY-MM-DD HH:MM:SS.ffffff+00", the timestamptz text COPY reads.
std::string FormatTimestampMicros(int64_t micros);

}  // namespace kurt::analytics
