#include "services/analytics/click_batch.h"

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace kurt::analytics {
namespace {

kafka::Message Click(int32_t partition, int64_t offset, const std::string& code,
                     int64_t seconds = 1709632800 /* 2024-03-05T10:00:00Z */,
                     const std::string& referrer = "", const std::string& ua = "") {
  events::v1::ClickEvent e;
  e.set_event_id(absl::StrCat("e", partition, "-", offset));
  e.set_code(code);
  e.mutable_time()->set_seconds(seconds);
  e.mutable_time()->set_nanos(250000000);
  e.set_referrer(referrer);
  e.set_user_agent(ua);
  e.set_client_hash("h");
  kafka::Message m;
  m.topic = "clicks";
  m.partition = partition;
  m.offset = offset;
  m.key = code;
  m.value = e.SerializeAsString();
  return m;
}

std::vector<Decoded> DecodeAll(const std::vector<kafka::Message>& batch) {
  events::v1::ClickEvent scratch;
  std::vector<Decoded> out;
  for (const auto& m : batch) out.push_back(DecodeClick(m, &scratch));
  return out;
}

auto KnownAll = [](const std::string&) { return true; };

TEST(DecodeClickTest, DecodesAValidEvent) {
  kafka::Message m =
      Click(2, 42, "abc123", 1709635500, "https://News.Example/x", "curl/8.0");  // 10:45
  events::v1::ClickEvent scratch;
  Decoded d = DecodeClick(m, &scratch);
  ASSERT_TRUE(d.row.has_value());
  EXPECT_EQ(d.row->code, "abc123");
  EXPECT_EQ(d.row->event_id, "e2-42");
  EXPECT_EQ(d.row->time_micros, int64_t{1709635500} * 1000000 + 250000);
  EXPECT_EQ(d.row->hour, 1709632800);
  EXPECT_EQ(d.row->referrer, "https://News.Example/x");
  EXPECT_EQ(d.row->referrer_host, "news.example");
  EXPECT_EQ(d.row->agent, AgentFamily::kHttpLibrary);
  EXPECT_EQ(d.row->partition, 2);
  EXPECT_EQ(d.row->offset, 42);
}

TEST(DecodeClickTest, RejectsWhatCannotBeCounted) {
  events::v1::ClickEvent scratch;
  kafka::Message garbage;
  garbage.value = "\xff\xff\xff\xff not a protobuf";
  EXPECT_EQ(DecodeClick(garbage, &scratch).reason, RejectReason::kBadProtobuf);
  EXPECT_FALSE(DecodeClick(garbage, &scratch).row);

  kafka::Message no_code = Click(0, 0, "");
  EXPECT_EQ(DecodeClick(no_code, &scratch).reason, RejectReason::kUnknownCode);
  kafka::Message bad_code = Click(0, 0, "a b");
  EXPECT_EQ(DecodeClick(bad_code, &scratch).reason, RejectReason::kUnknownCode);
  kafka::Message nul_code = Click(0, 0, std::string("abc\0def", 7));
  EXPECT_EQ(DecodeClick(nul_code, &scratch).reason, RejectReason::kUnknownCode);

  events::v1::ClickEvent no_time;
  no_time.set_code("abc123");
  kafka::Message m;
  m.value = no_time.SerializeAsString();
  Decoded d = DecodeClick(m, &scratch);
  EXPECT_EQ(d.reason, RejectReason::kInvalidEvent);
  EXPECT_EQ(d.detail, "the event has no time");

  kafka::Message far_future = Click(0, 0, "abc123", int64_t{400000000000});
  EXPECT_EQ(DecodeClick(far_future, &scratch).reason, RejectReason::kInvalidEvent);
}

TEST(DecodeClickTest, CleansTextFields) {
  events::v1::ClickEvent e;
  e.set_code("abc123");
  e.mutable_time()->set_seconds(1709632800);
  e.set_referrer(std::string("https://x.example/\0a", 20));
  // 511 ASCII bytes then a 2-byte character: the cut must not split it.
  e.set_user_agent(std::string(511, 'a') + "\xc3\xa9" + "tail");
  kafka::Message m;
  m.topic = "t";
  m.partition = 1;
  m.offset = 9;
  m.value = e.SerializeAsString();
  m.headers = {{"event-id", "from-header"}};
  events::v1::ClickEvent scratch;
  Decoded d = DecodeClick(m, &scratch);
  ASSERT_TRUE(d.row);
  EXPECT_EQ(d.row->referrer, "https://x.example/a");
  EXPECT_EQ(d.row->user_agent, std::string(511, 'a'));
  EXPECT_EQ(d.row->event_id, "from-header");

  m.headers.clear();
  d = DecodeClick(m, &scratch);
  ASSERT_TRUE(d.row);
  EXPECT_EQ(d.row->event_id, "t/1/9");
}

TEST(DecodeClickTest, HourOfTimesBeforeTheEpoch) {
  events::v1::ClickEvent scratch;
  Decoded d = DecodeClick(Click(0, 0, "abc123", -1), &scratch);
  ASSERT_TRUE(d.row);
  EXPECT_EQ(d.row->hour, -3600);
}

TEST(AggregateTest, SumsPerCodeHourAndDimensionSorted) {
  std::vector<kafka::Message> batch = {
      Click(0, 0, "bbb", 1709632800, "https://a.example/", "curl/1"),
      Click(0, 1, "aaa", 1709632800 + 10, "", "Mozilla/5.0 Firefox/1"),
      Click(0, 2, "bbb", 1709632800 + 3599, "https://a.example/x", "curl/2"),
      Click(0, 3, "bbb", 1709632800 + 3600, "https://b.example/", "curl/3"),
  };
  std::vector<Decoded> decoded = DecodeAll(batch);
  BatchPlan plan = PlanBatch(batch, decoded, {}, KnownAll);
  ASSERT_EQ(plan.rows.size(), 4u);
  const int64_t h = 1709632800;
  EXPECT_EQ(plan.aggregates.hourly, (std::vector<HourlyCount>{
                                        {"aaa", h, 1}, {"bbb", h, 2}, {"bbb", h + 3600, 1}}));
  EXPECT_EQ(plan.aggregates.referrers,
            (std::vector<DimensionHourlyCount>{{"aaa", h, "", 1},
                                               {"bbb", h, "a.example", 2},
                                               {"bbb", h + 3600, "b.example", 1}}));
  EXPECT_EQ(plan.aggregates.agents,
            (std::vector<DimensionHourlyCount>{{"aaa", h, "Firefox", 1},
                                               {"bbb", h, "HTTP library", 2},
                                               {"bbb", h + 3600, "HTTP library", 1}}));
  EXPECT_EQ(plan.next_offsets, (OffsetMap{{{"clicks", 0}, 4}}));
  EXPECT_EQ(plan.duplicates, 0);
}

TEST(PlanBatchTest, SkipsOffsetsBelowTheStoredOnes) {
  std::vector<kafka::Message> batch = {Click(0, 5, "aaa"), Click(0, 6, "aaa"),
                                       Click(1, 3, "bbb"), Click(0, 7, "aaa"),
                                       Click(1, 4, "bbb"), Click(2, 0, "ccc")};
  std::vector<Decoded> decoded = DecodeAll(batch);
  // Partition 0 was handled up to 6 by someone else, partition 1 entirely; 2 is new.
  OffsetMap stored = {{{"clicks", 0}, 7}, {{"clicks", 1}, 10}};
  BatchPlan plan = PlanBatch(batch, decoded, stored, KnownAll);
  ASSERT_EQ(plan.rows.size(), 2u);
  EXPECT_EQ(plan.rows[0].offset, 7);
  EXPECT_EQ(plan.rows[1].code, "ccc");
  EXPECT_EQ(plan.duplicates, 4);
  // Partition 1 is not touched: nothing of it was handled here.
  EXPECT_EQ(plan.next_offsets, (OffsetMap{{{"clicks", 0}, 8}, {{"clicks", 2}, 1}}));
  EXPECT_EQ(plan.aggregates.hourly.size(), 2u);
}

TEST(PlanBatchTest, DeadLettersRejectsAndUnknownCodesButAdvancesPastThem) {
  kafka::Message garbage;
  garbage.topic = "clicks";
  garbage.partition = 0;
  garbage.offset = 1;
  garbage.value = "\xff\xff";
  std::vector<kafka::Message> batch = {Click(0, 0, "known"), garbage, Click(0, 2, "ghost"),
                                       Click(0, 3, "known")};
  std::vector<Decoded> decoded = DecodeAll(batch);
  auto known = [](const std::string& code) { return code == "known"; };
  BatchPlan plan = PlanBatch(batch, decoded, {}, known);
  EXPECT_EQ(plan.rows.size(), 2u);
  ASSERT_EQ(plan.dead_letters.size(), 2u);
  EXPECT_EQ(plan.dead_letters[0].message, &batch[1]);
  EXPECT_EQ(plan.dead_letters[0].reason, RejectReason::kBadProtobuf);
  EXPECT_EQ(plan.dead_letters[1].message, &batch[2]);
  EXPECT_EQ(plan.dead_letters[1].reason, RejectReason::kUnknownCode);
  EXPECT_EQ(plan.dead_letters[1].detail, "no link with code 'ghost'");
  EXPECT_EQ(plan.next_offsets, (OffsetMap{{{"clicks", 0}, 4}}));
  EXPECT_EQ(plan.aggregates.hourly, (std::vector<HourlyCount>{{"known", 1709632800, 2}}));
}

TEST(PlanBatchTest, AlreadyCountedRejectsAreNotDeadLetteredAgain) {
  kafka::Message garbage;
  garbage.topic = "clicks";
  garbage.value = "\xff\xff";
  std::vector<kafka::Message> batch = {garbage};
  std::vector<Decoded> decoded = DecodeAll(batch);
  BatchPlan plan = PlanBatch(batch, decoded, {{{"clicks", 0}, 1}}, KnownAll);
  EXPECT_TRUE(plan.dead_letters.empty());
  EXPECT_EQ(plan.duplicates, 1);
  EXPECT_TRUE(plan.next_offsets.empty());
}

TEST(CodesToCheckTest, NewDecodedUnknownCodesOnce) {
  kafka::Message garbage;
  garbage.topic = "clicks";
  garbage.offset = 9;
  garbage.value = "\xff";
  std::vector<kafka::Message> batch = {Click(0, 1, "old"), Click(0, 5, "zzz"), Click(0, 6, "aaa"),
                                       Click(0, 7, "zzz"), Click(0, 8, "cached"), garbage};
  std::vector<Decoded> decoded = DecodeAll(batch);
  auto known = [](const std::string& code) { return code == "cached"; };
  EXPECT_EQ(CodesToCheck(batch, decoded, {{{"clicks", 0}, 5}}, known),
            (std::vector<std::string>{"aaa", "zzz"}));
}

TEST(PartitionsOfTest, SortedAndUnique) {
  std::vector<kafka::Message> batch = {Click(2, 0, "aaa"), Click(0, 0, "aaa"), Click(2, 1, "aaa"),
                                       Click(1, 0, "aaa"), Click(0, 1, "aaa")};
  EXPECT_EQ(PartitionsOf(batch),
            (std::vector<PartitionKey>{{"clicks", 0}, {"clicks", 1}, {"clicks", 2}}));
}

TEST(FormatTimestampMicrosTest, PostgresText) {
  EXPECT_EQ(FormatTimestampMicros(0), "1970-01-01 00:00:00.000000+00");
  EXPECT_EQ(FormatTimestampMicros(int64_t{1709635500} * 1000000 + 123456),
            "2024-03-05 10:45:00.123456+00");
  EXPECT_EQ(FormatTimestampMicros(-1), "1969-12-31 23:59:59.999999+00");
  EXPECT_EQ(FormatTimestampMicros(int64_t{-62135596800} * 1000000),
            "0001-01-01 00:00:00.000000+00");
}

TEST(IsWellFormedCodeTest, Shapes) {
  EXPECT_TRUE(IsWellFormedCode("abc"));
  EXPECT_TRUE(IsWellFormedCode("A-b_9"));
  EXPECT_TRUE(IsWellFormedCode(std::string(64, 'x')));
  EXPECT_FALSE(IsWellFormedCode("ab"));
  EXPECT_FALSE(IsWellFormedCode(std::string(65, 'x')));
  EXPECT_FALSE(IsWellFormedCode("abc/"));
  EXPECT_FALSE(IsWellFormedCode("äbc"));
}

}  // namespace
}  // namespace kurt::analytics
