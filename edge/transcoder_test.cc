#include "edge/transcoder.h"

#include "edge/test_api.h"
#include "google/api/httpbody.pb.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"
#include "kurt/links/v1/links.pb.h"
#include "kurt/testing/v1/echo.pb.h"

namespace kurt::edge {
namespace {

using kurt::testing::v1::Thing;

class TranscoderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    api_ = TestApi::Load();
    ASSERT_NE(api_.routes, nullptr);
    transcoder_ = std::make_unique<Transcoder>(api_.api.get());
  }

  absl::StatusOr<std::string> Request(const char* method, const char* path, const char* query,
                                      absl::string_view body = "",
                                      absl::string_view content_type = "application/json") {
    std::vector<std::string> values;
    const Route& route = api_.Find(method, path, &values);
    return transcoder_->Request(route, values, query, body, content_type);
  }

  absl::StatusOr<Thing> RequestThing(const char* method, const char* path, const char* query,
                                     absl::string_view body = "") {
    absl::StatusOr<std::string> bytes = Request(method, path, query, body);
    if (!bytes.ok()) {
      return bytes.status();
    }
    Thing t;
    EXPECT_TRUE(t.ParseFromString(*bytes));
    return t;
  }

  TestApi api_;
  std::unique_ptr<Transcoder> transcoder_;
};

TEST_F(TranscoderTest, PathAndQueryIntoNestedAndRepeatedFields) {
  absl::StatusOr<Thing> t = RequestThing(
      "GET", "/v1/things/t%201",
      "count=3&big=-9000000000000000000&inner.name=n&inner.values=1&inner.values=2&tags=a&tags=b"
      "&colors=RED&colors=2&inner.child.color=GREEN&when=2024-01-01T00:00:00Z&ttl=2s"
      "&mask=title,inner.name&maybeBig=5&maybe_name=x&title=T&flag=true&blob=aGk%3D&score=0.5");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->id(), "t 1");
  EXPECT_EQ(t->count(), 3);
  EXPECT_EQ(t->big(), -9000000000000000000LL);
  EXPECT_EQ(t->inner().name(), "n");
  EXPECT_EQ(t->inner().values_size(), 2);
  EXPECT_EQ(t->tags_size(), 2);
  EXPECT_EQ(t->colors(1), kurt::testing::v1::GREEN);
  EXPECT_EQ(t->inner().child().color(), kurt::testing::v1::GREEN);
  EXPECT_EQ(t->when().seconds(), 1704067200);
  EXPECT_EQ(t->ttl().seconds(), 2);
  EXPECT_EQ(t->mask().paths(0), "title");
  EXPECT_EQ(t->maybe_big().value(), 5);
  EXPECT_EQ(t->maybe_name().value(), "x");
  EXPECT_EQ(t->display_name(), "T");
  EXPECT_TRUE(t->flag());
  EXPECT_EQ(t->blob(), "hi");
}

TEST_F(TranscoderTest, QueryErrorsNameTheParameter) {
  struct Case {
    const char* query;
    const char* expect;
  } cases[] = {
      {"count=abc", "\"count\""},
      {"nope=1", "\"nope\""},
      {"inner.nope=1", "\"inner.nope\""},
      {"id=x", "bound by the URL path"},
      {"inners.name=x", "\"inners.name\""},
      {"inners=x", "\"inners\""},
      {"color=PURPLE", "color"},
      {"labels=x", "labels"},
      {"count=%zz", "escape"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<Thing> t = RequestThing("GET", "/v1/things/x", c.query);
    ASSERT_FALSE(t.ok()) << c.query;
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(t.status().message().find(c.expect), std::string::npos) << t.status();
  }
}

TEST_F(TranscoderTest, BodyStar) {
  absl::StatusOr<Thing> t =
      RequestThing("POST", "/v1/things", "",
                   R"({"id":"a","display_name":"snake","big":"123","ubig":"5","color":"RED",
          "when":"2024-01-01T00:00:00Z","maybeFlag":false,"labels":{"k":"v"},
          "extra":{"x":[1,"y"]},"choiceNumber":4})");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->id(), "a");
  EXPECT_EQ(t->display_name(), "snake");
  EXPECT_EQ(t->big(), 123);
  EXPECT_EQ(t->labels().at("k"), "v");
  EXPECT_TRUE(t->has_maybe_flag());
  EXPECT_EQ(t->choice_number(), 4);
  EXPECT_EQ(t->extra().fields().at("x").list_value().values(1).string_value(), "y");

  // Both spellings, and an empty body is an empty message.
  EXPECT_EQ(RequestThing("POST", "/v1/things", "", R"({"title":"json"})")->display_name(), "json");
  EXPECT_TRUE(RequestThing("POST", "/v1/things", "", "")->id().empty());
}

TEST_F(TranscoderTest, BodyErrorsNameTheField) {
  struct Case {
    const char* body;
    const char* expect;
  } cases[] = {
      {R"({"nope":1})", "nope"},
      {R"({"count":"abc"})", "count"},
      {R"({"inner":{"values":["x"]}})", "values"},
      {R"({"color":"PURPLE"})", "color"},
      {R"({"when":"yesterday"})", "when"},
      {R"({"id":)", "JSON"},
      {R"([1,2])", "JSON"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<Thing> t = RequestThing("POST", "/v1/things", "", c.body);
    ASSERT_FALSE(t.ok()) << c.body;
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(t.status().message().find(c.expect), std::string::npos) << t.status();
  }
  EXPECT_FALSE(RequestThing("POST", "/v1/things", "count=1", "{}").ok());
}

TEST_F(TranscoderTest, BodyFieldWithPathBindingAndQuery) {
  absl::StatusOr<std::string> bytes =
      Request("PATCH", "/v1/things/t9", "updateMask=title,count", R"({"id":"ignored","count":2})");
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  kurt::testing::v1::UpdateThingRequest req;
  ASSERT_TRUE(req.ParseFromString(*bytes));
  EXPECT_EQ(req.thing().id(), "t9");  // the path wins over the body
  EXPECT_EQ(req.thing().count(), 2);
  EXPECT_EQ(req.update_mask().paths(0), "title");
  EXPECT_EQ(req.update_mask().paths(1), "count");
  EXPECT_FALSE(Request("PATCH", "/v1/things/t9", "thing.count=1", "{}").ok());
}

TEST_F(TranscoderTest, HttpBodyIn) {
  absl::StatusOr<std::string> bytes =
      Request("POST", "/v1/uploads/u1", "", std::string("a\0b", 3), "image/png");
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  kurt::testing::v1::UploadRequest req;
  ASSERT_TRUE(req.ParseFromString(*bytes));
  EXPECT_EQ(req.name(), "u1");
  EXPECT_EQ(req.content().content_type(), "image/png");
  EXPECT_EQ(req.content().data(), std::string("a\0b", 3));
}

TEST_F(TranscoderTest, ResponsesAsJson) {
  Thing t;
  t.set_id("x");
  t.set_big(1234567890123);
  t.set_color(kurt::testing::v1::RED);
  t.set_display_name("d");
  t.mutable_when()->set_seconds(1704067200);
  t.mutable_inner()->set_name("in");
  const Route& get = api_.Find("GET", "/v1/things/x", nullptr);
  absl::StatusOr<HttpPayload> p = transcoder_->Response(get, t.SerializeAsString());
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->content_type, "application/json");
  EXPECT_EQ(p->body, R"({"id":"x","big":"1234567890123","color":"RED","inner":{"name":"in"},)"
                     R"("when":"2024-01-01T00:00:00Z","title":"d"})");

  const Route& inner = api_.Find("GET", "/v1/things/x/inner", nullptr);
  p = transcoder_->Response(inner, t.SerializeAsString());
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->body, R"({"name":"in"})");
  p = transcoder_->Response(inner, "");
  EXPECT_EQ(p->body, "{}");
}

TEST_F(TranscoderTest, HttpBodyOutAndStreams) {
  google::api::HttpBody body;
  body.set_content_type("text/csv");
  body.set_data("a,b\n");
  const Route& download = api_.Find("GET", "/v1/downloads/x", nullptr);
  absl::StatusOr<HttpPayload> p = transcoder_->Response(download, body.SerializeAsString());
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->content_type, "text/csv");
  EXPECT_EQ(p->body, "a,b\n");

  kurt::testing::v1::WatchEvent e;
  e.set_event_id("e7");
  e.set_seq(7);
  const Route& watch = api_.Find("GET", "/v1/events:watch", nullptr);
  EXPECT_EQ(transcoder_->EventId(watch, e.SerializeAsString()), "e7");
  EXPECT_EQ(transcoder_->StreamMessage(watch, e.SerializeAsString())->body,
            R"({"eventId":"e7","seq":"7"})");
}

TEST_F(TranscoderTest, RedirectLocation) {
  kurt::testing::v1::GoResponse r;
  r.set_url("https://example.com/x");
  const Route& go = api_.Find("GET", "/t/abc", nullptr);
  EXPECT_EQ(Transcoder::Location(go, r.SerializeAsString()), "https://example.com/x");
  EXPECT_EQ(Transcoder::Location(go, ""), "");
  // Unknown query parameters on a redirect are someone's tracking, not an error.
  EXPECT_TRUE(Request("GET", "/t/abc", "utm_source=x").ok());
}

TEST_F(TranscoderTest, ErrorBodyWithDetails) {
  google::rpc::Status status;
  google::rpc::BadRequest bad;
  auto* v = bad.add_field_violations();
  v->set_field("target_url");
  v->set_description("must be http or https");
  status.add_details()->PackFrom(bad);
  google::protobuf::Any* unknown = status.add_details();
  unknown->set_type_url("type.googleapis.com/no.such.Type");
  unknown->set_value("zz");
  std::string body = transcoder_->ErrorBody(3, "bad \"url\"", status.SerializeAsString());
  EXPECT_EQ(body,
            R"({"code":3,"message":"bad \"url\"","details":[{"@type":"type.googleapis.com/)"
            R"(google.rpc.BadRequest","fieldViolations":[{"field":"target_url","description":)"
            R"("must be http or https"}]},{"@type":"type.googleapis.com/no.such.Type",)"
            R"("value":"eno="}]})");
  EXPECT_EQ(transcoder_->ErrorBody(5, "gone", ""), R"({"code":5,"message":"gone","details":[]})");
}

TEST_F(TranscoderTest, ARouteThatAcceptsFormsReadsAnHtmlFormsBodyAsItsFields) {
  // UnlockLink (HttpRedirect.accepts_form): what a browser posts, and JSON alike.
  for (const auto& [body, type] : std::vector<std::pair<std::string, std::string>>{
           {"password=open+s%C3%A9same%26", "application/x-www-form-urlencoded"},
           {"password=open+s%C3%A9same%26", "Application/X-WWW-Form-Urlencoded; charset=UTF-8"},
           {R"({"password":"open s\u00e9same&"})", "application/json"}}) {
    absl::StatusOr<std::string> bytes = Request("POST", "/abc1234", "", body, type);
    ASSERT_TRUE(bytes.ok()) << bytes.status();
    kurt::links::v1::UnlockLinkRequest r;
    ASSERT_TRUE(r.ParseFromString(*bytes));
    EXPECT_EQ(r.code(), "abc1234");
    EXPECT_EQ(r.password(), "open s\xC3\xA9same&");
  }
  absl::StatusOr<std::string> unknown =
      Request("POST", "/abc1234", "", "pass=x", "application/x-www-form-urlencoded");
  EXPECT_EQ(unknown.status().message(),
            "form field \"pass\": no such field in kurt.links.v1.UnlockLinkRequest");
  absl::StatusOr<std::string> bad =
      Request("POST", "/abc1234", "", "password=%zz", "application/x-www-form-urlencoded");
  EXPECT_TRUE(absl::IsInvalidArgument(bad.status())) << bad.status();
  // Other routes take no form: it is read as JSON, and is none.
  absl::StatusOr<std::string> elsewhere =
      Request("POST", "/v1/links", "", "targetUrl=https%3A%2F%2Fexample.com",
              "application/x-www-form-urlencoded");
  EXPECT_TRUE(absl::IsInvalidArgument(elsewhere.status())) << elsewhere.status();
}

TEST_F(TranscoderTest, ARedirectRoutesPageAndAnErrorsPageAreFound) {
  std::vector<std::string> values;
  const Route& resolve = api_.Find("GET", "/abc1234", &values);
  kurt::links::v1::ResolveResponse response;
  response.mutable_page()->set_content_type("text/html; charset=utf-8");
  response.mutable_page()->set_data("<p>form</p>");
  HttpPayload page;
  ASSERT_TRUE(Transcoder::Page(resolve, response.SerializeAsString(), &page));
  EXPECT_EQ(page.content_type, "text/html; charset=utf-8");
  EXPECT_EQ(page.body, "<p>form</p>");
  response.clear_page();
  response.set_target_url("https://example.com/");
  EXPECT_FALSE(Transcoder::Page(resolve, response.SerializeAsString(), &page));

  google::rpc::Status status;
  status.set_code(16);
  google::api::HttpBody body;
  body.set_content_type("text/html");
  body.set_data("wrong");
  status.add_details()->PackFrom(google::rpc::RetryInfo());
  status.add_details()->PackFrom(body);
  ASSERT_TRUE(Transcoder::ErrorPage(status.SerializeAsString(), &page));
  EXPECT_EQ(page.body, "wrong");
  status.mutable_details()->RemoveLast();
  EXPECT_FALSE(Transcoder::ErrorPage(status.SerializeAsString(), &page));
}

}  // namespace
}  // namespace kurt::edge
