// Limits on a link (valid_since, expire_time, max_clicks, a fallback), query forwarding and
// redirect rules and passwords, through the real edge over HTTP, as a visitor of the short URL
// sees them: accounts and two replicas of links in this process on the local stack (a scratch
// database, Redis, Kafka), the edge's redirect cache on and hearing of changed redirects as
// kurt-edge does, links' upstream the two replicas in turn, and the edge trusting loopback's
// X-Forwarded-For (as behind a load balancer), so that a test can visit from a country.
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "edge/accounts_authorizer.h"
#include "edge/edge_server.h"
#include "edge/http_util.h"
#include "edge/rate_limiter.h"
#include "gtest/gtest.h"
#include "platform/grpc/server.h"
#include "platform/kafka/kafka.h"
#include "platform/pg/pg.h"
#include "platform/redis/redis.h"
#include "platform/redis/subscriber.h"
#include "services/accounts/accounts_module.h"
#include "services/links/links_module.h"
#include "tests/support/http_client.h"
#include "tests/support/stack_env.h"

namespace kurt::links {
namespace {

using kurt::testing::Fetch;
using kurt::testing::Reply;
using Headers = std::vector<std::pair<std::string, std::string>>;

constexpr char kAdminToken[] = "links-limits-admin";
constexpr char kEdgeSecret[] = "links-limits-secret";
constexpr int kReplicas = 2;

// A JSON string field's value (the first one of that name).
std::string Field(const std::string& json, const std::string& name) {
  std::string needle = absl::StrCat("\"", name, "\":");
  size_t at = json.find(needle);
  if (at == std::string::npos) {
    return "";
  }
  at = json.find('"', at + needle.size());
  size_t end = json.find('"', at + 1);
  return json.substr(at + 1, end - at - 1);
}

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone());
}

class LinksLimitsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pg::ClusterOptions po = db_.ClusterOptions();
    po.primary.max_connections = 16;
    cluster_ = std::make_unique<pg::PgCluster>(po);
    redis_ = std::make_unique<redis::RedisClient>(*redis::Options::FromUrl(testing::RedisUrl()));

    accounts::AccountsConfig ac;
    ac.admin_token = kAdminToken;
    ac.edge_secret = kEdgeSecret;
    ac.key_cache_prefix = testing::RandomName("kurt:test:apikey:") + ":";
    accounts_ = accounts::AccountsModule::Create(ac, {cluster_.get(), redis_.get()});

    topic_ = testing::RandomName("kurt.test.clicks.");
    testing::CreateTopic(topic_, 1);
    kafka::ProducerOptions ko;
    ko.brokers = testing::KafkaBrokers();
    producer_ = std::move(*kafka::KafkaProducer::Create(ko));
    LinksConfig lc;
    lc.click_hash_salt = "salt";
    lc.clicks_topic = topic_;
    lc.short_url_base = "https://kurt.example/";
    lc.cache_key_prefix = testing::RandomName("kurt:test:link:") + ":";
    lc.redirect_changes_channel = testing::RandomName("kurt:test:changes:");
    lc.unlock_key_prefix = testing::RandomName("kurt:test:unlock:") + ":";
    lc.unlock_limits = UnlockLimits{3, 1000, absl::Minutes(15)};
    lc.passwords = PasswordHasherOptions{1, 8192, 2};  // the cheapest argon2id: a fast test
    std::vector<std::string> links_addresses;
    for (int i = 0; i < kReplicas; ++i) {
      Replica& r = replicas_[i];
      auto links =
          LinksModule::Create(lc, {cluster_.get(), redis_.get(), producer_.get(), &r.registry});
      ASSERT_TRUE(links.ok()) << links.status();
      r.links = std::move(*links);
      platform::GrpcServerOptions go;
      go.name = absl::StrCat("links-limits-test-", i);
      go.metrics_port = -1;
      r.grpc = std::make_unique<platform::GrpcServer>(go, &r.registry);
      if (i == 0) {
        r.grpc->AddService(accounts_->service());
      }
      r.links->AddTo(r.grpc.get());
      ASSERT_TRUE(r.grpc->Start().ok());
      links_addresses.push_back(absl::StrCat("127.0.0.1:", r.grpc->grpc_port()));
    }

    edge::GrpcKeyAuthenticatorOptions gko;
    gko.address = links_addresses[0];
    gko.edge_secret = kEdgeSecret;
    authenticator_ = edge::MakeGrpcKeyAuthenticator(gko);
    edge::AccountsAuthorizerOptions eao;
    eao.edge_secret = kEdgeSecret;
    limiter_ = std::make_unique<edge::RedisRateLimiter>(redis_.get(), 2,
                                                        testing::RandomName("kurt:test:rl:") + ":");
    eao.limiter = limiter_.get();
    eao.per_address = {100000, 100000};
    eao.per_account = {100000, 100000};
    authorizer_ = std::make_unique<edge::AccountsAuthorizer>(eao, authenticator_.get());

    edge::EdgeServerConfig c;
    c.http.port = 0;
    c.http.threads = 2;
    c.upstreams = {
        absl::StrCat("kurt.accounts.v1.AccountsService=", links_addresses[0]),
        absl::StrCat("kurt.links.v1.LinksService=", links_addresses[0], ",", links_addresses[1])};
    c.default_upstream_host = "";
    c.edge.trusted_proxies = *edge::TrustedProxies::Parse({"127.0.0.0/8"});
    auto server = edge::EdgeServer::Start(std::move(c), authorizer_.get());
    ASSERT_TRUE(server.ok()) << server.status();
    edge_ = std::move(*server);
    key_ = NewAccount("limits");
    // As kurt-edge's main: changed redirects leave the edge's cache at once.
    redis::SubscriberOptions so;
    so.channel = lc.redirect_changes_channel;
    edge::Edge* edge = &edge_->edge();
    changes_ = std::make_unique<redis::Subscriber>(
        redis_.get(), so, [edge](absl::string_view m) { edge->DropChangedRedirects(m); },
        [edge] { edge->DropCachedRedirects(); });
  }

  void TearDown() override {
    changes_.reset();
    if (edge_) {
      edge_->Shutdown(absl::Seconds(1));
    }
    for (Replica& r : replicas_) {
      if (r.grpc) {
        r.grpc->Shutdown();
      }
    }
  }

  Reply Call(const std::string& method, const std::string& target, const std::string& body = "") {
    Headers h = {{"Authorization", "Bearer " + key_}};
    if (!body.empty()) {
      h.emplace_back("Content-Type", "application/json");
    }
    return Fetch(edge_->port(), method, target, h, body);
  }
  Reply Visit(const std::string& target, const Headers& headers = {}) {
    return Fetch(edge_->port(), "GET", target, headers, "");
  }

  // Posts a protected link's form, as a browser does.
  Reply PostForm(const std::string& target, const std::string& form,
                 const std::string& type = "application/x-www-form-urlencoded") {
    return Fetch(edge_->port(), "POST", target, {{"Content-Type", type}}, form);
  }

  // The sum over the replicas of a counter line of their metrics (0 when absent).
  double Metric(const std::string& line) {
    double sum = 0;
    for (Replica& r : replicas_) {
      const std::string metrics = r.registry.Render();
      if (size_t at = metrics.find(line + " "); at != std::string::npos) {
        sum += std::stod(metrics.substr(at + line.size() + 1));
      }
    }
    return sum;
  }
  double ClicksQueued() { return Metric("kurt_links_click_events_total{outcome=\"queued\"}"); }

  std::string NewAccount(const std::string& name) {
    Reply r = Fetch(edge_->port(), "POST", "/v1/accounts",
                    {{"Authorization", std::string("Bearer ") + kAdminToken},
                     {"Content-Type", "application/json"}},
                    absl::StrCat("{\"name\":\"", name, "\"}"));
    EXPECT_EQ(r.status, 200u) << r.body;
    return Field(r.body, "secretKey");
  }

  // Creates a link from a JSON body; its code.
  std::string Create(const std::string& body) {
    Reply r = Call("POST", "/v1/links", body);
    EXPECT_EQ(r.status, 200u) << body << " -> " << r.body;
    return Field(r.body, "code");
  }

  int64_t StoredClicks(const std::string& code) {
    int64_t n = -1;
    EXPECT_TRUE(cluster_->primary()
                    .Run([&](pqxx::connection& c) {
                      pqxx::nontransaction tx(c);
                      n = tx.exec_params1("SELECT clicks FROM links WHERE code = $1", code)[0]
                              .as<int64_t>();
                    })
                    .ok());
    return n;
  }

  struct Replica {
    metrics::Registry registry;
    std::unique_ptr<LinksModule> links;
    std::unique_ptr<platform::GrpcServer> grpc;
  };

  testing::ScratchDatabase db_;
  std::unique_ptr<pg::PgCluster> cluster_;
  std::unique_ptr<redis::RedisClient> redis_;
  std::unique_ptr<accounts::AccountsModule> accounts_;
  std::string topic_;
  std::unique_ptr<kafka::KafkaProducer> producer_;
  Replica replicas_[kReplicas];
  std::unique_ptr<edge::RateLimiter> limiter_;
  std::unique_ptr<edge::KeyAuthenticator> authenticator_;
  std::unique_ptr<edge::AccountsAuthorizer> authorizer_;
  std::unique_ptr<edge::EdgeServer> edge_;
  std::unique_ptr<redis::Subscriber> changes_;
  std::string key_;
};

TEST_F(LinksLimitsTest, ExactlyMaxClicksConcurrentRedirectsAcrossReplicasGoThroughThenTheFallback) {
  const std::string code = Create(R"({"targetUrl":"https://example.com/offer","maxClicks":20})");
  ASSERT_FALSE(code.empty());
  Reply got = Call("GET", "/v1/links/" + code);
  EXPECT_NE(got.body.find("\"maxClicks\":20"), std::string::npos) << got.body;

  constexpr int kThreads = 8, kEach = 10;
  std::atomic<int> redirected{0}, not_found{0}, other{0};
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        Reply r = Visit("/" + code);
        if (r.status == 302) {
          EXPECT_EQ(r.Header("location"), "https://example.com/offer");
          EXPECT_EQ(r.Header("cache-control"), "no-store") << "a counted redirect is kept nowhere";
          ++redirected;
        } else if (r.status == 404) {
          ++not_found;
        } else {
          ADD_FAILURE() << r.status << " " << r.body << r.error;
          ++other;
        }
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(redirected, 20) << "the edge's cache or a race let more or fewer through";
  // Both replicas took redirects (the edge sends to them in turn): the count is shared.
  for (Replica& r : replicas_) {
    const std::string metrics = r.registry.Render();
    const std::string hits = "kurt_links_cache_requests_total{result=\"hit\"} ";
    const size_t at = metrics.find(hits);
    ASSERT_NE(at, std::string::npos) << metrics;
    EXPECT_GT(std::stod(metrics.substr(at + hits.size())), 0) << metrics;
  }
  EXPECT_EQ(not_found, kThreads * kEach - 20);
  EXPECT_EQ(StoredClicks(code), 20);
  got = Call("GET", "/v1/links/" + code);
  EXPECT_NE(got.body.find("\"clickCount\":20"), std::string::npos) << got.body;

  // Past the limit a fallback takes the visitors; raising the limit lets one more through.
  Reply patched = Call("PATCH", "/v1/links/" + code,
                       R"({"fallbackUrl":"https://example.com/sold-out","maxClicks":21})");
  ASSERT_EQ(patched.status, 200u) << patched.body;
  Reply one = Visit("/" + code);
  EXPECT_EQ(one.status, 302u);
  EXPECT_EQ(one.Header("location"), "https://example.com/offer");
  for (int i = 0; i < 3; ++i) {
    Reply fallback = Visit("/" + code);
    EXPECT_EQ(fallback.status, 302u);
    EXPECT_EQ(fallback.Header("location"), "https://example.com/sold-out");
    EXPECT_EQ(fallback.Header("cache-control"), "no-store");
  }
  EXPECT_EQ(StoredClicks(code), 21);
}

TEST_F(LinksLimitsTest, ALinkIsNotCachedPastTheInstantItsAnswerChanges) {
  // Valid in 2 s: 404 until then (never cached), the target from then on.
  const absl::Time since = absl::Now() + absl::Seconds(2);
  const std::string later = Create(absl::StrCat(R"({"targetUrl":"https://example.com/later",)",
                                                R"("validSince":")", Rfc3339(since), R"("})"));
  EXPECT_EQ(Visit("/" + later).status, 404u);
  // With a fallback, the early redirect is kept only until validSince.
  const std::string early = Create(absl::StrCat(
      R"({"targetUrl":"https://example.com/opened","fallbackUrl":"https://example.com/wait",)",
      R"("validSince":")", Rfc3339(since), R"("})"));
  Reply wait = Visit("/" + early);
  ASSERT_EQ(wait.status, 302u) << wait.body;
  EXPECT_EQ(wait.Header("location"), "https://example.com/wait");
  EXPECT_TRUE(wait.Header("cache-control") == "private, max-age=1" ||
              wait.Header("cache-control") == "no-store")
      << wait.Header("cache-control");
  // Expires in 2 s: kept no longer than that.
  const std::string soon = Create(absl::StrCat(R"({"targetUrl":"https://example.com/soon",)",
                                               R"("expireTime":")", Rfc3339(since), R"("})"));
  Reply live = Visit("/" + soon);
  ASSERT_EQ(live.status, 302u);
  EXPECT_TRUE(live.Header("cache-control") == "private, max-age=1" ||
              live.Header("cache-control") == "no-store")
      << live.Header("cache-control");

  absl::SleepFor(since - absl::Now() + absl::Milliseconds(50));
  Reply now_later = Visit("/" + later);
  EXPECT_EQ(now_later.status, 302u) << now_later.body;
  EXPECT_EQ(now_later.Header("location"), "https://example.com/later");
  Reply opened = Visit("/" + early);
  EXPECT_EQ(opened.status, 302u);
  EXPECT_EQ(opened.Header("location"), "https://example.com/opened")
      << "the edge kept the early redirect past validSince";
  EXPECT_EQ(Visit("/" + soon).status, 404u) << "the edge kept the redirect past its expiry";

  // A plain link is as before: kept 5 s by the edge and the browser.
  const std::string plain = Create(R"({"targetUrl":"https://example.com/plain"})");
  EXPECT_EQ(Visit("/" + plain).Header("cache-control"), "private, max-age=5");
}

TEST_F(LinksLimitsTest, ForwardQueryMergesTheQueryIntoTheTargetAndIsNeverCached) {
  const std::string code = Create(
      R"({"targetUrl":"https://example.com/p?ref=kurt&utm_source=old#top","forwardQuery":true})");
  Reply a = Visit("/" + code + "?utm_source=news&utm_campaign=spring%20sale");
  ASSERT_EQ(a.status, 302u) << a.body;
  EXPECT_EQ(a.Header("location"),
            "https://example.com/p?ref=kurt&utm_source=news&utm_campaign=spring%20sale#top");
  EXPECT_EQ(a.Header("cache-control"), "no-store");
  // Another query right after: its own merge, not the first one from a cache.
  Reply b = Visit("/" + code + "?utm_source=mail");
  ASSERT_EQ(b.status, 302u);
  EXPECT_EQ(b.Header("location"), "https://example.com/p?ref=kurt&utm_source=mail#top");
  Reply none = Visit("/" + code);
  EXPECT_EQ(none.Header("location"), "https://example.com/p?ref=kurt&utm_source=old#top");

  // A link that does not forward ignores the query, and is cached as before.
  const std::string plain = Create(R"({"targetUrl":"https://example.com/q?x=1"})");
  Reply p = Visit("/" + plain + "?utm_source=news");
  EXPECT_EQ(p.Header("location"), "https://example.com/q?x=1");
  EXPECT_EQ(p.Header("cache-control"), "private, max-age=5");

  // Turned on by an update: the edge drops nothing it should keep (it kept nothing), and the
  // next visit forwards.
  Reply patched = Call("PATCH", "/v1/links/" + plain, R"({"forwardQuery":true})");
  ASSERT_EQ(patched.status, 200u) << patched.body;
  EXPECT_NE(patched.body.find("\"forwardQuery\":true"), std::string::npos) << patched.body;
}

// An iPhone, a French speaker and a desktop in Germany each have a target of their own.
constexpr char kThreeRules[] = R"("redirectRules":[
    {"conditions":[{"os":"ios"}],"targetUrl":"https://example.com/ios"},
    {"conditions":[{"language":"fr"}],"targetUrl":"https://example.com/fr"},
    {"conditions":[{"country":"DE"},{"device":"desktop"}],"targetUrl":"https://example.com/de"}])";

TEST_F(LinksLimitsTest, RedirectRulesSendEachVisitorToTheirTargetAndAreNeverCached) {
  const std::string code =
      Create(absl::StrCat(R"({"targetUrl":"https://example.com/default",)", kThreeRules, "}"));
  ASSERT_FALSE(code.empty());
  Reply got = Call("GET", "/v1/links/" + code);
  EXPECT_NE(got.body.find(R"("redirectRules":[{"conditions":[{"os":"ios"}],)"), std::string::npos)
      << got.body;

  const Headers iphone = {{"User-Agent",
                           "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) "
                           "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 "
                           "Mobile/15E148 Safari/604.1"}};
  const std::string desktop =
      "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/120.0.0.0 Safari/537.36";
  const Headers french = {{"User-Agent", desktop}, {"Accept-Language", "fr-FR,fr;q=0.9,en;q=0.8"}};
  // 2.26.24.1 is in one of Germany's ranges in Debian's tor-geoipdb.
  const Headers german = {{"User-Agent", desktop},
                          {"Accept-Language", "en-US,fr;q=0"},
                          {"X-Forwarded-For", "2.26.24.1"}};
  struct Case {
    Headers headers;
    std::string target;
  };
  const std::vector<Case> cases = {{iphone, "https://example.com/ios"},
                                   {french, "https://example.com/fr"},
                                   {german, "https://example.com/de"},
                                   {{}, "https://example.com/default"},
                                   {{{"User-Agent", desktop}}, "https://example.com/default"}};
  // Twice over, one visitor right after another: the edge keeps none of these answers.
  for (int round = 0; round < 2; ++round) {
    for (const Case& c : cases) {
      Reply r = Visit("/" + code, c.headers);
      ASSERT_EQ(r.status, 302u) << r.body << r.error;
      EXPECT_EQ(r.Header("location"), c.target);
      EXPECT_EQ(r.Header("cache-control"), "no-store")
          << "a browser or a CDN must not keep an answer that depends on the visitor";
    }
  }

  // Bad rules: 400 naming the field, and the link keeps its rules.
  Reply bad =
      Call("PATCH", "/v1/links/" + code,
           R"({"redirectRules":[{"conditions":[{"os":"ios"}],"targetUrl":"https://a.example/"},
                       {"conditions":[{"os":"beos"}],"targetUrl":"https://b.example/"}]})");
  EXPECT_EQ(bad.status, 400u) << bad.body;
  EXPECT_NE(bad.body.find("redirect_rules[1].conditions[0].os: "), std::string::npos) << bad.body;
  EXPECT_EQ(Visit("/" + code, iphone).Header("location"), "https://example.com/ios");

  // Cleared: every visitor gets the default, which the edge may keep again.
  Reply cleared = Call("PATCH", "/v1/links/" + code, R"({"clearRedirectRules":true})");
  ASSERT_EQ(cleared.status, 200u) << cleared.body;
  EXPECT_EQ(cleared.body.find("redirectRules"), std::string::npos) << cleared.body;
  for (const Case& c : cases) {
    Reply r = Visit("/" + code, c.headers);
    ASSERT_EQ(r.status, 302u) << r.body;
    EXPECT_EQ(r.Header("location"), "https://example.com/default");
    EXPECT_EQ(r.Header("cache-control"), "private, max-age=5");
  }
}

TEST_F(LinksLimitsTest, BadLimitsAre400NamingTheFieldAndCreateNothing) {
  struct Case {
    std::string body;
    std::string field;
  };
  const absl::Time t = absl::Now() + absl::Hours(1);
  const std::vector<Case> cases = {
      {R"({"targetUrl":"https://example.com/","maxClicks":0})", "max_clicks: "},
      {R"({"targetUrl":"https://example.com/","maxClicks":1000000001})", "max_clicks: "},
      {R"j({"targetUrl":"https://example.com/","fallbackUrl":"javascript:alert(1)"})j",
       "fallback_url: "},
      {absl::StrCat(R"({"targetUrl":"https://example.com/","expireTime":")", Rfc3339(t),
                    R"(","validSince":")", Rfc3339(t + absl::Seconds(1)), R"("})"),
       "valid_since: "},
  };
  for (const Case& c : cases) {
    Reply r = Call("POST", "/v1/links", c.body);
    EXPECT_EQ(r.status, 400u) << c.body << " -> " << r.body;
    EXPECT_NE(r.body.find(c.field), std::string::npos) << r.body;
  }
  const std::string code = Create(
      absl::StrCat(R"({"targetUrl":"https://example.com/","expireTime":")", Rfc3339(t), R"("})"));
  // Against the stored expiry: checked by the database, still the request's mistake.
  Reply after = Call("PATCH", "/v1/links/" + code,
                     absl::StrCat(R"({"validSince":")", Rfc3339(t + absl::Hours(1)), R"("})"));
  EXPECT_EQ(after.status, 400u) << after.body;
  EXPECT_NE(after.body.find("valid_since: "), std::string::npos) << after.body;
  Reply both = Call("PATCH", "/v1/links/" + code, R"({"maxClicks":3,"clearMaxClicks":true})");
  EXPECT_EQ(both.status, 400u) << both.body;
  Reply list = Call("GET", "/v1/links");
  EXPECT_EQ(list.body.find("maxClicks"), std::string::npos) << list.body;
  EXPECT_EQ(list.body.find("validSince"), std::string::npos) << list.body;
}

TEST_F(LinksLimitsTest, AProtectedLinkAsksForItsPasswordAndRedirectsOnlyWithIt) {
  constexpr char kPassword[] = "open s\xC3\xA9same";
  Reply created = Call("POST", "/v1/links",
                       absl::StrCat(R"({"targetUrl":"https://example.com/secret?a=1",)",
                                    R"("forwardQuery":true,"password":")", kPassword, R"("})"));
  ASSERT_EQ(created.status, 200u) << created.body;
  const std::string code = Field(created.body, "code");
  EXPECT_NE(created.body.find("\"passwordProtected\":true"), std::string::npos) << created.body;
  EXPECT_EQ(created.body.find("sesame"), std::string::npos) << created.body;
  EXPECT_EQ(created.body.find("\"password\""), std::string::npos) << created.body;
  for (const std::string& read : {"/v1/links/" + code, std::string("/v1/links")}) {
    Reply r = Call("GET", read);
    EXPECT_NE(r.body.find("\"passwordProtected\":true"), std::string::npos) << r.body;
    EXPECT_EQ(r.body.find("sesame"), std::string::npos) << r.body;
    EXPECT_EQ(r.body.find("argon2"), std::string::npos) << r.body;
  }

  // The short URL answers the form, twice (never from a cache), and records no click.
  const double clicks = ClicksQueued();
  for (int i = 0; i < 2; ++i) {
    Reply form = Visit("/" + code + "?utm_source=mail");
    EXPECT_EQ(form.status, 200u) << form.body;
    EXPECT_EQ(form.Header("location"), "");
    EXPECT_EQ(form.Header("content-type"), "text/html; charset=utf-8");
    EXPECT_EQ(form.Header("cache-control"), "no-store");
    EXPECT_EQ(form.Header("content-security-policy"),
              "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
              "frame-ancestors 'none'; base-uri 'none'");
    EXPECT_NE(form.body.find("<form method=\"post\">"), std::string::npos) << form.body;
    EXPECT_NE(form.body.find("name=\"password\""), std::string::npos) << form.body;
  }
  EXPECT_EQ(ClicksQueued(), clicks) << "showing the form is no click";

  // A wrong password: the form again, 401.
  Reply wrong = PostForm("/" + code + "?utm_source=mail", "password=open+sesame");
  EXPECT_EQ(wrong.status, 401u) << wrong.body;
  EXPECT_EQ(wrong.Header("location"), "");
  EXPECT_EQ(wrong.Header("content-type"), "text/html; charset=utf-8");
  EXPECT_EQ(wrong.Header("cache-control"), "no-store");
  EXPECT_NE(wrong.body.find("Wrong password"), std::string::npos) << wrong.body;
  EXPECT_NE(wrong.body.find("<form"), std::string::npos) << wrong.body;
  EXPECT_EQ(ClicksQueued(), clicks);

  // The right one: 303 to the target (the query forwarded), one click, kept by no cache.
  Reply right = PostForm("/" + code + "?utm_source=mail", "password=open+s%C3%A9same");
  EXPECT_EQ(right.status, 303u) << right.body;
  EXPECT_EQ(right.Header("location"), "https://example.com/secret?a=1&utm_source=mail");
  EXPECT_EQ(right.Header("cache-control"), "no-store");
  EXPECT_EQ(ClicksQueued(), clicks + 1);

  // What is no form with a password: 400, naming what is wrong, and no attempt counted.
  Reply none = PostForm("/" + code, "pass=x");
  EXPECT_EQ(none.status, 400u) << none.body;
  EXPECT_NE(none.body.find("no such field in kurt.links.v1.UnlockLinkRequest"), std::string::npos)
      << none.body;
  Reply empty = PostForm("/" + code, "");
  EXPECT_EQ(empty.status, 400u) << empty.body;
  EXPECT_NE(empty.body.find("password: required"), std::string::npos) << empty.body;
  Reply text = PostForm("/" + code, "password=x", "text/plain");
  EXPECT_EQ(text.status, 400u) << text.body;
  EXPECT_NE(text.body.find("invalid JSON body"), std::string::npos) << text.body;
  Reply bad = PostForm("/" + code, "password=%zz");
  EXPECT_EQ(bad.status, 400u) << bad.body;
  EXPECT_NE(bad.body.find("malformed form body"), std::string::npos) << bad.body;

  // Three wrong ones (this test's limit per client): then 429 with Retry-After, right or not.
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(PostForm("/" + code, "password=guess" + std::to_string(i)).status, 401u);
  }
  for (const char* form : {"password=guess9", "password=open+s%C3%A9same"}) {
    Reply limited = PostForm("/" + code, form);
    EXPECT_EQ(limited.status, 429u) << limited.body;
    EXPECT_EQ(limited.Header("location"), "");
    EXPECT_EQ(limited.Header("content-type"), "text/html; charset=utf-8");
    const int retry_after = std::atoi(limited.Header("retry-after").c_str());
    EXPECT_GT(retry_after, 14 * 60) << limited.Header("retry-after");
    EXPECT_LE(retry_after, 15 * 60);
    EXPECT_NE(limited.body.find("Try again in 15 minutes"), std::string::npos) << limited.body;
  }
  EXPECT_EQ(ClicksQueued(), clicks + 1);

  // Without its password the link redirects again, at once.
  Reply cleared = Call("PATCH", "/v1/links/" + code, R"({"clearPassword":true})");
  ASSERT_EQ(cleared.status, 200u) << cleared.body;
  EXPECT_EQ(cleared.body.find("\"passwordProtected\""), std::string::npos)
      << "false, so left out: " << cleared.body;
  Reply open = Visit("/" + code);
  EXPECT_EQ(open.status, 302u) << open.body;
  EXPECT_EQ(open.Header("location"), "https://example.com/secret?a=1");
}

TEST_F(LinksLimitsTest, AProtectedLinkWithRulesUnlocksToTheTargetItsRulesChooseForTheVisitor) {
  const std::string code =
      Create(absl::StrCat(R"({"targetUrl":"https://example.com/default",)",
                          R"("password":"letmein","forwardQuery":true,)", kThreeRules, "}"));
  ASSERT_FALSE(code.empty());
  Reply got = Call("GET", "/v1/links/" + code);
  EXPECT_NE(got.body.find("\"passwordProtected\":true"), std::string::npos) << got.body;
  EXPECT_NE(got.body.find(R"("redirectRules":[{"conditions":[{"os":"ios"}],)"), std::string::npos)
      << got.body;

  const std::string iphone_agent =
      "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
      "Gecko) Version/17.1 Mobile/15E148 Safari/604.1";
  const std::string desktop =
      "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/120.0.0.0 Safari/537.36";
  struct Case {
    Headers headers;
    std::string target;
  };
  // 2.26.24.1 is in one of Germany's ranges in Debian's tor-geoipdb.
  const std::vector<Case> cases = {
      {{{"User-Agent", iphone_agent}}, "https://example.com/ios?utm_source=mail"},
      {{{"User-Agent", desktop}, {"Accept-Language", "fr-FR,en;q=0.8"}},
       "https://example.com/fr?utm_source=mail"},
      {{{"User-Agent", desktop}, {"Accept-Language", "en"}, {"X-Forwarded-For", "2.26.24.1"}},
       "https://example.com/de?utm_source=mail"},
      {{{"User-Agent", desktop}}, "https://example.com/default?utm_source=mail"}};

  // Every visitor gets the form first, whichever rule holds for them (the link's record now in
  // Redis, which the unlocks below read), and no click.
  const double clicks = ClicksQueued();
  for (const Case& c : cases) {
    Reply form = Visit("/" + code + "?utm_source=mail", c.headers);
    EXPECT_EQ(form.status, 200u) << form.body;
    EXPECT_EQ(form.Header("location"), "");
    EXPECT_NE(form.body.find("name=\"password\""), std::string::npos) << form.body;
  }
  EXPECT_EQ(ClicksQueued(), clicks);

  // The right password: 303 to the target the rules choose for that visitor, one click each.
  for (const Case& c : cases) {
    Headers headers = c.headers;
    headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
    Reply right =
        Fetch(edge_->port(), "POST", "/" + code + "?utm_source=mail", headers, "password=letmein");
    EXPECT_EQ(right.status, 303u) << right.body << right.error;
    EXPECT_EQ(right.Header("location"), c.target);
    EXPECT_EQ(right.Header("cache-control"), "no-store");
  }
  EXPECT_EQ(ClicksQueued(), clicks + static_cast<double>(cases.size()));

  // The password removed: the rules answer the redirect itself.
  Reply cleared = Call("PATCH", "/v1/links/" + code, R"({"clearPassword":true})");
  ASSERT_EQ(cleared.status, 200u) << cleared.body;
  EXPECT_NE(cleared.body.find("redirectRules"), std::string::npos) << cleared.body;
  Reply open = Visit("/" + code, cases[0].headers);
  EXPECT_EQ(open.status, 302u) << open.body;
  EXPECT_EQ(open.Header("location"), "https://example.com/ios");
}

TEST_F(LinksLimitsTest, APasswordAddedLaterStopsTheRedirectTheEdgeCachedAtOnce) {
  const std::string code = Create(R"({"targetUrl":"https://example.com/public"})");
  ASSERT_FALSE(code.empty());
  // The second visit comes from the edge's cache (the redirect may be kept 5 s).
  EXPECT_EQ(Visit("/" + code).status, 302u);
  Reply cached = Visit("/" + code);
  EXPECT_EQ(cached.status, 302u);
  Reply metrics = Fetch(edge_->port(), "GET", "/metrics", {}, "");
  EXPECT_NE(metrics.body.find("kurt_edge_cache_hits_total 1"), std::string::npos) << metrics.body;

  Reply patched = Call("PATCH", "/v1/links/" + code, R"({"password":"letmein"})");
  ASSERT_EQ(patched.status, 200u) << patched.body;
  EXPECT_NE(patched.body.find("\"passwordProtected\":true"), std::string::npos) << patched.body;
  EXPECT_EQ(patched.body.find("letmein"), std::string::npos) << patched.body;
  // The announcement reaches the edge well before the cached entry would expire (5 s).
  const absl::Time deadline = absl::Now() + absl::Seconds(1);
  Reply r;
  do {
    r = Visit("/" + code);
  } while (r.status == 302 && absl::Now() < deadline);
  EXPECT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.Header("location"), "");
  EXPECT_NE(r.body.find("<form"), std::string::npos) << r.body;
  // And it keeps asking: nothing of the old redirect is left anywhere.
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(Visit("/" + code).status, 200u);
  }
  Reply right = PostForm("/" + code, "password=letmein");
  EXPECT_EQ(right.status, 303u) << right.body;
  EXPECT_EQ(right.Header("location"), "https://example.com/public");
}

TEST_F(LinksLimitsTest, BadPasswordsAre400NamingTheFieldAndChangeNothing) {
  Reply short_one =
      Call("POST", "/v1/links", R"({"targetUrl":"https://example.com/x","password":"abc"})");
  EXPECT_EQ(short_one.status, 400u) << short_one.body;
  EXPECT_NE(short_one.body.find("password: must be 4 to 128 characters"), std::string::npos)
      << short_one.body;
  Reply empty = Call("POST", "/v1/links", R"({"targetUrl":"https://example.com/x","password":""})");
  EXPECT_EQ(empty.status, 400u) << empty.body;
  EXPECT_EQ(Call("GET", "/v1/links").body.find("example.com/x"), std::string::npos);

  const std::string code = Create(R"({"targetUrl":"https://example.com/y"})");
  Reply both =
      Call("PATCH", "/v1/links/" + code, R"({"password":"long enough","clearPassword":true})");
  EXPECT_EQ(both.status, 400u) << both.body;
  EXPECT_NE(both.body.find("password"), std::string::npos) << both.body;
  Reply long_one = Call("PATCH", "/v1/links/" + code,
                        absl::StrCat(R"({"password":")", std::string(129, 'x'), R"("})"));
  EXPECT_EQ(long_one.status, 400u) << long_one.body;
  EXPECT_NE(long_one.body.find("password: must be 4 to 128 characters, not 129"), std::string::npos)
      << long_one.body;
  EXPECT_EQ(Visit("/" + code).status, 302u) << "the link is as it was";

  // A batch: each link checked alone; two links with one password.
  Reply batch = Call("POST", "/v1/links:batchCreate",
                     R"({"links":[{"targetUrl":"https://example.com/b1","password":"same one"},)"
                     R"({"targetUrl":"https://example.com/b2","password":"x"},)"
                     R"({"targetUrl":"https://example.com/b3","password":"same one"}]})");
  ASSERT_EQ(batch.status, 200u) << batch.body;
  EXPECT_NE(batch.body.find("password: must be 4 to 128 characters"), std::string::npos)
      << batch.body;
  EXPECT_EQ(batch.body.find("same one"), std::string::npos) << batch.body;
  size_t at = 0;
  int protected_links = 0;
  while ((at = batch.body.find("\"passwordProtected\":true", at)) != std::string::npos) {
    ++protected_links;
    ++at;
  }
  EXPECT_EQ(protected_links, 2) << batch.body;
}

}  // namespace
}  // namespace kurt::links
