#include "services/analytics/click_batch.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "platform/core/text.h"
#include "services/common/link_code.h"

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
  if ((a % b != 0) && ((a < 0) != (b < 0))) {
    --q;
  }
  return q;
}

// Cuts to at most `max` bytes without splitting a UTF-8 sequence, and drops NUL characters.
void CleanText(std::string* s, size_t max) {
  if (s->find('\0') != std::string::npos) {
    std::erase(*s, '\0');
  }
  if (s->size() > max) {
    size_t cut = max;
    // Back up over continuation bytes (10xxxxxx) to the start of the cut sequence.
    while (cut > 0 && (static_cast<unsigned char>((*s)[cut]) & 0xC0) == 0x80) {
      --cut;
    }
    s->resize(cut);
  }
}

// Binary COPY's integers are big-endian.
void AppendBigEndian(uint64_t value, int bytes, std::string* out) {
  char b[8];
  for (int i = bytes - 1; i >= 0; --i) {
    b[i] = static_cast<char>(value & 0xff);
    value >>= 8;
  }
  out->append(b, static_cast<size_t>(bytes));
}

// A field: its length (int32), then its bytes.
void AppendField(absl::string_view value, std::string* out) {
  AppendBigEndian(value.size(), 4, out);
  out->append(value.data(), value.size());
}

void AppendIntField(int64_t value, int bytes, std::string* out) {
  AppendBigEndian(static_cast<uint64_t>(bytes), 4, out);
  AppendBigEndian(static_cast<uint64_t>(value), bytes, out);
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
  if (!links::IsWellFormedCode(event->code())) {
    return Rejection{RejectReason::kUnknownCode, event->code().empty()
                                                     ? "the event has no code"
                                                     : "the code is not well-formed"};
  }
  const auto& t = event->time();
  if (!event->has_time() || t.seconds() < kMinSeconds || t.seconds() > kMaxSeconds ||
      t.nanos() < 0 || t.nanos() > 999999999) {
    return Rejection{RejectReason::kInvalidEvent,
                     event->has_time() ? "time is not a valid timestamp" : "the event has no time"};
  }
  click->time_micros = t.seconds() * 1000000 + t.nanos() / 1000;
  click->hour = FloorDiv(t.seconds(), 3600) * 3600;
  CleanText(event->mutable_event_id(), kMaxEventId);
  if (event->event_id().empty()) {
    // A header is bytes, not a protobuf string checked by the parser: PostgreSQL would refuse
    // one that is not UTF-8, and the batch with it would fail for ever.
    if (auto header = message.Header("event-id");
        header && !header->empty() && platform::IsValidUtf8(*header)) {
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
  if (const std::string& c = event->country();
      !c.empty() && (c.size() != 2 || !absl::ascii_isupper(c[0]) || !absl::ascii_isupper(c[1]))) {
    event->clear_country();
  }
  return std::nullopt;
}

bool OffsetFence::IsNew(const kafka::Message& message) {
  if (run_ == nullptr || run_->partition != message.partition || run_->topic != message.topic) {
    run_ = &message;
    auto it = stored_.find({message.topic, message.partition});
    next_ = it == stored_.end() ? std::nullopt : std::optional<int64_t>(it->second);
  }
  return !next_ || message.offset >= *next_;
}

std::vector<PartitionKey> PartitionsOf(const std::vector<const kafka::Message*>& batch) {
  std::vector<PartitionKey> out;
  for (const kafka::Message* m : batch) {
    // Runs of one partition add it once.
    if (out.empty() || out.back().second != m->partition || out.back().first != m->topic) {
      out.emplace_back(m->topic, m->partition);
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

AgentFamily DimensionCache::Agent(absl::string_view user_agent) {
  if (auto it = agents_.find(user_agent); it != agents_.end()) {
    return it->second;
  }
  if (agents_.size() >= max_entries_) {
    agents_.clear();
  }
  AgentFamily family = ClassifyUserAgent(user_agent);
  agents_.emplace(std::string(user_agent), family);
  return family;
}

const std::string& DimensionCache::Host(absl::string_view referrer) {
  if (auto it = hosts_.find(referrer); it != hosts_.end()) {
    return it->second;
  }
  if (hosts_.size() >= max_entries_) {
    hosts_.clear();
  }
  return hosts_.emplace(std::string(referrer), ReferrerHost(referrer)).first->second;
}

int BatchBuilder::Intern(std::vector<std::string>* names,
                         absl::flat_hash_map<std::string, int>* ids, absl::string_view name) {
  if (auto it = ids->find(name); it != ids->end()) {
    return it->second;
  }
  const int id = static_cast<int>(names->size());
  names->emplace_back(name);
  ids->emplace(std::string(name), id);
  return id;
}

void BatchBuilder::Add(const events::v1::ClickEvent& event, const Click& click, int32_t partition,
                       int64_t offset) {
  const int code = Intern(&codes_, &code_ids_, event.code());
  const int host = Intern(&hosts_, &host_ids_, cache_->Host(event.referrer()));
  const int country = Intern(&countries_, &country_ids_, event.country());
  const bool bot = cache_->Bot(event.user_agent(), event.head());
  AgentFamily family = cache_->Agent(event.user_agent());
  if (bot) {
    family = AgentFamily::kBot;
  } else if (family == AgentFamily::kBot) {
    family = AgentFamily::kOther;  // "Bot" in the tops means what bot_clicks counts
  }
  auto& hourly = hourly_[{code, click.hour}];
  ++hourly.first;
  hourly.second += bot ? 1 : 0;
  ++referrers_[{code, click.hour, host}];
  ++agents_[{code, click.hour, family}];
  ++countries_by_hour_[{code, click.hour, country}];
  ++rows_;

  tuples_.push_back({code, click.time_micros, copy_.size()});
  AppendBigEndian(kClickCopyFields, 2, &copy_);
  AppendField(event.code(), &copy_);
  AppendIntField(click.time_micros - kPostgresEpochMicros, 8, &copy_);
  AppendField(event.event_id(), &copy_);
  AppendField(event.referrer(), &copy_);
  AppendField(event.user_agent(), &copy_);
  AppendField(event.client_hash(), &copy_);
  AppendIntField(partition, 4, &copy_);
  AppendIntField(offset, 8, &copy_);
  AppendIntField(bot ? 1 : 0, 1, &copy_);
  AppendField(event.country(), &copy_);
}

std::string BatchBuilder::TakeCopyData() {
  std::vector<Tuple> order = std::move(tuples_);
  tuples_.clear();
  // Codes by name: per-batch ids are in order of first appearance.
  std::vector<int> rank(codes_.size());
  {
    std::vector<int> by_name(codes_.size());
    for (size_t i = 0; i < by_name.size(); ++i) {
      by_name[i] = static_cast<int>(i);
    }
    std::sort(by_name.begin(), by_name.end(),
              [this](int a, int b) { return codes_[a] < codes_[b]; });
    for (size_t i = 0; i < by_name.size(); ++i) {
      rank[by_name[i]] = static_cast<int>(i);
    }
  }
  const auto end_of = [&](size_t i) {
    return i + 1 < order.size() ? order[i + 1].begin : copy_.size();
  };
  std::vector<std::pair<size_t, size_t>> spans(order.size());  // (begin, end) in copy_
  for (size_t i = 0; i < order.size(); ++i) {
    spans[i] = {order[i].begin, end_of(i)};
  }
  std::vector<size_t> index(order.size());
  for (size_t i = 0; i < index.size(); ++i) {
    index[i] = i;
  }
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
  for (const auto& [k, n] : hourly_) {
    out.hourly.push_back({codes_[k.first], k.second, n.first, n.second});
  }
  out.referrers.reserve(referrers_.size());
  for (const auto& [k, n] : referrers_) {
    out.referrers.push_back({codes_[std::get<0>(k)], std::get<1>(k), hosts_[std::get<2>(k)], n});
  }
  out.agents.reserve(agents_.size());
  for (const auto& [k, n] : agents_) {
    out.agents.push_back(
        {codes_[std::get<0>(k)], std::get<1>(k), std::string(AgentFamilyName(std::get<2>(k))), n});
  }
  out.countries.reserve(countries_by_hour_.size());
  for (const auto& [k, n] : countries_by_hour_) {
    out.countries.push_back(
        {codes_[std::get<0>(k)], std::get<1>(k), countries_[std::get<2>(k)], n});
  }
  std::sort(out.hourly.begin(), out.hourly.end(), [](const auto& a, const auto& b) {
    return std::tie(a.code, a.hour) < std::tie(b.code, b.hour);
  });
  auto by_key = [](const DimensionHourlyCount& a, const DimensionHourlyCount& b) {
    return std::tie(a.code, a.hour, a.value) < std::tie(b.code, b.hour, b.value);
  };
  std::sort(out.referrers.begin(), out.referrers.end(), by_key);
  std::sort(out.agents.begin(), out.agents.end(), by_key);
  std::sort(out.countries.begin(), out.countries.end(), by_key);
  return out;
}

absl::string_view CopyBinaryHeader() {
  // The signature, then 32-bit flags (0: no OIDs) and the length of the header extension (0).
  static constexpr char kHeader[] = "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0";
  return absl::string_view(kHeader, sizeof(kHeader) - 1);
}

absl::string_view CopyBinaryTrailer() {
  static constexpr char kTrailer[] = "\377\377";  // a field count of -1
  return absl::string_view(kTrailer, 2);
}

}  // namespace kurt::analytics
