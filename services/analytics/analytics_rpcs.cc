#include "services/analytics/analytics_rpcs.h"

#include <optional>

#include "absl/strings/str_cat.h"
#include "platform/core/log.h"
#include "platform/grpc/timestamps.h"
#include "services/analytics/dimensions.h"
#include "services/analytics/time_buckets.h"
#include "services/common/link_code.h"

namespace kurt::analytics {
namespace {

constexpr int kDefaultLimit = 10;
constexpr int kMaxLimit = 100;

// A request's time, checked (INVALID_ARGUMENT naming `field`).
absl::StatusOr<absl::Time> FromProto(const google::protobuf::Timestamp& t,
                                     absl::string_view field) {
  if (absl::Status s = platform::ValidateTimestamp(t, field); !s.ok()) {
    return s;
  }
  return platform::FromTimestamp(t);
}

void SetTimestamp(absl::Time t, google::protobuf::Timestamp* out) {
  // Bucket bounds are whole seconds.
  out->set_seconds(absl::ToUnixSeconds(t));
  out->set_nanos(0);
}

}  // namespace

AnalyticsRpcs::AnalyticsRpcs(StatsStore* store, std::function<absl::Time()> now)
    : store_(store), now_(std::move(now)) {}

absl::StatusOr<v1::LinkStats> AnalyticsRpcs::GetLinkStats(const platform::Caller& caller,
                                                          const v1::GetLinkStatsRequest& request) {
  StatsQuery q;
  q.account_id = caller.account_id();
  if (request.code().empty()) {
    return absl::InvalidArgumentError("code: required");
  }
  if (!links::IsWellFormedCode(request.code())) {
    return absl::InvalidArgumentError("code: must be 3 to 64 letters, digits, '-' or '_'");
  }
  q.code = request.code();

  BucketWidth width;
  v1::Interval interval = request.interval();
  switch (interval) {
    case v1::INTERVAL_UNSPECIFIED:
    case v1::DAY:
      width = BucketWidth::kDay;
      interval = v1::DAY;
      break;
    case v1::HOUR:
      width = BucketWidth::kHour;
      break;
    default:
      return absl::InvalidArgumentError("interval: must be HOUR or DAY");
  }
  std::optional<absl::Time> start, end;
  if (request.has_start_time()) {
    auto t = FromProto(request.start_time(), "start_time");
    if (!t.ok()) {
      return t.status();
    }
    start = *t;
  }
  if (request.has_end_time()) {
    auto t = FromProto(request.end_time(), "end_time");
    if (!t.ok()) {
      return t.status();
    }
    end = *t;
  }
  absl::StatusOr<BucketRange> range = MakeRange(start, end, width, now_());
  if (!range.ok()) {
    return range.status();
  }
  if (request.limit() < 0 || request.limit() > kMaxLimit) {
    return absl::InvalidArgumentError(
        absl::StrCat("limit: must be between 0 and ", kMaxLimit, " (0 means ", kDefaultLimit, ")"));
  }
  q.limit = request.limit() == 0 ? kDefaultLimit : request.limit();
  q.start = range->start;
  q.end = range->end;

  absl::StatusOr<StatsData> data = store_->Read(q);
  if (!data.ok()) {
    if (!absl::IsNotFound(data.status())) {
      KURT_LOG(kWarn, "stats read failed", {"code", q.code}, {"error", data.status().ToString()});
    }
    return data.status();
  }

  v1::LinkStats response;
  response.set_code(q.code);
  SetTimestamp(range->start, response.mutable_start_time());
  SetTimestamp(range->end, response.mutable_end_time());
  response.set_interval(interval);
  int64_t total = 0, bots = 0;
  const auto series = FillSeries(*range, data->hourly);
  const auto bot_series = FillSeries(*range, data->hourly_bots);
  for (size_t i = 0; i < series.size(); ++i) {
    v1::TimeBucket* b = response.add_series();
    SetTimestamp(series[i].first, b->mutable_start_time());
    b->set_clicks(series[i].second);
    b->set_bot_clicks(bot_series[i].second);
    total += series[i].second;
    bots += bot_series[i].second;
  }
  response.set_total_clicks(total);
  response.set_bot_clicks(bots);
  response.set_human_clicks(total - bots);
  for (const auto& [value, clicks] : data->referrers) {
    v1::DimensionCount* d = response.add_top_referrers();
    d->set_value(value.empty() ? std::string(kDirectReferrer) : value);
    d->set_clicks(clicks);
  }
  for (const auto& [value, clicks] : data->agents) {
    v1::DimensionCount* d = response.add_top_agents();
    d->set_value(value);
    d->set_clicks(clicks);
  }
  for (const auto& [value, clicks] : data->countries) {
    v1::DimensionCount* d = response.add_top_countries();
    d->set_value(value.empty() ? std::string(kUnknownCountry) : value);
    d->set_clicks(clicks);
  }
  return response;
}

}  // namespace kurt::analytics
