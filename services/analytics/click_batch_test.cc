#include "services/analytics/click_batch.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "services/analytics/copy_rows_for_tests.h"
#include "services/common/link_code.h"

namespace kurt::analytics {
namespace {

constexpr int64_t kHour = 1709632800;  // 2024-03-05T10:00:00Z

kafka::Message Message(int32_t partition, int64_t offset, const std::string& code,
                       int64_t seconds = kHour, const std::string& referrer = "",
                       const std::string& ua = "", bool head = false,
                       const std::string& country = "") {
  events::v1::ClickEvent e;
  e.set_head(head);
  e.set_country(country);
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

// Decodes and adds every message (all must be valid clicks).
void AddAll(const std::vector<kafka::Message>& batch, BatchBuilder* builder) {
  events::v1::ClickEvent event;
  Click click;
  for (const auto& m : batch) {
    ASSERT_FALSE(DecodeClick(m, &event, &click).has_value());
    builder->Add(event, click, m.partition, m.offset);
  }
}

TEST(DecodeClickTest, DecodesAValidEvent) {
  kafka::Message m = Message(2, 42, "abc123", kHour + 2700, "https://News.Example/x", "curl/8.0");
  events::v1::ClickEvent event;
  Click click;
  ASSERT_FALSE(DecodeClick(m, &event, &click).has_value());
  EXPECT_EQ(event.code(), "abc123");
  EXPECT_EQ(event.event_id(), "e2-42");
  EXPECT_EQ(click.time_micros, (kHour + 2700) * 1000000 + 250000);
  EXPECT_EQ(click.hour, kHour);
  EXPECT_EQ(event.referrer(), "https://News.Example/x");
}

TEST(DecodeClickTest, RejectsWhatCannotBeCounted) {
  events::v1::ClickEvent event;
  Click click;
  kafka::Message garbage;
  garbage.value = "\xff\xff\xff\xff not a protobuf";
  auto r = DecodeClick(garbage, &event, &click);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->reason, RejectReason::kBadProtobuf);

  EXPECT_EQ(DecodeClick(Message(0, 0, ""), &event, &click)->reason, RejectReason::kUnknownCode);
  EXPECT_EQ(DecodeClick(Message(0, 0, "a b"), &event, &click)->reason, RejectReason::kUnknownCode);
  EXPECT_EQ(DecodeClick(Message(0, 0, std::string("abc\0def", 7)), &event, &click)->reason,
            RejectReason::kUnknownCode);

  events::v1::ClickEvent no_time;
  no_time.set_code("abc123");
  kafka::Message m;
  m.value = no_time.SerializeAsString();
  r = DecodeClick(m, &event, &click);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->reason, RejectReason::kInvalidEvent);
  EXPECT_EQ(r->detail, "the event has no time");

  EXPECT_EQ(DecodeClick(Message(0, 0, "abc123", int64_t{400000000000}), &event, &click)->reason,
            RejectReason::kInvalidEvent);
}

TEST(DecodeClickTest, CleansTextFields) {
  events::v1::ClickEvent e;
  e.set_code("abc123");
  e.mutable_time()->set_seconds(kHour);
  e.set_referrer(std::string("https://x.example/\0a", 20));
  // 511 ASCII bytes then a 2-byte character: the cut must not split it.
  e.set_user_agent(std::string(511, 'a') + "\xc3\xa9" + "tail");
  kafka::Message m;
  m.topic = "t";
  m.partition = 1;
  m.offset = 9;
  m.value = e.SerializeAsString();
  m.headers = {{"event-id", "from-header"}};
  events::v1::ClickEvent event;
  Click click;
  ASSERT_FALSE(DecodeClick(m, &event, &click).has_value());
  EXPECT_EQ(event.referrer(), "https://x.example/a");
  EXPECT_EQ(event.user_agent(), std::string(511, 'a'));
  EXPECT_EQ(event.event_id(), "from-header");

  m.headers.clear();
  ASSERT_FALSE(DecodeClick(m, &event, &click).has_value());
  EXPECT_EQ(event.event_id(), "t/1/9");

  // A header that is not UTF-8 cannot be stored as text: the fallback is used instead.
  m.headers = {{"event-id", "bad \xff\xfe id"}};
  ASSERT_FALSE(DecodeClick(m, &event, &click).has_value());
  EXPECT_EQ(event.event_id(), "t/1/9");
}

TEST(DecodeClickTest, HourOfTimesBeforeTheEpoch) {
  events::v1::ClickEvent event;
  Click click;
  ASSERT_FALSE(DecodeClick(Message(0, 0, "abc123", -1), &event, &click).has_value());
  EXPECT_EQ(click.hour, -3600);
}

TEST(BatchBuilderTest, SumsPerCodeHourAndDimensionSorted) {
  DimensionCache cache;
  BatchBuilder builder(&cache);
  AddAll({Message(0, 0, "bbb", kHour, "https://a.example/", "curl/1"),
          Message(0, 1, "aaa", kHour + 10, "", "Mozilla/5.0 Firefox/1"),
          Message(0, 2, "bbb", kHour + 3599, "https://a.example/x", "curl/2"),
          Message(0, 3, "bbb", kHour + 3600, "https://b.example/", "curl/3")},
         &builder);
  EXPECT_EQ(builder.rows(), 4);
  Aggregates a = builder.TakeAggregates();
  const int64_t h = kHour;
  EXPECT_EQ(a.hourly,
            (std::vector<HourlyCount>{{"aaa", h, 1}, {"bbb", h, 2}, {"bbb", h + 3600, 1}}));
  EXPECT_EQ(a.referrers,
            (std::vector<DimensionHourlyCount>{
                {"aaa", h, "", 1}, {"bbb", h, "a.example", 2}, {"bbb", h + 3600, "b.example", 1}}));
  EXPECT_EQ(a.agents, (std::vector<DimensionHourlyCount>{{"aaa", h, "Firefox", 1},
                                                         {"bbb", h, "HTTP library", 2},
                                                         {"bbb", h + 3600, "HTTP library", 1}}));
}

// The rows of `data`, which must decode.
std::vector<CopyRow> Rows(const std::string& data) {
  std::optional<std::vector<CopyRow>> rows = DecodeCopyRows(data);
  EXPECT_TRUE(rows.has_value()) << "not binary COPY tuples";
  return rows.value_or(std::vector<CopyRow>{});
}

TEST(BatchBuilderTest, CopyDataHasOneTuplePerClickWithEveryField) {
  DimensionCache cache;
  BatchBuilder builder(&cache);
  // Text goes as it is: binary COPY has no escapes.
  AddAll({Message(1, 7, "abc", kHour, "https://r.example/a\tb\\c", "UA\nnext\rline")}, &builder);
  std::string data = builder.TakeCopyData();
  const int64_t micros = kHour * 1000000 + 250000;
  EXPECT_EQ(Rows(data), (std::vector<CopyRow>{{"abc", micros, "e1-7", "https://r.example/a\tb\\c",
                                               "UA\nnext\rline", "h", 1, 7, false, ""}}));
  // The exact bytes PostgreSQL reads: a field count of 10, then each field's length and value;
  // the time in microseconds since 2000-01-01 UTC (2024-03-05 10:00:00.25 is 762948000250000).
  EXPECT_EQ(data.substr(0, 2 + 4 + 3 + 4 + 8),
            absl::StrCat(std::string("\0\x0a", 2), std::string("\0\0\0\x03", 4), "abc",
                         std::string("\0\0\0\x08", 4),
                         std::string("\x00\x02\xb5\xe5\xac\x89\x78\x90", 8)));
  EXPECT_EQ(builder.PendingCopyBytes(), 0u);
  AddAll({Message(1, 8, "abc"), Message(1, 9, "abc")}, &builder);
  std::vector<CopyRow> rows = Rows(builder.TakeCopyData());
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1], (CopyRow{"abc", micros, "e1-9", "", "", "h", 1, 9, false, ""}));
  EXPECT_EQ(builder.rows(), 3);
}

TEST(BatchBuilderTest, CountsBotsApartAndClicksPerCountry) {
  // No uap-core rules here (bot_classifier_test has them): a preview agent and HEAD make bots.
  DimensionCache cache;
  BatchBuilder builder(&cache);
  const std::string firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Firefox/121.0";
  AddAll({Message(0, 0, "aaa", kHour, "", firefox, false, "DE"),
          Message(0, 1, "aaa", kHour, "", "Twitterbot/1.0", false, "US"),
          Message(0, 2, "aaa", kHour, "", firefox, true, "DE"),
          Message(0, 3, "aaa", kHour, "", firefox, false, ""),
          // Not a country code: unknown.
          Message(0, 4, "aaa", kHour, "", firefox, false, "de"),
          // The older family heuristics call this Bot; these rules do not.
          Message(0, 5, "aaa", kHour, "", "SomeBot/1.0", false, "DE")},
         &builder);
  Aggregates a = builder.TakeAggregates();
  const int64_t h = kHour;
  EXPECT_EQ(a.hourly, (std::vector<HourlyCount>{{"aaa", h, 6, 2}}));
  EXPECT_EQ(a.countries, (std::vector<DimensionHourlyCount>{
                             {"aaa", h, "", 2}, {"aaa", h, "DE", 3}, {"aaa", h, "US", 1}}));
  EXPECT_EQ(a.agents, (std::vector<DimensionHourlyCount>{
                          {"aaa", h, "Bot", 2}, {"aaa", h, "Firefox", 3}, {"aaa", h, "Other", 1}}));
  std::vector<CopyRow> rows = Rows(builder.TakeCopyData());
  ASSERT_EQ(rows.size(), 6u);
  std::vector<std::pair<bool, std::string>> marks;
  marks.reserve(rows.size());
  for (const CopyRow& r : rows) {
    marks.emplace_back(r.bot, r.country);
  }
  EXPECT_EQ(
      marks,
      (std::vector<std::pair<bool, std::string>>{
          {false, "DE"}, {true, "US"}, {true, "DE"}, {false, ""}, {false, ""}, {false, "DE"}}));
}

TEST(BatchBuilderTest, CopyDataKeepsTimesBeforeTheEpochsAndLargeOffsets) {
  DimensionCache cache;
  BatchBuilder builder(&cache);
  // 1969-12-31 23:59:59.25, before both the Unix and PostgreSQL epochs.
  AddAll({Message(2147483647, int64_t{1} << 40, "abc", -1)}, &builder);
  std::vector<CopyRow> rows = Rows(builder.TakeCopyData());
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].time_micros, -1000000 + 250000);
  EXPECT_EQ(rows[0].partition, 2147483647);
  EXPECT_EQ(rows[0].offset, int64_t{1} << 40);
}

TEST(BatchBuilderTest, CopyDataComesInCodeThenTimeOrder) {
  DimensionCache cache;
  BatchBuilder builder(&cache);
  AddAll({Message(0, 0, "ccc", kHour + 5), Message(0, 1, "aaa", kHour + 9),
          Message(0, 2, "ccc", kHour + 1), Message(0, 3, "bbb", kHour),
          Message(0, 4, "aaa", kHour + 2), Message(0, 5, "aaa", kHour + 2)},
         &builder);
  std::vector<std::string> offsets;
  for (const CopyRow& row : Rows(builder.TakeCopyData())) {
    offsets.push_back(absl::StrCat(row.code, "@", row.offset));
  }
  // Equal keys keep their arrival order.
  EXPECT_EQ(offsets,
            (std::vector<std::string>{"aaa@4", "aaa@5", "aaa@1", "bbb@3", "ccc@2", "ccc@0"}));
  // Whatever is taken next is sorted on its own.
  AddAll({Message(0, 6, "bbb", kHour), Message(0, 7, "aaa", kHour)}, &builder);
  std::vector<CopyRow> rows = Rows(builder.TakeCopyData());
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].code, "aaa");
  EXPECT_EQ(builder.rows(), 8);
}

TEST(DecodeCopyRowsTest, RefusesCutOrForeignData) {
  DimensionCache cache;
  BatchBuilder builder(&cache);
  AddAll({Message(0, 0, "abc")}, &builder);
  std::string data = builder.TakeCopyData();
  EXPECT_FALSE(DecodeCopyRows(data.substr(0, data.size() - 1)).has_value());
  EXPECT_FALSE(DecodeCopyRows(CopyBinaryTrailer()).has_value());
  EXPECT_TRUE(DecodeCopyRows("").has_value());
}

TEST(CopyBinaryFramingTest, HeaderAndTrailerAreWhatPostgresExpects) {
  EXPECT_EQ(CopyBinaryHeader(), std::string("PGCOPY\n\xff\r\n\0"
                                            "\0\0\0\0"
                                            "\0\0\0\0",
                                            19));
  EXPECT_EQ(CopyBinaryTrailer(), std::string("\xff\xff", 2));
}

TEST(DimensionCacheTest, RemembersAndStaysBounded) {
  DimensionCache cache(2);
  EXPECT_EQ(cache.Agent("curl/8"), AgentFamily::kHttpLibrary);
  EXPECT_EQ(cache.Agent("curl/8"), AgentFamily::kHttpLibrary);
  EXPECT_EQ(cache.Host("https://a.example/"), "a.example");
  EXPECT_EQ(cache.Host("https://b.example/"), "b.example");
  EXPECT_EQ(cache.Host("https://c.example/"), "c.example");  // clears, then remembers
  EXPECT_EQ(cache.Host("https://a.example/"), "a.example");
  EXPECT_EQ(cache.Agent("Mozilla/5.0 Firefox/1"), AgentFamily::kFirefox);
  EXPECT_EQ(cache.Agent("Googlebot"), AgentFamily::kBot);
}

TEST(OffsetFenceTest, ComparesWithTheStoredOffsetOfEachMessagesPartition) {
  OffsetMap stored = {{{"clicks", 0}, 7}, {{"clicks", 2}, 3}};
  OffsetFence fence(stored);
  // Runs of partitions, switching back and forth.
  std::vector<kafka::Message> batch = {
      Message(0, 6, "aaa"), Message(0, 7, "aaa"), Message(1, 0, "aaa"), Message(2, 2, "aaa"),
      Message(2, 3, "aaa"), Message(0, 5, "aaa"), Message(1, 1, "aaa")};
  batch[6].topic = "other";  // same partition number, another topic: no stored offset
  std::vector<bool> is_new;
  is_new.reserve(batch.size());
  for (const auto& m : batch) {
    is_new.push_back(fence.IsNew(m));
  }
  EXPECT_EQ(is_new, (std::vector<bool>{false, true, true, false, true, false, true}));
}

TEST(PartitionsOfTest, SortedAndUnique) {
  std::vector<kafka::Message> batch = {Message(2, 0, "aaa"), Message(0, 0, "aaa"),
                                       Message(2, 1, "aaa"), Message(1, 0, "aaa"),
                                       Message(0, 1, "aaa")};
  std::vector<const kafka::Message*> pointers;
  pointers.reserve(batch.size());
  for (const kafka::Message& m : batch) {
    pointers.push_back(&m);
  }
  EXPECT_EQ(PartitionsOf(pointers),
            (std::vector<PartitionKey>{{"clicks", 0}, {"clicks", 1}, {"clicks", 2}}));
}

TEST(IsWellFormedCodeTest, Shapes) {
  using links::IsWellFormedCode;
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
