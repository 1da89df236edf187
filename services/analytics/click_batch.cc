#include "services/analytics/click_batch.h"

#include <algorithm>
#include <climits>
#include <cstdio>

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
void CleanText(std::string* s, size_t max) {
  if (s->find('\0') != std::string::npos) std::erase(*s, '\0');
  if (s->size() > max) {
    size_t cut = max;
    // Back up over continuation bytes (10xxxxxx) to the start of the cut sequence.
    while (cut > 0 && (static_cast<unsigned char>((*s)[cut]) & 0xC0) == 0x80) --cut;
    s->resize(cut);
  }
}

// "YYYY-MM-DD HH:MM:SS" of a second since the epoch, UTC.
std::string FormatSecond(int64_t seconds) {
  const absl::CivilSecond cs =
      absl::ToCivilSecond(absl::FromUnixSeconds(seconds), absl::UTCTimeZone());
  char buf[32];
  // Years before 1 AD do not occur: DecodeClick refuses times outside Timestamp's range.
  int n = std::snprintf(buf, sizeof(buf), "%04d-%02d-%02d %02d:%02d:%02d",
                        static_cast<int>(cs.year()), cs.month(), cs.day(), cs.hour(),
                        cs.minute(), cs.second());
  return std::string(buf, n > 0 ? static_cast<size_t>(n) : 0);
}

void AppendMicros(int64_t frac, std::string* out) {
  char digits[7];
  for (int i = 5; i >= 0; --i) {
    digits[i] = static_cast<char>('0' + frac % 10);
    frac /= 10;
  }
  digits[6] = '\0';
  out->push_back('.');
  out->append(digits, 6);
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

std::optional<Rejection> DecodeClick(const kafka::Message& message, events::v1::ClickEvent* event,
                                     Click* click) {
  if (!event->ParseFromString(message.value)) {
    return Rejection{RejectReason::kBadProtobuf, "the value is not a kurt.events.v1.ClickEvent"};
  }
  if (!IsWellFormedCode(event->code())) {
    return Rejection{RejectReason::kUnknownCode, event->code().empty()
                                                     ? "the event has no code"
                                                     : "the code is not well-formed"};
  }
  const auto& t = event->time();
  if (!event->has_time() || t.seconds() < kMinSeconds || t.seconds() > kMaxSeconds ||
      t.nanos() < 0 || t.nanos() > 999999999) {
    return Rejection{RejectReason::kInvalidEvent, event->has_time()
                                                      ? "time is not a valid timestamp"
                                                      : "the event has no time"};
  }
  click->time_micros = t.seconds() * 1000000 + t.nanos() / 1000;
  click->hour = FloorDiv(t.seconds(), 3600) * 3600;
  CleanText(event->mutable_event_id(), kMaxEventId);
  if (event->event_id().empty()) {
    if (auto header = message.Header("event-id"); header && !header->empty()) {
      event->set_event_id(std::string(*header));
      CleanText(event->mutable_event_id(), kMaxEventId);
    }
    if (event->event_id().empty()) {
      event->set_event_id(absl::StrCat(message.topic, "/", message.partition, "/", message.offset));
    }
  }
  CleanText(event->mutable_referrer(), kMaxReferrer);
  CleanText(event->mutable_user_agent(), kMaxUserAgent);
  CleanText(event->mutable_client_hash(), kMaxClientHash);
  return std::nullopt;
}

bool IsNew(const kafka::Message& message, const OffsetMap& stored) {
  auto it = stored.find({message.topic, message.partition});
  return it == stored.end() || message.offset >= it->second;
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

AgentFamily DimensionCache::Agent(absl::string_view user_agent) {
  if (auto it = agents_.find(user_agent); it != agents_.end()) return it->second;
  if (agents_.size() >= max_entries_) agents_.clear();
  AgentFamily family = ClassifyUserAgent(user_agent);
  agents_.emplace(std::string(user_agent), family);
  return family;
}

const std::string& DimensionCache::Host(absl::string_view referrer) {
  if (auto it = hosts_.find(referrer); it != hosts_.end()) return it->second;
  if (hosts_.size() >= max_entries_) hosts_.clear();
  return hosts_.emplace(std::string(referrer), ReferrerHost(referrer)).first->second;
}

int BatchBuilder::Intern(std::vector<std::string>* names,
                         absl::flat_hash_map<std::string, int>* ids, absl::string_view name) {
  if (auto it = ids->find(name); it != ids->end()) return it->second;
  const int id = static_cast<int>(names->size());
  names->emplace_back(name);
  ids->emplace(std::string(name), id);
  return id;
}

void BatchBuilder::Add(const events::v1::ClickEvent& event, const Click& click,
                       int32_t partition, int64_t offset) {
  const int code = Intern(&codes_, &code_ids_, event.code());
  const int host = Intern(&hosts_, &host_ids_, cache_->Host(event.referrer()));
  ++hourly_[{code, click.hour}];
  ++referrers_[{code, click.hour, host}];
  ++agents_[{code, click.hour, cache_->Agent(event.user_agent())}];
  ++rows_;

  lines_.push_back({code, click.time_micros, copy_.size()});
  // A well-formed code needs no escaping.
  copy_.append(event.code());
  copy_.push_back('\t');
  const int64_t second = FloorDiv(click.time_micros, 1000000);
  if (second != formatted_second_) {
    formatted_second_ = second;
    formatted_prefix_ = FormatSecond(second);
  }
  copy_.append(formatted_prefix_);
  AppendMicros(click.time_micros - second * 1000000, &copy_);
  copy_.append("+00\t");
  AppendCopyEscaped(event.event_id(), &copy_);
  copy_.push_back('\t');
  AppendCopyEscaped(event.referrer(), &copy_);
  copy_.push_back('\t');
  AppendCopyEscaped(event.user_agent(), &copy_);
  copy_.push_back('\t');
  AppendCopyEscaped(event.client_hash(), &copy_);
  absl::StrAppend(&copy_, "\t", partition, "\t", offset, "\n");
}

std::string BatchBuilder::TakeCopyText() {
  std::vector<Line> order = std::move(lines_);
  lines_.clear();
  // Codes by name: per-batch ids are in order of first appearance.
  std::vector<int> rank(codes_.size());
  {
    std::vector<int> by_name(codes_.size());
    for (size_t i = 0; i < by_name.size(); ++i) by_name[i] = static_cast<int>(i);
    std::sort(by_name.begin(), by_name.end(),
              [this](int a, int b) { return codes_[a] < codes_[b]; });
    for (size_t i = 0; i < by_name.size(); ++i) rank[by_name[i]] = static_cast<int>(i);
  }
  const auto end_of = [&](size_t i) {
    return i + 1 < order.size() ? order[i + 1].begin : copy_.size();
  };
  std::vector<std::pair<size_t, size_t>> spans(order.size());  // (begin, end) in copy_
  for (size_t i = 0; i < order.size(); ++i) spans[i] = {order[i].begin, end_of(i)};
  std::vector<size_t> index(order.size());
  for (size_t i = 0; i < index.size(); ++i) index[i] = i;
  std::stable_sort(index.begin(), index.end(), [&](size_t a, size_t b) {
    return std::tie(rank[order[a].code], order[a].time_micros) <
           std::tie(rank[order[b].code], order[b].time_micros);
  });
  std::string out;
  out.reserve(copy_.size());
  for (size_t i : index) {
    out.append(copy_, spans[i].first, spans[i].second - spans[i].first);
  }
  copy_.clear();
  return out;
}

Aggregates BatchBuilder::TakeAggregates() const {
  Aggregates out;
  out.hourly.reserve(hourly_.size());
  for (const auto& [k, n] : hourly_) out.hourly.push_back({codes_[k.first], k.second, n});
  out.referrers.reserve(referrers_.size());
  for (const auto& [k, n] : referrers_) {
    out.referrers.push_back(
        {codes_[std::get<0>(k)], std::get<1>(k), hosts_[std::get<2>(k)], n});
  }
  out.agents.reserve(agents_.size());
  for (const auto& [k, n] : agents_) {
    out.agents.push_back({codes_[std::get<0>(k)], std::get<1>(k),
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

void AppendCopyEscaped(absl::string_view value, std::string* out) {
  size_t start = 0;
  for (size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    const char* escaped = nullptr;
    switch (c) {
      case '\\':
        escaped = "\\\\";
        break;
      case '\t':
        escaped = "\\t";
        break;
      case '\n':
        escaped = "\\n";
        break;
      case '\r':
        escaped = "\\r";
        break;
      default:
        continue;
    }
    out->append(value.data() + start, i - start);
    out->append(escaped);
    start = i + 1;
  }
  out->append(value.data() + start, value.size() - start);
}

std::string FormatTimestampMicros(int64_t micros) {
  const int64_t second = FloorDiv(micros, 1000000);
  std::string out = FormatSecond(second);
  AppendMicros(micros - second * 1000000, &out);
  out.append("+00");
  return out;
}

}  // namespace kurt::analytics
