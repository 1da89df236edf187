#include "services/analytics/click_batch.h"

#include <algorithm>
#include <tuple>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace kurt::analytics {
namespace {

// The limits the producer (services/links) applies; enforced again for other producers.
constexpr size_t kMaxReferrer = 1024;
constexpr size_t kMaxUserAgent = 512;
constexpr size_t kMaxClientHash = 128;
constexpr size_t kMaxEventId = 128;

// google.protobuf.Timestamp's range: 0001-01-01 to 9999-12-31.
constexpr int64_t kMinSeconds = -62135596800;
constexpr int64_t kMaxSeconds = 253402300799;

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

// Cuts to at most `max` bytes without splitting a UTF-8 sequence, and drops NUL characters.
std::string CleanText(std::string* s, size_t max) {
  std::string out = std::move(*s);
  if (out.find('\0') != std::string::npos) std::erase(out, '\0');
  if (out.size() > max) {
    size_t cut = max;
    // Back up over continuation bytes (10xxxxxx) to the start of the cut sequence.
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;
    out.resize(cut);
  }
  return out;
}

}  // namespace

absl::string_view RejectReasonName(RejectReason reason) {
  switch (reason) {
    case RejectReason::kBadProtobuf:
      return "bad-protobuf";
    case RejectReason::kInvalidEvent:
      return "invalid-event";
    case RejectReason::kUnknownCode:
      return "unknown-code";
  }
  return "invalid-event";
}

bool IsWellFormedCode(absl::string_view code) {
  if (code.size() < 3 || code.size() > 64) return false;
  for (char c : code) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '_' || c == '-')) {
      return false;
    }
  }
  return true;
}

Decoded DecodeClick(const kafka::Message& message, events::v1::ClickEvent* event) {
  Decoded d;
  if (!event->ParseFromString(message.value)) {
    d.reason = RejectReason::kBadProtobuf;
    d.detail = "the value is not a kurt.events.v1.ClickEvent";
    return d;
  }
  if (!IsWellFormedCode(event->code())) {
    d.reason = RejectReason::kUnknownCode;
    d.detail = event->code().empty() ? "the event has no code" : "the code is not well-formed";
    return d;
  }
  if (!event->has_time() || event->time().seconds() < kMinSeconds ||
      event->time().seconds() > kMaxSeconds || event->time().nanos() < 0 ||
      event->time().nanos() > 999999999) {
    d.reason = RejectReason::kInvalidEvent;
    d.detail = event->has_time() ? "time is not a valid timestamp" : "the event has no time";
    return d;
  }
  ClickRow row;
  row.code = std::move(*event->mutable_code());
  row.time_micros = event->time().seconds() * 1000000 + event->time().nanos() / 1000;
  row.hour = FloorDiv(event->time().seconds(), 3600) * 3600;
  row.event_id = CleanText(event->mutable_event_id(), kMaxEventId);
  if (row.event_id.empty()) {
    if (auto header = message.Header("event-id"); header && !header->empty()) {
      std::string h(*header);
      row.event_id = CleanText(&h, kMaxEventId);
    }
    if (row.event_id.empty()) {
      row.event_id = absl::StrCat(message.topic, "/", message.partition, "/", message.offset);
    }
  }
  row.referrer = CleanText(event->mutable_referrer(), kMaxReferrer);
  row.user_agent = CleanText(event->mutable_user_agent(), kMaxUserAgent);
  row.client_hash = CleanText(event->mutable_client_hash(), kMaxClientHash);
  row.partition = message.partition;
  row.offset = message.offset;
  row.referrer_host = ReferrerHost(row.referrer);
  row.agent = ClassifyUserAgent(row.user_agent);
  d.row = std::move(row);
  return d;
}

Aggregates Aggregate(const std::vector<ClickRow>& rows) {
  // Keys point into `rows`, which outlives the maps.
  absl::flat_hash_map<std::pair<absl::string_view, int64_t>, int64_t> hourly;
  absl::flat_hash_map<std::tuple<absl::string_view, int64_t, absl::string_view>, int64_t> refs;
  absl::flat_hash_map<std::tuple<absl::string_view, int64_t, AgentFamily>, int64_t> agents;
  for (const ClickRow& r : rows) {
    ++hourly[{r.code, r.hour}];
    ++refs[{r.code, r.hour, r.referrer_host}];
    ++agents[{r.code, r.hour, r.agent}];
  }
  Aggregates out;
  out.hourly.reserve(hourly.size());
  for (const auto& [k, n] : hourly) out.hourly.push_back({std::string(k.first), k.second, n});
  out.referrers.reserve(refs.size());
  for (const auto& [k, n] : refs) {
    out.referrers.push_back(
        {std::string(std::get<0>(k)), std::get<1>(k), std::string(std::get<2>(k)), n});
  }
  out.agents.reserve(agents.size());
  for (const auto& [k, n] : agents) {
    out.agents.push_back({std::string(std::get<0>(k)), std::get<1>(k),
                          std::string(AgentFamilyName(std::get<2>(k))), n});
  }
  std::sort(out.hourly.begin(), out.hourly.end(), [](const auto& a, const auto& b) {
    return std::tie(a.code, a.hour) < std::tie(b.code, b.hour);
  });
  auto by_key = [](const DimensionHourlyCount& a, const DimensionHourlyCount& b) {
    return std::tie(a.code, a.hour, a.value) < std::tie(b.code, b.hour, b.value);
  };
  std::sort(out.referrers.begin(), out.referrers.end(), by_key);
  std::sort(out.agents.begin(), out.agents.end(), by_key);
  return out;
}

std::vector<PartitionKey> PartitionsOf(const std::vector<kafka::Message>& batch) {
  std::vector<PartitionKey> out;
  for (const kafka::Message& m : batch) {
    if (out.empty() || out.back().first != m.topic || out.back().second != m.partition) {
      out.emplace_back(m.topic, m.partition);
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

bool IsNew(const kafka::Message& message, const OffsetMap& stored) {
  auto it = stored.find({message.topic, message.partition});
  return it == stored.end() || message.offset >= it->second;
}

std::vector<std::string> CodesToCheck(const std::vector<kafka::Message>& batch,
                                      const std::vector<Decoded>& decoded,
                                      const OffsetMap& stored,
                                      const std::function<bool(const std::string&)>& known) {
  absl::flat_hash_set<absl::string_view> seen;
  std::vector<std::string> out;
  for (size_t i = 0; i < batch.size(); ++i) {
    if (!decoded[i].row || !IsNew(batch[i], stored)) continue;
    const std::string& code = decoded[i].row->code;
    if (seen.insert(code).second && !known(code)) out.push_back(code);
  }
  std::sort(out.begin(), out.end());
  return out;
}

BatchPlan PlanBatch(const std::vector<kafka::Message>& batch, std::vector<Decoded>& decoded,
                    const OffsetMap& stored,
                    const std::function<bool(const std::string&)>& known) {
  BatchPlan plan;
  plan.rows.reserve(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    const kafka::Message& m = batch[i];
    if (!IsNew(m, stored)) {
      ++plan.duplicates;
      continue;
    }
    int64_t& next = plan.next_offsets[{m.topic, m.partition}];
    next = std::max(next, m.offset + 1);
    Decoded& d = decoded[i];
    if (!d.row) {
      plan.dead_letters.push_back({&m, d.reason, d.detail});
    } else if (!known(d.row->code)) {
      plan.dead_letters.push_back(
          {&m, RejectReason::kUnknownCode, absl::StrCat("no link with code '", d.row->code, "'")});
    } else {
      plan.rows.push_back(std::move(*d.row));
      d.row.reset();
    }
  }
  plan.aggregates = Aggregate(plan.rows);
  return plan;
}

std::string FormatTimestampMicros(int64_t micros) {
  const int64_t seconds = FloorDiv(micros, 1000000);
  const int64_t frac = micros - seconds * 1000000;
  const absl::CivilSecond cs =
      absl::ToCivilSecond(absl::FromUnixSeconds(seconds), absl::UTCTimeZone());
  char buf[48];
  // Years before 1 AD do not occur: DecodeClick refuses times outside Timestamp's range.
  int n = std::snprintf(buf, sizeof(buf), "%04d-%02d-%02d %02d:%02d:%02d.%06d+00",
                        static_cast<int>(cs.year()), cs.month(), cs.day(), cs.hour(),
                        cs.minute(), cs.second(), static_cast<int>(frac));
  return std::string(buf, n > 0 ? static_cast<size_t>(n) : 0);
}

}  // namespace kurt::analytics
