#include "services/analytics/time_buckets.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace kurt::analytics {
namespace {

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) {
    --q;
  }
  return q;
}

int64_t WidthMicros(BucketWidth width) {
  return width == BucketWidth::kHour ? int64_t{3600} * 1000000 : int64_t{86400} * 1000000;
}

}  // namespace

absl::Duration WidthOf(BucketWidth width) {
  return width == BucketWidth::kHour ? absl::Hours(1) : absl::Hours(24);
}

absl::Time FloorTo(absl::Time t, BucketWidth width) {
  const int64_t w = WidthMicros(width);
  return absl::FromUnixMicros(FloorDiv(absl::ToUnixMicros(t), w) * w);
}

absl::Time CeilTo(absl::Time t, BucketWidth width) {
  absl::Time floor = FloorTo(t, width);
  // ToUnixMicros truncates sub-microsecond parts; those still push the ceiling up.
  return floor == t ? t : floor + WidthOf(width);
}

absl::Duration MaxSpan(BucketWidth width) {
  return width == BucketWidth::kHour ? absl::Hours(24 * 31) : absl::Hours(24 * 400);
}

int64_t BucketRange::BucketCount() const {
  return (absl::ToUnixMicros(end) - absl::ToUnixMicros(start)) / WidthMicros(width);
}

absl::StatusOr<BucketRange> MakeRange(std::optional<absl::Time> start,
                                      std::optional<absl::Time> end, BucketWidth width,
                                      absl::Time now) {
  const absl::Time e = end.value_or(now);
  const absl::Time s =
      start.value_or(e - (width == BucketWidth::kHour ? absl::Hours(24) : absl::Hours(24 * 30)));
  const char* unit = width == BucketWidth::kHour ? "HOUR" : "DAY";
  if (e <= s) {
    return absl::InvalidArgumentError(end ? "end_time: must be after start_time"
                                          : "start_time: must be before now");
  }
  if (e - s > MaxSpan(width)) {
    return absl::InvalidArgumentError(
        absl::StrCat(start ? "end_time" : "start_time", ": the range may span at most ",
                     absl::ToInt64Hours(MaxSpan(width)) / 24, " days with interval ", unit));
  }
  BucketRange r;
  r.width = width;
  r.start = FloorTo(s, width);
  r.end = CeilTo(e, width);
  return r;
}

std::vector<std::pair<absl::Time, int64_t>> FillSeries(
    const BucketRange& range, const std::vector<std::pair<absl::Time, int64_t>>& hourly) {
  const int64_t n = range.BucketCount();
  std::vector<std::pair<absl::Time, int64_t>> out;
  out.reserve(n);
  for (int64_t i = 0; i < n; ++i) {
    out.emplace_back(range.start + i * WidthOf(range.width), 0);
  }
  const int64_t w = WidthMicros(range.width);
  const int64_t origin = absl::ToUnixMicros(range.start);
  for (const auto& [hour, clicks] : hourly) {
    if (hour < range.start || hour >= range.end) {
      continue;
    }
    out[FloorDiv(absl::ToUnixMicros(hour) - origin, w)].second += clicks;
  }
  return out;
}

}  // namespace kurt::analytics
