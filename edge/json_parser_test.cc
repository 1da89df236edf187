#include "edge/json_parser.h"

#include "edge/test_api.h"
#include "edge/test_things.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "kurt/testing/v1/echo.pb.h"

namespace kurt::edge {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::Message;
using kurt::testing::v1::Thing;

class JsonParserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    t_ = TestApi::Load();
    ASSERT_NE(t_.api, nullptr);
    thing_ = t_.api->pool().FindMessageTypeByName("kurt.testing.v1.Thing");
    ASSERT_NE(thing_, nullptr);
  }

  // The util parser's bytes for `json` (the reference), or nullopt when it refuses the body.
  std::optional<std::string> Util(const Descriptor* type, const std::string& json) {
    std::string out;
    google::protobuf::util::JsonParseOptions options;
    options.ignore_unknown_fields = false;
    auto s = google::protobuf::util::JsonToBinaryString(
        t_.api->resolver(), "type.googleapis.com/" + type->full_name(), json, &out, options);
    if (!s.ok()) {
      return std::nullopt;
    }
    return out;
  }

  std::unique_ptr<Message> Parsed(const Descriptor* type, const std::string& bytes) {
    std::unique_ptr<Message> m(t_.api->Prototype(type)->New());
    EXPECT_TRUE(m->ParseFromString(bytes));
    return m;
  }

  // The property every body must have: when JsonToWire takes it, the util parser takes it too
  // and makes the same message of it. Returns whether JsonToWire took it.
  bool AgreesWithUtil(const Descriptor* type, const std::string& json) {
    std::string ours;
    if (!JsonToWire(type, json, &ours)) {
      return false;
    }
    std::optional<std::string> util = Util(type, json);
    EXPECT_TRUE(util.has_value()) << "taken here, refused by the util parser: " << json;
    if (util.has_value()) {
      std::unique_ptr<Message> a = Parsed(type, ours);
      std::unique_ptr<Message> b = Parsed(type, *util);
      google::protobuf::util::MessageDifferencer differencer;
      std::string report;
      differencer.ReportDifferencesToString(&report);
      EXPECT_TRUE(differencer.Compare(*a, *b)) << json << "\n" << report;
    }
    return true;
  }

  TestApi t_;
  const Descriptor* thing_ = nullptr;
};

TEST_F(JsonParserTest, TakesUsualBodiesAsTheUtilParserReadsThem) {
  const std::vector<std::string> bodies = {
      R"({})",
      R"( { "id" : "plain" } )",
      "{\n\t\"id\":\"x\",\r\n\"count\":-7}",
      R"({"id":"quote \" back \\ slash \/ \b\f\n\r\t ctl \u0001 é \u00e9 \u2028 \ud83d\ude00"})",
      R"({"id":"é 😀 straight UTF-8"})",
      R"({"id":"nul \u0000 inside","title":"\uD83D\uDE00 upper-case hex"})",
      R"({"count":2147483647,"big":"-9223372036854775808","ubig":"18446744073709551615"})",
      R"({"count":-2147483648,"big":9007199254740993,"ubig":18446744073709551615})",
      R"({"count":"42","small":4294967295,"delta":-5,"fixed":"18446744073709551615"})",
      R"({"count":0,"big":"0","flag":false,"id":"","ratio":0})",
      R"({"flag":true,"ratio":1e300,"score":0.1})",
      R"({"ratio":-0.0,"score":-1.5e-3})",
      R"({"ratio":9007199254740992,"score":16777216})",
      R"({"ratio":123.456e-7,"score":3.4028234663852886e38})",
      R"({"color":"GREEN","colors":["RED",2,"COLOR_UNSPECIFIED"]})",
      R"({"inner":{"name":"n","values":[1,-2,"3"],"child":{"child":{"name":"deep"}}}})",
      R"({"inner":{}})",
      R"({"tags":["x","","y"],"bigs":["1",-2,9223372036854775807],"colors":[]})",
      R"({"when":"2024-01-01T00:00:00Z"})",
      R"({"when":"2024-01-01T12:34:56.123456789+02:00"})",
      R"({"when":"0001-01-01T00:00:00Z"})",
      R"({"maybeBig":"12","maybeName":"","maybeFlag":false})",
      R"({"maybe_big":0,"maybe_name":"n","maybe_flag":true})",
      R"({"title":"by json_name"})",
      R"({"display_name":"by proto name"})",
      R"({"labels":{"a":"1","":"empty key","é":"\u00e9"}})",
      R"({"labels":{}})",
      R"({"inners":[{"name":"a"},{},{"values":[7]}]})",
      R"({"choiceText":"t"})",
      R"({"choice_number":5})",
      R"({"display_name":"x","count":1,"inner":{"name":"y"},"tags":["z"]})",
  };
  for (const std::string& body : bodies) {
    EXPECT_TRUE(AgreesWithUtil(thing_, body)) << "declined: " << body;
  }
}

TEST_F(JsonParserTest, TakesTheCreateLinkBodiesOfTheApi) {
  const Descriptor* create =
      t_.api->pool().FindMessageTypeByName("kurt.links.v1.CreateLinkRequest");
  ASSERT_NE(create, nullptr);
  EXPECT_TRUE(AgreesWithUtil(create, R"({"targetUrl": "https://example.com/created"})"));
  EXPECT_TRUE(AgreesWithUtil(create, R"({"targetUrl":"https://example.com/a?b=c&d=%20",
      "alias":"spring-sale","tags":["a","b"],"expireTime":"2030-01-01T00:00:00Z",
      "maxClicks":100,"fallbackUrl":"https://example.com/f","forwardQuery":true})"));
  EXPECT_TRUE(AgreesWithUtil(create, R"({"target_url":"https://e.com","max_clicks":0})"));
}

// Bodies the util parser refuses (the client must see its error) and bodies it reads in ways the
// fast parser leaves to it: all declined.
TEST_F(JsonParserTest, DeclinesWhatItLeavesToTheUtilParser) {
  const std::vector<std::string> bodies = {
      "",
      "[]",
      "null",
      R"({"id":"x"} trailing)",
      R"({"id":"x",})",
      R"({"id":"x" "count":1})",
      R"({"id":'single'})",
      R"({id:"unquoted key"})",
      R"({"unknown":1})",
      R"({"Id":"case differs"})",
      R"({"id":null})",
      R"({"inner":null})",
      R"({"tags":[null]})",
      R"({"labels":{"a":null}})",
      R"({"id":"a","id":"twice"})",
      R"({"choiceText":"t","choiceNumber":1})",
      "{\"id\":\"a raw control \x01 character\"}",
      "{\"id\":\"bad utf-8 \xff\"}",
      R"({"id":"lone \ud83d surrogate"})",
      R"({"id":"lone \ude00 low"})",
      R"({"id":"bad \x escape"})",
      R"({"id":1})",
      R"({"count":2147483648})",
      R"({"count":1.0})",
      R"({"count":1e2})",
      R"({"count":"1.5"})",
      R"({"count":" 1"})",
      R"({"count":-0})",
      R"({"count":01})",
      R"({"count":+1})",
      R"({"small":-1})",
      R"({"ubig":18446744073709551616})",
      R"({"flag":"true"})",
      R"({"flag":1})",
      R"({"ratio":"NaN"})",
      R"({"ratio":"1.5"})",
      R"({"ratio":1e400})",
      R"({"ratio":9007199254740993})",
      R"({"score":3.5e38})",
      R"({"score":16777217})",
      R"({"color":"BLUE"})",
      R"({"color":42})",
      R"({"color":"green"})",
      R"({"blob":"AAEC"})",
      R"({"ttl":"1.5s"})",
      R"({"mask":"id,count"})",
      R"({"extra":{"a":1}})",
      R"({"when":"2024-01-01"})",
      R"({"when":"10000-01-01T00:00:00Z"})",
      R"({"when":1704067200})",
      R"({"maybeBig":{"value":"1"}})",
      R"({"inner":"not an object"})",
      R"({"inner":{"values":[[1]]}})",
      R"({"tags":"not an array"})",
      R"({"tags":["a",]})",
      R"({"labels":["a"]})",
      R"({"id":"unterminated)",
  };
  for (const std::string& body : bodies) {
    std::string out;
    EXPECT_FALSE(JsonToWire(thing_, body, &out)) << "taken: " << body;
  }
  std::string deep = R"({"inner":)";
  for (int i = 0; i < 40; ++i) {
    deep += R"({"child":)";
  }
  deep += "{}" + std::string(41, '}') + "}";
  std::string out;
  EXPECT_FALSE(JsonToWire(thing_, deep, &out)) << "deeper than 32";
}

// Random messages as the util printer writes them (both name styles, defaults printed or not),
// then the same with bytes changed at random: whatever the fast parser takes, the util parser
// takes and reads alike, and every unchanged body of the kinds it handles is taken.
TEST_F(JsonParserTest, RandomBodiesAgreeWithTheUtilParser) {
  RandomThings random(20261207);
  const std::string mutations = "{}[]\":,0-1e.\\ nu";
  int changed_taken = 0;
  for (int round = 0; round < 3000; ++round) {
    Thing thing = random.Thing(/*every_kind=*/false);
    google::protobuf::util::JsonPrintOptions print;
    print.preserve_proto_field_names = random.Pick(2);
    print.always_print_primitive_fields = random.Pick(2);
    print.add_whitespace = random.Pick(2);
    std::string json;
    ASSERT_TRUE(google::protobuf::util::MessageToJsonString(thing, &json, print).ok());
    EXPECT_TRUE(AgreesWithUtil(thing_, json)) << "declined: " << json;

    for (int m = 0; m < 4; ++m) {
      std::string changed = json;
      for (int edits = 1 + random.Pick(3); edits > 0 && !changed.empty(); --edits) {
        const size_t at = static_cast<size_t>(random.Pick(static_cast<int>(changed.size())));
        switch (random.Pick(3)) {
          case 0:
            changed[at] = mutations[random.Pick(static_cast<int>(mutations.size()))];
            break;
          case 1:
            changed.erase(at, 1);
            break;
          default:
            changed.insert(at, 1, mutations[random.Pick(static_cast<int>(mutations.size()))]);
        }
      }
      changed_taken += AgreesWithUtil(thing_, changed) ? 1 : 0;
    }
  }
  // About 900 of the 12,000 changed bodies are still valid and taken (about 1,050 are valid): the
  // agreement above was checked on many.
  EXPECT_GT(changed_taken, 500);
}

}  // namespace
}  // namespace kurt::edge
