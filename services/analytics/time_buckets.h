// Time ranges of the stats RPC: validation, alignment to UTC hours or days, and the zero-filled
// series built from hourly counts.
#pragma once

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace kurt::analytics {

enum class BucketWidth { kHour, kDay };

absl::Duration WidthOf(BucketWidth width);

// The start of the UTC hour (or day) holding t; exact for times before 1970 too.
absl::Time FloorTo(absl::Time t, BucketWidth width);
// The smallest bucket start at or after t.
absl::Time CeilTo(absl::Time t, BucketWidth width);

// The longest range a request may cover per width.
absl::Duration MaxSpan(BucketWidth width);

// A range aligned to bucket boundaries: [start, end), end > start.
struct BucketRange {
  absl::Time start;
  absl::Time end;
  BucketWidth width = BucketWidth::kDay;
  int64_t BucketCount() const;
};

// Validates and aligns a request's range. Unset end: `now`; unset start: end minus 24 hours
// (kHour) or 30 days (kDay). INVALID_ARGUMENT naming start_time or end_time when the end is not
// after the start or the span exceeds MaxSpan(width).
absl::StatusOr<BucketRange> MakeRange(std::optional<absl::Time> start,
                                      std::optional<absl::Time> end, BucketWidth width,
                                      absl::Time now);

// Sums hourly counts (hour start, clicks) into the range's buckets, one per bucket with zeros,
// oldest first. Hours outside the range are ignored.
std::vector<std::pair<absl::Time, int64_t>> FillSeries(
    const BucketRange& range, const std::vector<std::pair<absl::Time, int64_t>>& hourly);

}  // namespace kurt::analytics
