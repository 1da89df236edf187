#include "edge/json_printer.h"

#include <cmath>
#include <limits>
#include <optional>

#include "absl/strings/escaping.h"
#include "edge/field_encoding.h"
#include "edge/test_api.h"
#include "edge/test_things.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "kurt/testing/v1/echo.pb.h"

namespace kurt::edge {
namespace {

using kurt::testing::v1::Thing;

// What protobuf's util printer makes of the same bytes: the reference.
std::string UtilJson(const ApiDescriptors& api, const std::string& bytes) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  auto s = google::protobuf::util::BinaryToJsonString(
      api.resolver(), "type.googleapis.com/kurt.testing.v1.Thing", bytes, &json, options);
  EXPECT_TRUE(s.ok()) << s.message();
  return json;
}

std::string OurJson(const ApiDescriptors& api, const std::string& bytes) {
  const auto* type = api.pool().FindMessageTypeByName("kurt.testing.v1.Thing");
  std::unique_ptr<google::protobuf::Message> m(api.Prototype(type)->New());
  EXPECT_TRUE(m->ParseFromString(bytes));
  std::string json;
  EXPECT_TRUE(PrintJson(*m, &json));
  return json;
}

TEST(JsonPrinterTest, MatchesTheUtilPrinter) {
  TestApi t = TestApi::Load();
  ASSERT_NE(t.api, nullptr);
  std::vector<Thing> things(6);
  things[0].set_id("plain");
  Thing& a = things[1];
  a.set_id("quote \" back \\ nl \n tab \t ctl \x01 html <a&b>' ls \xE2\x80\xA8 utf8 é 😀");
  a.set_count(-7);
  a.set_big(-9223372036854775807LL - 1);
  a.set_ubig(18446744073709551615ULL);
  a.set_flag(true);
  a.set_ratio(1e300);
  a.set_score(0.1f);
  a.set_color(kurt::testing::v1::GREEN);
  a.set_blob(std::string("\0\xff\x10", 3));
  a.mutable_inner()->set_name("n");
  a.mutable_inner()->add_values(1);
  a.mutable_inner()->add_values(-2);
  a.mutable_inner()->mutable_child();  // set but empty
  a.add_tags("x");
  a.add_tags("");
  a.add_colors(kurt::testing::v1::RED);
  a.add_colors(static_cast<kurt::testing::v1::Color>(42));  // unknown number
  a.add_bigs(0);
  a.mutable_when()->set_seconds(1704067200);
  a.mutable_when()->set_nanos(123000);
  a.mutable_ttl()->set_seconds(-3);
  a.mutable_ttl()->set_nanos(-500000000);
  a.mutable_mask()->add_paths("display_name");
  a.mutable_mask()->add_paths("inner.child.name");
  a.mutable_maybe_big()->set_value(0);
  a.mutable_maybe_name()->set_value("w");
  a.mutable_maybe_flag()->set_value(false);
  a.set_display_name("t");
  (*a.mutable_labels())["k"] = "v";
  a.add_inners()->set_color(kurt::testing::v1::RED);
  auto* fields = a.mutable_extra()->mutable_fields();
  (*fields)["n"].set_number_value(2.5);
  (*fields)["s"].set_string_value("str");
  (*fields)["b"].set_bool_value(true);
  (*fields)["z"].set_null_value(google::protobuf::NULL_VALUE);
  auto* list = (*fields)["l"].mutable_list_value();
  list->add_values()->set_number_value(1);
  list->add_values()->mutable_struct_value();
  a.set_choice_text("");
  a.set_delta(-5);
  a.set_fixed(9);
  a.set_small(4000000000u);
  things[2].set_score(std::numeric_limits<float>::quiet_NaN());
  things[2].set_ratio(-std::numeric_limits<double>::infinity());
  things[3].set_choice_number(0);
  things[3].mutable_when();  // the epoch
  things[4].set_ratio(-0.0);
  things[4].set_score(3.4028235e38f);
  things[5].add_inners();
  things[5].mutable_ttl()->set_nanos(1);
  for (const Thing& thing : things) {
    std::string bytes = thing.SerializeAsString();
    EXPECT_EQ(OurJson(*t.api, bytes), UtilJson(*t.api, bytes)) << thing.DebugString();
  }
}

// Whether PrintJsonFromWire took `bytes`; when it did, the parse takes them too and PrintJson
// prints the parsed message exactly as PrintJsonFromWire printed the bytes.
bool WireAgrees(const ApiDescriptors& api, const std::string& bytes) {
  const auto* type = api.pool().FindMessageTypeByName("kurt.testing.v1.Thing");
  std::string wire;
  if (!PrintJsonFromWire(type, bytes, &wire)) {
    return false;
  }
  std::unique_ptr<google::protobuf::Message> m(api.Prototype(type)->New());
  EXPECT_TRUE(m->ParseFromString(bytes)) << "printed from the wire, refused by the parse";
  std::string parsed;
  EXPECT_TRUE(PrintJson(*m, &parsed));
  EXPECT_EQ(wire, parsed);
  return true;
}

TEST(JsonPrinterTest, FromTheWirePrintsWhatTheParsedPathPrints) {
  TestApi t = TestApi::Load();
  ASSERT_NE(t.api, nullptr);
  auto encoded = [](auto&&... pieces) {
    std::string bytes;
    (pieces(&bytes), ...);
    return bytes;
  };
  auto varint = [](int field, uint64_t v) {
    return [=](std::string* out) { AppendVarintField(field, v, out); };
  };
  auto bytes = [](int field, const std::string& v) {
    return [=](std::string* out) { AppendLengthDelimited(field, v, out); };
  };
  const std::vector<std::string> cases = {
      "",
      // Explicit defaults of implicit-presence fields are not printed; oneof members are.
      encoded(varint(2, 0), bytes(1, ""), varint(5, 0), varint(8, 0), varint(25, 0)),
      // The last of a singular scalar wins; fields out of order print in declaration order.
      encoded(varint(2, 5), bytes(1, "a"), varint(2, 6), bytes(20, "t")),
      // Repeated scalars unpacked, packed, both, and an empty packed run.
      encoded(varint(13, 1), varint(13, 2)),
      encoded(bytes(13, "\x01\x02"), varint(13, 3), bytes(13, "")),
      encoded(bytes(13, "")),
      // Repeated fields interleaved with others.
      encoded(bytes(11, "x"), varint(2, 1), bytes(11, "y")),
      // Two oneof members: the one set last.
      encoded(bytes(24, "t"), varint(25, 3)),
      encoded(varint(25, 3), bytes(24, "t")),
      // Map entries without key or value, and a key given twice.
      encoded(bytes(21, ""), bytes(21, encoded(bytes(1, "k"))), bytes(21, encoded(bytes(2, "v")))),
      encoded(bytes(21, encoded(bytes(1, "k"), bytes(2, "1"))),
              bytes(21, encoded(bytes(1, "k"), bytes(2, "2")))),
      // Unknown fields, of every wire type.
      encoded(varint(1000, 7), bytes(1001, "zz"), bytes(1, "id"),
              [](std::string* out) { out->append("\xcd\x3e\x01\x02\x03\x04", 6); }),
      // Negative int32 and enum numbers, an unknown enum number, a negative zero.
      encoded(varint(2, static_cast<uint64_t>(-1)), varint(8, 42),
              [](std::string* out) { out->append("\x31\x00\x00\x00\x00\x00\x00\x00\x80", 9); }),
      // An empty message, and wrappers holding their default.
      encoded(bytes(10, ""), bytes(17, ""), bytes(18, ""), bytes(19, ""), bytes(14, "")),
  };
  for (const std::string& c : cases) {
    EXPECT_TRUE(WireAgrees(*t.api, c)) << "declined: " << absl::CEscape(c);
  }
  // What it leaves to the parsed path: malformed bytes, a wrong wire type, a singular message
  // given twice (merged), a string that is not UTF-8, a FieldMask.
  const std::vector<std::string> declined = {
      "\x0a\x05\x61\x62",  // a string of 5 bytes holding 2 ("ab")
      "\x08",
      encoded(varint(1, 3)),
      encoded(bytes(10, encoded(bytes(1, "a"))), bytes(10, encoded(varint(3, 1)))),
      encoded(bytes(1, "\xff")),
      encoded(bytes(16, encoded(bytes(1, "a")))),
      "\x0b\x0c",  // a group
      // A tag and a length in more than the 5 bytes a parse takes.
      std::string("\x90\x80\x80\x80\x80\x00\x05", 7),
      std::string("\x0a\x81\x80\x80\x80\x80\x00\x61", 8),
  };
  const auto* type = t.api->pool().FindMessageTypeByName("kurt.testing.v1.Thing");
  for (const std::string& d : declined) {
    std::string out;
    EXPECT_FALSE(PrintJsonFromWire(type, d, &out)) << "taken: " << absl::CEscape(d);
  }
}

// Random messages, then several concatenated (a parse merges them: later scalars win, repeated
// fields append, oneof members replace each other), then bytes changed at random: whatever
// PrintJsonFromWire takes, it prints as the parsed path does; every single message is taken.
TEST(JsonPrinterTest, FromTheWireAgreesOnRandomBytes) {
  TestApi t = TestApi::Load();
  ASSERT_NE(t.api, nullptr);
  RandomThings random(20261207);
  int merged_taken = 0;
  int changed_taken = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string bytes = random.Thing(/*every_kind=*/true).SerializeAsString();
    EXPECT_TRUE(WireAgrees(*t.api, bytes)) << "declined: " << absl::CEscape(bytes);
    for (int i = 1 + random.Pick(2); i > 0; --i) {
      bytes += random.Thing(/*every_kind=*/true).SerializeAsString();
    }
    merged_taken += WireAgrees(*t.api, bytes) ? 1 : 0;
    for (int m = 0; m < 4 && !bytes.empty(); ++m) {
      std::string changed = bytes;
      for (int edits = 1 + random.Pick(3); edits > 0 && !changed.empty(); --edits) {
        const size_t at = static_cast<size_t>(random.Pick(static_cast<int>(changed.size())));
        switch (random.Pick(3)) {
          case 0:
            changed[at] = static_cast<char>(random.Bits());
            break;
          case 1:
            changed.erase(at, 1);
            break;
          default:
            changed.insert(at, 1, static_cast<char>(random.Bits()));
        }
      }
      changed_taken += WireAgrees(*t.api, changed) ? 1 : 0;
    }
  }
  // Merged messages are declined when two set the same message field; changed bytes are mostly
  // malformed (about 270 of the 12,000 are taken). Both still leave many checked.
  EXPECT_GT(merged_taken, 300);
  EXPECT_GT(changed_taken, 150);
}

// Timestamps are written by the printers themselves: the same text as the util printer's across
// the whole range, with each precision of nanos.
TEST(JsonPrinterTest, TimestampsAsTheUtilPrinterWritesThem) {
  TestApi t = TestApi::Load();
  ASSERT_NE(t.api, nullptr);
  std::vector<int64_t> seconds = {google::protobuf::util::TimeUtil::kTimestampMinSeconds,
                                  google::protobuf::util::TimeUtil::kTimestampMaxSeconds,
                                  0,
                                  -1,
                                  1,
                                  86399,
                                  86400,
                                  -86400,
                                  -86401,
                                  951782400,     // 2000-02-29
                                  4107542399,    // 2100-02-28T23:59:59
                                  -2208988800};  // 1900-01-01
  RandomThings random(42);
  for (int i = 0; i < 2000; ++i) {
    const auto span = static_cast<uint64_t>(google::protobuf::util::TimeUtil::kTimestampMaxSeconds -
                                            google::protobuf::util::TimeUtil::kTimestampMinSeconds);
    seconds.push_back(google::protobuf::util::TimeUtil::kTimestampMinSeconds +
                      static_cast<int64_t>(random.Bits() % (span + 1)));
  }
  const std::vector<int32_t> nanos = {0, 1, 999'999'999, 5'000'000, 120'000, 123'456'789};
  for (size_t i = 0; i < seconds.size(); ++i) {
    Thing thing;
    thing.mutable_when()->set_seconds(seconds[i]);
    thing.mutable_when()->set_nanos(nanos[i % nanos.size()]);
    const std::string bytes = thing.SerializeAsString();
    const std::string util = UtilJson(*t.api, bytes);
    EXPECT_EQ(OurJson(*t.api, bytes), util);
    const auto* type = t.api->pool().FindMessageTypeByName("kurt.testing.v1.Thing");
    std::string wire;
    EXPECT_TRUE(PrintJsonFromWire(type, bytes, &wire));
    EXPECT_EQ(wire, util);
  }
}

}  // namespace
}  // namespace kurt::edge
