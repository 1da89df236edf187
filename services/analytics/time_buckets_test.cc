#include "services/analytics/time_buckets.h"

#include "gtest/gtest.h"

namespace kurt::analytics {
namespace {

absl::Time T(const char* rfc3339) {
  absl::Time t;
  std::string err;
  EXPECT_TRUE(absl::ParseTime(absl::RFC3339_full, rfc3339, &t, &err)) << err;
  return t;
}

TEST(TimeBucketsTest, FloorAndCeilToUtcHoursAndDays) {
  EXPECT_EQ(FloorTo(T("2024-03-05T10:59:59.999Z"), BucketWidth::kHour), T("2024-03-05T10:00:00Z"));
  EXPECT_EQ(FloorTo(T("2024-03-05T10:00:00Z"), BucketWidth::kHour), T("2024-03-05T10:00:00Z"));
  EXPECT_EQ(FloorTo(T("2024-03-05T23:30:00+02:00"), BucketWidth::kDay), T("2024-03-05T00:00:00Z"));
  EXPECT_EQ(CeilTo(T("2024-03-05T10:00:00Z"), BucketWidth::kHour), T("2024-03-05T10:00:00Z"));
  EXPECT_EQ(CeilTo(T("2024-03-05T10:00:00.000001Z"), BucketWidth::kHour),
            T("2024-03-05T11:00:00Z"));
  EXPECT_EQ(CeilTo(T("2024-03-05T00:00:01Z"), BucketWidth::kDay), T("2024-03-06T00:00:00Z"));
  // A nanosecond past the boundary still moves the ceiling.
  EXPECT_EQ(CeilTo(T("2024-03-05T10:00:00Z") + absl::Nanoseconds(1), BucketWidth::kHour),
            T("2024-03-05T11:00:00Z"));
}

TEST(TimeBucketsTest, FloorBeforeTheEpoch) {
  EXPECT_EQ(FloorTo(T("1969-12-31T23:30:00Z"), BucketWidth::kHour), T("1969-12-31T23:00:00Z"));
  EXPECT_EQ(FloorTo(T("1969-12-31T23:30:00Z"), BucketWidth::kDay), T("1969-12-31T00:00:00Z"));
}

TEST(TimeBucketsTest, RangeIsAlignedOutwards) {
  auto r = MakeRange(T("2024-03-05T10:20:00Z"), T("2024-03-05T12:10:00Z"), BucketWidth::kHour,
                     T("2024-04-01T00:00:00Z"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->start, T("2024-03-05T10:00:00Z"));
  EXPECT_EQ(r->end, T("2024-03-05T13:00:00Z"));
  EXPECT_EQ(r->BucketCount(), 3);
}

TEST(TimeBucketsTest, Defaults) {
  const absl::Time now = T("2024-03-05T10:20:00Z");
  auto hour = MakeRange(std::nullopt, std::nullopt, BucketWidth::kHour, now);
  ASSERT_TRUE(hour.ok());
  EXPECT_EQ(hour->start, T("2024-03-04T10:00:00Z"));
  EXPECT_EQ(hour->end, T("2024-03-05T11:00:00Z"));
  EXPECT_EQ(hour->BucketCount(), 25);
  auto day = MakeRange(std::nullopt, std::nullopt, BucketWidth::kDay, now);
  ASSERT_TRUE(day.ok());
  EXPECT_EQ(day->start, T("2024-02-04T00:00:00Z"));
  EXPECT_EQ(day->end, T("2024-03-06T00:00:00Z"));
  EXPECT_EQ(day->BucketCount(), 31);
  auto from = MakeRange(T("2024-03-05T08:00:00Z"), std::nullopt, BucketWidth::kHour, now);
  ASSERT_TRUE(from.ok());
  EXPECT_EQ(from->BucketCount(), 3);
}

TEST(TimeBucketsTest, InvalidRangesNameTheField) {
  const absl::Time now = T("2024-03-05T10:20:00Z");
  auto backwards =
      MakeRange(T("2024-03-05T10:00:00Z"), T("2024-03-05T09:00:00Z"), BucketWidth::kHour, now);
  EXPECT_EQ(backwards.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(backwards.status().message(), "end_time: must be after start_time");
  auto empty =
      MakeRange(T("2024-03-05T10:00:00Z"), T("2024-03-05T10:00:00Z"), BucketWidth::kHour, now);
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
  auto future = MakeRange(T("2024-03-06T10:00:00Z"), std::nullopt, BucketWidth::kHour, now);
  EXPECT_EQ(future.status().message(), "start_time: must be before now");

  auto too_long_hours =
      MakeRange(T("2024-01-01T00:00:00Z"), T("2024-02-01T00:00:01Z"), BucketWidth::kHour, now);
  EXPECT_EQ(too_long_hours.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(too_long_hours.status().message(),
            "end_time: the range may span at most 31 days with interval HOUR");
  EXPECT_TRUE(
      MakeRange(T("2024-01-01T00:00:00Z"), T("2024-02-01T00:00:00Z"), BucketWidth::kHour, now)
          .ok());
  auto too_long_days =
      MakeRange(T("2023-01-01T00:00:00Z"), T("2024-03-01T00:00:00Z"), BucketWidth::kDay, now);
  EXPECT_EQ(too_long_days.status().message(),
            "end_time: the range may span at most 400 days with interval DAY");
  auto long_default = MakeRange(std::nullopt, T("2024-03-01T00:00:00Z"), BucketWidth::kDay, now);
  EXPECT_TRUE(long_default.ok());
}

TEST(TimeBucketsTest, SeriesIsZeroFilledAndSummedPerBucket) {
  auto r = MakeRange(T("2024-03-04T00:00:00Z"), T("2024-03-07T00:00:00Z"), BucketWidth::kDay,
                     T("2024-04-01T00:00:00Z"));
  ASSERT_TRUE(r.ok());
  auto series = FillSeries(*r, {{T("2024-03-03T23:00:00Z"), 100},  // before: ignored
                                {T("2024-03-04T00:00:00Z"), 1},
                                {T("2024-03-04T23:00:00Z"), 2},
                                {T("2024-03-06T05:00:00Z"), 7},
                                {T("2024-03-07T00:00:00Z"), 100}});  // after: ignored
  ASSERT_EQ(series.size(), 3u);
  EXPECT_EQ(series[0], std::make_pair(T("2024-03-04T00:00:00Z"), int64_t{3}));
  EXPECT_EQ(series[1], std::make_pair(T("2024-03-05T00:00:00Z"), int64_t{0}));
  EXPECT_EQ(series[2], std::make_pair(T("2024-03-06T00:00:00Z"), int64_t{7}));
}

TEST(TimeBucketsTest, HourSeriesHasOneBucketPerHour) {
  auto r = MakeRange(T("2024-03-05T22:00:00Z"), T("2024-03-06T02:00:00Z"), BucketWidth::kHour,
                     T("2024-04-01T00:00:00Z"));
  ASSERT_TRUE(r.ok());
  auto series = FillSeries(*r, {{T("2024-03-06T01:00:00Z"), 5}});
  ASSERT_EQ(series.size(), 4u);
  EXPECT_EQ(series[3].first, T("2024-03-06T01:00:00Z"));
  EXPECT_EQ(series[3].second, 5);
  EXPECT_EQ(series[0].second + series[1].second + series[2].second, 0);
}

}  // namespace
}  // namespace kurt::analytics
