#include "edge/json_printer.h"

#include <cmath>
#include <limits>

#include "edge/test_api.h"
#include "google/protobuf/util/json_util.h"
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

}  // namespace
}  // namespace kurt::edge
