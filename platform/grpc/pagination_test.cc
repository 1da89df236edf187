#include "platform/grpc/pagination.h"

#include "gtest/gtest.h"

namespace kurt::platform {
namespace {

TEST(PaginationTest, PageSizeDefaultsAndCaps) {
  EXPECT_EQ(*PageSize(0), 20);
  EXPECT_EQ(*PageSize(7), 7);
  EXPECT_EQ(*PageSize(1000), 100);
  EXPECT_EQ(PageSize(-1).status().message(), "page_size: must not be negative");
}

TEST(PaginationTest, PageTokensRoundTripAndRejectGarbage) {
  absl::Time t = absl::FromUnixMicros(1700000000123456);
  auto decoded = DecodePageToken(EncodePageToken(t, "key:with:colons"));
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->first, t);
  EXPECT_EQ(decoded->second, "key:with:colons");
  EXPECT_FALSE(DecodePageToken("not base64 !").has_value());
  EXPECT_FALSE(DecodePageToken(EncodePageToken(t, "x").substr(1)).has_value());
}

TEST(PaginationTest, ReadPageRequestChecksTheTokenAndItsKey) {
  auto first = ReadPageRequest(0, "", [](absl::string_view) { return true; });
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->size, 20);
  EXPECT_FALSE(first->after.has_value());

  absl::Time t = absl::FromUnixMicros(1700000000123456);
  auto next = ReadPageRequest(5, EncodePageToken(t, "abc"),
                              [](absl::string_view key) { return key == "abc"; });
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->size, 5);
  ASSERT_TRUE(next->after.has_value());
  EXPECT_EQ(next->after->time, t);
  EXPECT_EQ(next->after->key, "abc");

  auto bad_key = ReadPageRequest(5, EncodePageToken(t, "xyz"),
                                 [](absl::string_view key) { return key == "abc"; });
  EXPECT_EQ(bad_key.status().message(), "page_token: not a token from a previous page");
  EXPECT_EQ(ReadPageRequest(-1, "", [](absl::string_view) { return true; }).status().message(),
            "page_size: must not be negative");
}

TEST(PaginationTest, FinishPageDropsTheExtraRowAndPointsPastTheLastOne) {
  struct Row {
    int64_t micros;
    std::string id;
  };
  auto key_of = [](const Row& row) { return PageKey{absl::FromUnixMicros(row.micros), row.id}; };
  std::vector<Row> rows = {{3, "c"}, {2, "b"}, {1, "a"}};
  std::string token = FinishPage(&rows, 2, key_of);
  ASSERT_EQ(rows.size(), 2u);
  auto decoded = DecodePageToken(token);
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->first, absl::FromUnixMicros(2));
  EXPECT_EQ(decoded->second, "b");

  std::vector<Row> last = {{1, "a"}};
  EXPECT_EQ(FinishPage(&last, 2, key_of), "");
  EXPECT_EQ(last.size(), 1u);
}

}  // namespace
}  // namespace kurt::platform
