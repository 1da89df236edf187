// AnalyticsRpcs with a fake stats store and a pinned clock: what it refuses (naming the field),
// what it asks the store, and how it shapes the answer.
#include "services/analytics/analytics_rpcs.h"

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace kurt::analytics {
namespace {

using platform::Caller;

absl::Time T(const char* rfc3339) {
  absl::Time t;
  std::string err;
  EXPECT_TRUE(absl::ParseTime(absl::RFC3339_full, rfc3339, &t, &err)) << err;
  return t;
}

void SetTime(absl::Time t, google::protobuf::Timestamp* out) {
  out->set_seconds(absl::ToUnixSeconds(t));
}

// Answers every read with `data` (or `status`) and keeps the last query.
class FakeStatsStore : public StatsStore {
 public:
  absl::StatusOr<StatsData> Read(const StatsQuery& query) override {
    ++reads;
    last = query;
    if (!status.ok()) {
      return status;
    }
    return data;
  }
  StatsData data;
  absl::Status status;
  std::optional<StatsQuery> last;
  int reads = 0;
};

class AnalyticsRpcsTest : public ::testing::Test {
 protected:
  absl::StatusOr<v1::LinkStats> Stats(const v1::GetLinkStatsRequest& request) {
    return rpcs_.GetLinkStats(Caller("alice"), request);
  }
  // HOUR stats of `abc` from 09:30 to 13:30 on 2024-03-05.
  static v1::GetLinkStatsRequest Hourly() {
    v1::GetLinkStatsRequest req;
    req.set_code("abc");
    req.set_interval(v1::HOUR);
    SetTime(T("2024-03-05T09:30:00Z"), req.mutable_start_time());
    SetTime(T("2024-03-05T13:30:00Z"), req.mutable_end_time());
    return req;
  }
  // The message of a refused request, which the store must not have seen.
  std::string Refusal(const v1::GetLinkStatsRequest& request) {
    const int reads = store_.reads;
    absl::StatusOr<v1::LinkStats> stats = Stats(request);
    EXPECT_EQ(stats.status().code(), absl::StatusCode::kInvalidArgument) << stats.status();
    EXPECT_EQ(store_.reads, reads) << "a refused request reached the store";
    return std::string(stats.status().message());
  }

  FakeStatsStore store_;
  AnalyticsRpcs rpcs_{&store_, [] { return T("2024-03-10T12:00:00Z"); }};
};

TEST_F(AnalyticsRpcsTest, ABadCodeIsRefusedNamingTheField) {
  v1::GetLinkStatsRequest req = Hourly();
  req.clear_code();
  EXPECT_EQ(Refusal(req), "code: required");
  req.set_code("x");
  EXPECT_EQ(Refusal(req), "code: must be 3 to 64 letters, digits, '-' or '_'");
  req.set_code("abc/def");
  EXPECT_TRUE(absl::StartsWith(Refusal(req), "code:"));
  req.set_code(std::string(65, 'a'));
  EXPECT_TRUE(absl::StartsWith(Refusal(req), "code:"));
}

TEST_F(AnalyticsRpcsTest, ABadTimeRangeIsRefusedNamingTheField) {
  v1::GetLinkStatsRequest req = Hourly();
  SetTime(T("2024-03-01T00:00:00Z"), req.mutable_end_time());
  EXPECT_EQ(Refusal(req), "end_time: must be after start_time");

  req = Hourly();
  SetTime(T("2024-01-01T00:00:00Z"), req.mutable_start_time());
  EXPECT_EQ(Refusal(req), "end_time: the range may span at most 31 days with interval HOUR");

  req = Hourly();
  req.mutable_start_time()->set_nanos(-1);
  EXPECT_EQ(Refusal(req), "start_time: not a valid timestamp");
  req = Hourly();
  req.mutable_end_time()->set_seconds(253402300800);  // 10000-01-01
  EXPECT_EQ(Refusal(req), "end_time: not a valid timestamp");

  // A start after "now" without an end.
  req = Hourly();
  req.clear_end_time();
  SetTime(T("2024-03-11T00:00:00Z"), req.mutable_start_time());
  EXPECT_EQ(Refusal(req), "start_time: must be before now");
}

TEST_F(AnalyticsRpcsTest, ABadIntervalOrLimitIsRefusedNamingTheField) {
  v1::GetLinkStatsRequest req = Hourly();
  req.set_interval(static_cast<v1::Interval>(7));
  EXPECT_EQ(Refusal(req), "interval: must be HOUR or DAY");
  req = Hourly();
  req.set_limit(101);
  EXPECT_EQ(Refusal(req), "limit: must be between 0 and 100 (0 means 10)");
  req.set_limit(-1);
  EXPECT_EQ(Refusal(req), "limit: must be between 0 and 100 (0 means 10)");
}

TEST_F(AnalyticsRpcsTest, AsksTheStoreForTheCallersLinkOverTheAlignedRange) {
  v1::GetLinkStatsRequest req = Hourly();
  ASSERT_TRUE(Stats(req).ok());
  ASSERT_TRUE(store_.last.has_value());
  EXPECT_EQ(store_.last->account_id, "alice");
  EXPECT_EQ(store_.last->code, "abc");
  EXPECT_EQ(store_.last->start, T("2024-03-05T09:00:00Z"));
  EXPECT_EQ(store_.last->end, T("2024-03-05T14:00:00Z"));
  EXPECT_EQ(store_.last->limit, 10);

  req.set_limit(3);
  ASSERT_TRUE(Stats(req).ok());
  EXPECT_EQ(store_.last->limit, 3);

  // Defaults: DAY over the 30 days before "now" (2024-03-10T12:00Z).
  v1::GetLinkStatsRequest defaults;
  defaults.set_code("abc");
  absl::StatusOr<v1::LinkStats> stats = Stats(defaults);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->interval(), v1::DAY);
  EXPECT_EQ(store_.last->start, T("2024-02-09T00:00:00Z"));
  EXPECT_EQ(store_.last->end, T("2024-03-11T00:00:00Z"));
  EXPECT_EQ(stats->series_size(), 31);
}

TEST_F(AnalyticsRpcsTest, MapsTheStoresDataIntoSeriesTotalsAndTops) {
  store_.data.hourly = {{T("2024-03-05T10:00:00Z"), 5},
                        {T("2024-03-05T13:00:00Z"), 1},
                        {T("2024-03-07T01:00:00Z"), 4}};  // outside the range
  store_.data.referrers = {{"news.example", 3}, {"", 2}, {"search.example", 1}};
  store_.data.agents = {{"Firefox", 4}, {"HTTP library", 2}};
  absl::StatusOr<v1::LinkStats> stats = Stats(Hourly());
  ASSERT_TRUE(stats.ok()) << stats.status();

  EXPECT_EQ(stats->code(), "abc");
  EXPECT_EQ(stats->interval(), v1::HOUR);
  EXPECT_EQ(stats->start_time().seconds(), absl::ToUnixSeconds(T("2024-03-05T09:00:00Z")));
  EXPECT_EQ(stats->start_time().nanos(), 0);
  EXPECT_EQ(stats->end_time().seconds(), absl::ToUnixSeconds(T("2024-03-05T14:00:00Z")));
  ASSERT_EQ(stats->series_size(), 5);  // 09, 10, 11, 12, 13, zeros filled in
  std::vector<int64_t> counts;
  for (const auto& bucket : stats->series()) {
    counts.push_back(bucket.clicks());
  }
  EXPECT_EQ(counts, (std::vector<int64_t>{0, 5, 0, 0, 1}));
  EXPECT_EQ(stats->series(1).start_time().seconds(),
            absl::ToUnixSeconds(T("2024-03-05T10:00:00Z")));
  EXPECT_EQ(stats->total_clicks(), 6);

  ASSERT_EQ(stats->top_referrers_size(), 3);
  EXPECT_EQ(stats->top_referrers(0).value(), "news.example");
  EXPECT_EQ(stats->top_referrers(0).clicks(), 3);
  EXPECT_EQ(stats->top_referrers(1).value(), "(direct)");  // no referrer
  EXPECT_EQ(stats->top_referrers(1).clicks(), 2);
  EXPECT_EQ(stats->top_referrers(2).value(), "search.example");
  ASSERT_EQ(stats->top_agents_size(), 2);
  EXPECT_EQ(stats->top_agents(0).value(), "Firefox");
  EXPECT_EQ(stats->top_agents(0).clicks(), 4);
  EXPECT_EQ(stats->top_agents(1).value(), "HTTP library");
}

TEST_F(AnalyticsRpcsTest, TheStoresErrorsPassThrough) {
  store_.status = absl::NotFoundError("no link with code 'abc'");
  absl::StatusOr<v1::LinkStats> stats = Stats(Hourly());
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(stats.status().message(), "no link with code 'abc'");
  store_.status = absl::UnavailableError("no database");
  EXPECT_EQ(Stats(Hourly()).status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace kurt::analytics
