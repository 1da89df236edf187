// Links through the real edge over HTTP: accounts and links in this process on the local stack (a
// scratch database, Redis, Kafka) behind an edge with AccountsAuthorizer, as a client sees them:
// QR codes scanned by a real reader (zbarimg, Debian's zbar-tools); tags and search, and the
// plans PostgreSQL makes for them with many links in one account; batches of links, retried.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "edge/accounts_authorizer.h"
#include "edge/edge_server.h"
#include "edge/rate_limiter.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "kurt/links/v1/links.pb.h"
#include "platform/grpc/server.h"
#include "platform/kafka/kafka.h"
#include "platform/pg/pg.h"
#include "platform/redis/redis.h"
#include "services/accounts/accounts_module.h"
#include "services/links/link_rules.h"
#include "services/links/links_module.h"
#include "services/links/links_store.h"
#include "tests/support/http_client.h"
#include "tests/support/stack_env.h"

namespace kurt::links {
namespace {

using kurt::testing::Fetch;
using kurt::testing::Reply;
using Headers = std::vector<std::pair<std::string, std::string>>;

constexpr char kAdminToken[] = "links-edge-admin";
constexpr char kEdgeSecret[] = "links-edge-secret";
constexpr char kShortUrlBase[] = "https://kurt.example/";

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

// What zbarimg reads in `image` (empty, and a failure, when it reads nothing).
std::string Scan(const std::string& image, const std::string& name) {
  std::string path = absl::StrCat(::testing::TempDir(), "/", name);
  std::ofstream(path, std::ios::binary) << image;
  std::string out;
  FILE* p =
      popen(absl::StrCat("zbarimg --quiet --raw -Sdisable -Sqrcode.enable '", path, "' 2>/dev/null")
                .c_str(),
            "r");
  if (p == nullptr) {
    ADD_FAILURE() << "cannot run zbarimg";
    return out;
  }
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) {
    out.append(buf, n);
  }
  EXPECT_EQ(pclose(p), 0) << "zbarimg read nothing in " << path;
  return std::string(absl::StripSuffix(out, "\n"));
}

class LinksEdgeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pg::ClusterOptions po = db_.ClusterOptions();
    po.primary.max_connections = 8;
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
    lc.short_url_base = kShortUrlBase;
    lc.cache_key_prefix = testing::RandomName("kurt:test:link:") + ":";
    auto links =
        LinksModule::Create(lc, {cluster_.get(), redis_.get(), producer_.get(), &registry_});
    ASSERT_TRUE(links.ok()) << links.status();
    links_ = std::move(*links);

    platform::GrpcServerOptions go;
    go.name = "links-edge-test-upstream";
    go.metrics_port = -1;
    grpc_ = std::make_unique<platform::GrpcServer>(go, &registry_);
    grpc_->AddService(accounts_->service());
    links_->AddTo(grpc_.get());
    ASSERT_TRUE(grpc_->Start().ok());
    std::string upstream = absl::StrCat("127.0.0.1:", grpc_->grpc_port());

    edge::GrpcKeyAuthenticatorOptions gko;
    gko.address = upstream;
    gko.edge_secret = kEdgeSecret;
    authenticator_ = edge::MakeGrpcKeyAuthenticator(gko);
    edge::AccountsAuthorizerOptions eao;
    eao.edge_secret = kEdgeSecret;
    limiter_ = std::make_unique<edge::RedisRateLimiter>(redis_.get(), 2,
                                                        testing::RandomName("kurt:test:rl:") + ":");
    eao.limiter = limiter_.get();
    eao.per_address = {1000, 1000};
    eao.per_account = {1000, 1000};
    authorizer_ = std::make_unique<edge::AccountsAuthorizer>(eao, authenticator_.get());

    edge::EdgeServerConfig c;
    c.http.port = 0;
    c.http.threads = 2;
    c.upstreams = {absl::StrCat("kurt.accounts.v1.AccountsService=", upstream),
                   absl::StrCat("kurt.links.v1.LinksService=", upstream)};
    c.default_upstream_host = "";
    auto server = edge::EdgeServer::Start(std::move(c), authorizer_.get());
    ASSERT_TRUE(server.ok()) << server.status();
    edge_ = std::move(*server);
  }

  void TearDown() override {
    if (edge_) {
      edge_->Shutdown(absl::Seconds(1));
    }
    if (grpc_) {
      grpc_->Shutdown();
    }
  }

  Reply Call(const std::string& method, const std::string& target, const std::string& key,
             const std::string& body = "", Headers h = {}) {
    if (!key.empty()) {
      h.emplace_back("Authorization", "Bearer " + key);
    }
    if (!body.empty()) {
      h.emplace_back("Content-Type", "application/json");
    }
    return Fetch(edge_->port(), method, target, h, body);
  }

  // A new account's raw API key.
  std::string NewAccount(const std::string& name) {
    Reply r = Call("POST", "/v1/accounts", kAdminToken, absl::StrCat("{\"name\":\"", name, "\"}"));
    EXPECT_EQ(r.status, 200u) << r.body;
    return Field(r.body, "secretKey");
  }

  // Rows in the scratch database's table (all accounts).
  int64_t Count(const std::string& table) {
    int64_t n = -1;
    EXPECT_TRUE(cluster_->primary()
                    .Run([&](pqxx::connection& c) {
                      pqxx::nontransaction tx(c);
                      n = tx.exec("SELECT count(*) FROM " + table)[0][0].as<int64_t>();
                    })
                    .ok());
    return n;
  }

  // A batchCreate's answer, read as the proto it is.
  static v1::BatchCreateLinksResponse Results(const Reply& r) {
    v1::BatchCreateLinksResponse out;
    google::protobuf::util::JsonParseOptions o;
    o.ignore_unknown_fields = false;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(r.body, &out, o).ok()) << r.body;
    return out;
  }

  testing::ScratchDatabase db_;
  metrics::Registry registry_;
  std::unique_ptr<pg::PgCluster> cluster_;
  std::unique_ptr<redis::RedisClient> redis_;
  std::unique_ptr<accounts::AccountsModule> accounts_;
  std::string topic_;
  std::unique_ptr<kafka::KafkaProducer> producer_;
  std::unique_ptr<LinksModule> links_;
  std::unique_ptr<platform::GrpcServer> grpc_;
  std::unique_ptr<edge::RateLimiter> limiter_;
  std::unique_ptr<edge::KeyAuthenticator> authenticator_;
  std::unique_ptr<edge::AccountsAuthorizer> authorizer_;
  std::unique_ptr<edge::EdgeServer> edge_;
};

TEST_F(LinksEdgeTest, QrCodeOfALinkScansToItsShortUrlAndRevalidatesWith304) {
  const std::string key = NewAccount("qr");
  Reply made = Call("POST", "/v1/links", key, "{\"targetUrl\":\"https://example.com/qr\"}");
  ASSERT_EQ(made.status, 200u) << made.body;
  const std::string code = Field(made.body, "code");
  const std::string short_url = Field(made.body, "shortUrl");
  ASSERT_EQ(short_url, kShortUrlBase + code);

  Reply png = Call("GET", absl::StrCat("/v1/links/", code, "/qr"), key);
  ASSERT_EQ(png.status, 200u) << png.body;
  EXPECT_EQ(png.Header("content-type"), "image/png");
  ASSERT_EQ(png.body.substr(0, 8), "\x89PNG\r\n\x1a\n");
  EXPECT_EQ(Scan(png.body, "edge-qr.png"), short_url);
  const std::string etag = png.Header("etag");
  ASSERT_FALSE(etag.empty());
  // The CDN may keep it a day (it keys /v1/* by Authorization too); the link itself stays
  // private to its owner and revalidated.
  EXPECT_EQ(png.Header("cache-control"), "public, max-age=86400");
  EXPECT_EQ(Call("GET", absl::StrCat("/v1/links/", code), key).Header("cache-control"),
            "private, no-cache");

  // Revalidation: the same image is 304 with no body; another size is another image.
  Reply again =
      Call("GET", absl::StrCat("/v1/links/", code, "/qr"), key, "", {{"If-None-Match", etag}});
  EXPECT_EQ(again.status, 304u);
  EXPECT_TRUE(again.body.empty());
  EXPECT_EQ(again.Header("etag"), etag);
  EXPECT_EQ(again.Header("cache-control"), "public, max-age=86400");
  Reply bigger = Call("GET", absl::StrCat("/v1/links/", code, "/qr?format=png&size=512"), key, "",
                      {{"If-None-Match", etag}});
  ASSERT_EQ(bigger.status, 200u) << bigger.body;
  EXPECT_NE(bigger.Header("etag"), etag);
  EXPECT_EQ(Scan(bigger.body, "edge-qr-512.png"), short_url);

  Reply svg = Call("GET", absl::StrCat("/v1/links/", code, "/qr?format=svg&size=300"), key);
  ASSERT_EQ(svg.status, 200u) << svg.body;
  EXPECT_EQ(svg.Header("content-type"), "image/svg+xml");
  EXPECT_NE(svg.body.find("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"300\""),
            std::string::npos)
      << svg.body;
}

// The edge's own response cache keeps no QR code: once the link is deleted the edge answers 404,
// and the answer is not cacheable.
TEST_F(LinksEdgeTest, QrCodeOfADeletedLinkIs404AtTheEdgeAtOnce) {
  const std::string key = NewAccount("qr-deleted");
  Reply made = Call("POST", "/v1/links", key, "{\"targetUrl\":\"https://example.com/gone\"}");
  ASSERT_EQ(made.status, 200u) << made.body;
  const std::string qr = absl::StrCat("/v1/links/", Field(made.body, "code"), "/qr");
  ASSERT_EQ(Call("GET", qr, key).status, 200u);
  ASSERT_EQ(Call("GET", qr, key).status, 200u);
  ASSERT_EQ(Call("DELETE", absl::StrCat("/v1/links/", Field(made.body, "code")), key).status, 200u);
  Reply gone = Call("GET", qr, key);
  EXPECT_EQ(gone.status, 404u) << gone.body;
  EXPECT_EQ(gone.Header("cache-control"), "no-store");
}

TEST_F(LinksEdgeTest, QrCodeOfAnotherAccountsLinkOrAnUnknownCodeIs404) {
  const std::string a = NewAccount("qr-a");
  const std::string b = NewAccount("qr-b");
  Reply made = Call("POST", "/v1/links", b, "{\"targetUrl\":\"https://example.com/b\"}");
  ASSERT_EQ(made.status, 200u) << made.body;
  const std::string code = Field(made.body, "code");
  ASSERT_EQ(Call("GET", absl::StrCat("/v1/links/", code, "/qr"), b).status, 200u);

  Reply theirs = Call("GET", absl::StrCat("/v1/links/", code, "/qr"), a);
  EXPECT_EQ(theirs.status, 404u) << theirs.body;
  EXPECT_EQ(theirs.Header("content-type"), "application/json");
  Reply unknown = Call("GET", "/v1/links/nosuchcode/qr", a);
  EXPECT_EQ(unknown.status, 404u) << unknown.body;
  EXPECT_EQ(Call("GET", absl::StrCat("/v1/links/", code, "/qr"), "").status, 401u);
  // A deleted link has no QR code any more.
  ASSERT_EQ(Call("DELETE", absl::StrCat("/v1/links/", code), b).status, 200u);
  EXPECT_EQ(Call("GET", absl::StrCat("/v1/links/", code, "/qr"), b).status, 404u);
}

TEST_F(LinksEdgeTest, BadQrParametersAre400NamingThem) {
  const std::string key = NewAccount("qr-bad");
  Reply made = Call("POST", "/v1/links", key, "{\"targetUrl\":\"https://example.com/\"}");
  ASSERT_EQ(made.status, 200u) << made.body;
  const std::string code = Field(made.body, "code");
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"format=gif", "format"}, {"format=PNG", "format"}, {"size=63", "size"},
      {"size=2049", "size"},    {"size=0", "size"},       {"size=big", "size"},
  };
  for (const auto& [query, name] : bad) {
    Reply r = Call("GET", absl::StrCat("/v1/links/", code, "/qr?", query), key);
    EXPECT_EQ(r.status, 400u) << query << ": " << r.body;
    EXPECT_NE(r.body.find(name), std::string::npos) << query << ": " << r.body;
  }
  EXPECT_EQ(Call("GET", absl::StrCat("/v1/links/", code, "/qr?size=64&format=svg"), key).status,
            200u);
  EXPECT_EQ(Call("GET", absl::StrCat("/v1/links/", code, "/qr?size=2048"), key).status, 200u);
}

TEST_F(LinksEdgeTest, TagsAndSearchFilterTheListAndPageThroughIt) {
  const std::string key = NewAccount("tags");
  const std::string other = NewAccount("tags-other");
  for (int i = 0; i < 9; ++i) {
    Reply made = Call(
        "POST", "/v1/links", key,
        absl::StrCat("{\"targetUrl\":\"https://Docs.example/page/", i, "\",\"alias\":\"doc-", i,
                     "\",\"tags\":[", i % 3 == 0 ? "\"Team-A\",\"team-a\",\"x\"" : "\"b\"", "]}"));
    ASSERT_EQ(made.status, 200u) << made.body;
  }
  ASSERT_EQ(Call("POST", "/v1/links", other,
                 "{\"targetUrl\":\"https://docs.example/page/x\",\"tags\":[\"team-a\"]}")
                .status,
            200u);
  Reply one = Call("GET", "/v1/links/doc-3", key);
  EXPECT_NE(one.body.find("\"tags\":[\"team-a\",\"x\"]"), std::string::npos) << one.body;

  // Every page of a filtered list, 2 at a time.
  auto codes = [&](const std::string& filter) {
    std::string all;
    std::string token;
    do {
      Reply page = Call(
          "GET",
          absl::StrCat("/v1/links?pageSize=2&", filter, token.empty() ? "" : "&pageToken=" + token),
          key);
      EXPECT_EQ(page.status, 200u) << filter << ": " << page.body;
      if (page.status != 200) {
        break;
      }
      for (size_t at = page.body.find("\"code\":\""); at != std::string::npos;
           at = page.body.find("\"code\":\"", at + 1)) {
        absl::StrAppend(&all, all.empty() ? "" : ",", Field(page.body.substr(at), "code"));
      }
      token = Field(page.body, "nextPageToken");
    } while (!token.empty());
    return all;
  };
  EXPECT_EQ(codes("tag=TEAM-A"), "doc-6,doc-3,doc-0");
  EXPECT_EQ(codes("query=DOCS.EXAMPLE%2FPAGE"),
            "doc-8,doc-7,doc-6,doc-5,doc-4,doc-3,doc-2,doc-1,doc-0");
  EXPECT_EQ(codes("query=oc-7"), "doc-7");
  EXPECT_EQ(codes("tag=b&query=page%2F4"), "doc-4");
  EXPECT_EQ(codes("query=50%25_off"), "");  // % and _ are taken literally

  // A change of tags through PATCH; bad filters are 400 naming the parameter.
  Reply patched = Call("PATCH", "/v1/links/doc-4", key, "{\"tags\":[\"team-a\"]}");
  ASSERT_EQ(patched.status, 200u) << patched.body;
  EXPECT_EQ(codes("tag=team-a"), "doc-6,doc-4,doc-3,doc-0");
  ASSERT_EQ(Call("PATCH", "/v1/links/doc-4", key, "{\"clearTags\":true}").status, 200u);
  EXPECT_EQ(codes("tag=team-a"), "doc-6,doc-3,doc-0");
  // A deleted link leaves its tags' lists; one made in a batch joins them.
  ASSERT_EQ(Call("DELETE", "/v1/links/doc-6", key).status, 200u);
  ASSERT_EQ(
      Call(
          "POST", "/v1/links:batchCreate", key,
          R"({"links":[{"targetUrl":"https://docs.example/b","alias":"doc-9","tags":["team-a"]}]})")
          .status,
      200u);
  EXPECT_EQ(codes("tag=team-a"), "doc-9,doc-3,doc-0");
  for (const auto& [query, name] : std::vector<std::pair<std::string, std::string>>{
           {"tag=a%20b", "tag"}, {"query=ab", "query"}, {"query=a%0Abc", "query"}}) {
    Reply r = Call("GET", "/v1/links?" + query, key);
    EXPECT_EQ(r.status, 400u) << query << ": " << r.body;
    EXPECT_NE(r.body.find(name), std::string::npos) << query << ": " << r.body;
  }
  Reply bad =
      Call("POST", "/v1/links", key, "{\"targetUrl\":\"https://e.example/\",\"tags\":[\"a b\"]}");
  EXPECT_EQ(bad.status, 400u) << bad.body;
  EXPECT_NE(bad.body.find("tags[0]"), std::string::npos) << bad.body;
}

// With 100,000 links in one account (20,000 in another, 200 in a third), PostgreSQL serves the tag
// filter from link_tags' primary key in the list's own order (no sort: a page reads its own rows,
// however many links have the tag) and the query from the trigram indexes: the very SQL that List
// runs.
TEST_F(LinksEdgeTest, FilteredListsUseTheirIndexes) {
  ASSERT_TRUE(cluster_->primary()
                  .Transact([](pqxx::work& tx) {
                    // The load takes seconds on a busy machine: past the pool's statement timeout.
                    tx.exec("SET LOCAL statement_timeout = 0");
                    tx.exec(
                        "INSERT INTO links (code, account_id, target_url, create_time, tags) "
                        "SELECT 'code' || i, CASE WHEN i % 600 = 1 THEN 'small' "
                        "WHEN i % 6 = 0 THEN 'other' ELSE 'big' END, "
                        "'https://site' || (i % 1000) || '.example/' || md5(i::text), "
                        "now() - i * interval '1 second', ARRAY['t' || (i % 5000), 'all'] "
                        "FROM generate_series(1, 120000) AS i");
                    tx.exec("ANALYZE links");
                  })
                  .ok());
  auto plan = [&](const ListFilter& filter, const std::optional<ListCursor>& after = std::nullopt,
                  const std::string& account = "big") {
    SqlQuery q = ListQuery(account, 21, after, filter);
    std::string out;
    EXPECT_TRUE(cluster_->primary()
                    .Run([&](pqxx::connection& c) {
                      pqxx::nontransaction tx(c);
                      out = tx.exec_params("EXPLAIN (FORMAT JSON) " + q.sql,
                                           pqxx::prepare::make_dynamic_params(q.params.begin(),
                                                                              q.params.end()))[0][0]
                                .as<std::string>();
                    })
                    .ok());
    return out;
  };
  auto uses = [](const std::string& json, const std::string& index) {
    return json.find(absl::StrCat("\"Index Name\": \"", index, "\"")) != std::string::npos;
  };
  auto sorts = [](const std::string& json) {
    return json.find("Sort\"") != std::string::npos;  // "Sort" and "Incremental Sort" nodes
  };
  const std::string by_tag = plan(ListFilter{"t7", std::nullopt});
  EXPECT_TRUE(uses(by_tag, "link_tags_pkey")) << by_tag;
  EXPECT_FALSE(sorts(by_tag)) << by_tag;
  const std::string by_common_tag = plan(ListFilter{"all", std::nullopt});
  EXPECT_TRUE(uses(by_common_tag, "link_tags_pkey")) << by_common_tag;
  EXPECT_FALSE(sorts(by_common_tag)) << by_common_tag;
  // A later page of a tag too.
  const std::string next_page =
      plan(ListFilter{"all", std::nullopt}, ListCursor{absl::Now() - absl::Hours(1), "code3600"});
  EXPECT_TRUE(uses(next_page, "link_tags_pkey")) << next_page;
  EXPECT_FALSE(sorts(next_page)) << next_page;
  // A text through a trigram index on each column: the ones over every account or the
  // per-account ones, as the planner finds cheaper for the account's size. (Which it picks for a
  // small account beside a million links, where the per-account ones save the most, is what
  // `tools/bench search` measures: too many rows to load here.)
  auto uses_either = [&](const std::string& json, const std::string& column) {
    return uses(json, absl::StrCat("links_", column, "_trgm")) ||
           uses(json, absl::StrCat("links_account_", column, "_trgm"));
  };
  const std::string by_query = plan(ListFilter{std::nullopt, "a1b2c"});
  EXPECT_TRUE(uses_either(by_query, "target")) << by_query;
  EXPECT_TRUE(uses_either(by_query, "code")) << by_query;
  // A small account never reads the indexes over every account.
  const std::string small_query =
      plan(ListFilter{std::nullopt, "site7.example"}, std::nullopt, "small");
  EXPECT_FALSE(uses(small_query, "links_target_trgm")) << small_query;
  EXPECT_FALSE(uses(small_query, "links_code_trgm")) << small_query;
  // Without a filter, and with one nearly every link passes, newest first by the account's index.
  EXPECT_TRUE(uses(plan(ListFilter{}), "links_account_create"));

  // And the answers are right: t7 is on every 5000th link (i = 7 + 5000k, none a multiple of 6).
  metrics::Registry registry;
  PgLinksStore store(cluster_.get(), &registry);
  absl::StatusOr<std::vector<LinkRecord>> tagged =
      store.List("big", 1000, std::nullopt, ListFilter{"t7", std::nullopt});
  ASSERT_TRUE(tagged.ok()) << tagged.status();
  EXPECT_EQ(tagged->size(), 24u);
}

TEST_F(LinksEdgeTest, BatchCreateAnswersPerLinkAndARetryWithItsRequestIdCreatesNothing) {
  const std::string key = NewAccount("batch");
  const std::string other = NewAccount("batch-other");
  const std::string body =
      R"({"requestId":"file-1","links":[)"
      R"({"targetUrl":"https://example.com/a"},)"
      R"({"targetUrl":"notaurl","alias":"bad-one"},)"
      R"({"targetUrl":"https://example.com/b","alias":"batch-b","tags":["Q1"],"maxClicks":5,)"
      R"("fallbackUrl":"https://example.com/over","forwardQuery":true},)"
      R"({"targetUrl":"https://example.com/c","alias":"batch-b"},)"
      R"({"targetUrl":"https://example.com/d","expireTime":"2001-01-01T00:00:00Z"}]})";
  Reply r = Call("POST", "/v1/links:batchCreate", key, body);
  ASSERT_EQ(r.status, 200u) << r.body;
  v1::BatchCreateLinksResponse first = Results(r);
  ASSERT_EQ(first.results_size(), 5);
  ASSERT_TRUE(first.results(0).has_link()) << r.body;
  EXPECT_EQ(first.results(0).link().short_url(), kShortUrlBase + first.results(0).link().code());
  EXPECT_EQ(first.results(1).index(), 1);
  EXPECT_EQ(first.results(1).error().code(), 3);  // INVALID_ARGUMENT
  EXPECT_TRUE(absl::StartsWith(first.results(1).error().message(), "target_url: ")) << r.body;
  EXPECT_EQ(first.results(2).link().code(), "batch-b");
  EXPECT_EQ(first.results(2).link().tags(0), "q1");
  EXPECT_EQ(first.results(2).link().max_clicks(), 5);
  EXPECT_EQ(first.results(2).link().fallback_url(), "https://example.com/over");
  EXPECT_TRUE(first.results(2).link().forward_query());
  EXPECT_EQ(first.results(3).error().code(), 6);  // ALREADY_EXISTS
  EXPECT_EQ(first.results(3).error().message(), "alias: 'batch-b' is already given by links[2]");
  EXPECT_EQ(first.results(4).error().message(), "expire_time: must be in the future");
  EXPECT_EQ(Count("links"), 2);

  // The links are the caller's, and resolve.
  Reply got = Call("GET", "/v1/links/batch-b", key);
  EXPECT_EQ(got.status, 200u) << got.body;
  Reply go = Call("GET", "/batch-b", "");
  EXPECT_EQ(go.status, 302u);
  EXPECT_EQ(go.Header("location"), "https://example.com/b");

  // The same request again: nothing new, the same answer, byte for byte.
  Reply again = Call("POST", "/v1/links:batchCreate", key, body);
  ASSERT_EQ(again.status, 200u) << again.body;
  EXPECT_EQ(again.body, r.body);
  EXPECT_EQ(Count("links"), 2);
  EXPECT_EQ(Count("link_batches"), 1);
  // The same request id with other links is refused, naming it.
  std::string other_body = body;
  other_body.replace(other_body.find("example.com/a"), 13, "example.com/z");
  Reply reused = Call("POST", "/v1/links:batchCreate", key, other_body);
  EXPECT_EQ(reused.status, 400u) << reused.body;
  EXPECT_NE(reused.body.find("request_id: 'file-1' was used in the last 24 hours for other links"),
            std::string::npos)
      << reused.body;
  EXPECT_EQ(Count("links"), 2);

  // Another account's "file-1" is its own batch: created (its alias is taken by now).
  Reply theirs = Call("POST", "/v1/links:batchCreate", other, body);
  ASSERT_EQ(theirs.status, 200u) << theirs.body;
  v1::BatchCreateLinksResponse their = Results(theirs);
  ASSERT_TRUE(their.results(0).has_link());
  EXPECT_NE(their.results(0).link().code(), first.results(0).link().code());
  EXPECT_EQ(their.results(2).error().message(), "alias: 'batch-b' is already taken");
  EXPECT_EQ(Count("links"), 3);
  EXPECT_EQ(Count("link_batches"), 2);
}

// Calls with one request id at the same time: the first claims it, the others wait for it and
// answer its record; the links are inserted once.
TEST_F(LinksEdgeTest, ConcurrentBatchesWithOneRequestIdInsertOnce) {
  metrics::Registry registry;
  PgLinksStore store(cluster_.get(), &registry);
  constexpr int kCalls = 6;
  std::vector<absl::StatusOr<BatchInsertResult>> results(kCalls);
  std::vector<std::thread> threads;
  threads.reserve(kCalls);
  for (int t = 0; t < kCalls; ++t) {
    threads.emplace_back([&, t] {
      std::vector<BatchLink> links;
      for (int i = 0; i < 50; ++i) {
        LinkRecord l;
        l.code = RandomCode();
        l.target_url = absl::StrCat("https://example.com/", i);
        links.push_back({std::move(l), false});
      }
      results[t] = store.InsertBatch(
          "acct-concurrent", "same-id", "digest", std::move(links), [] { return RandomCode(); },
          [t](const std::vector<std::optional<LinkRecord>>& created) {
            return absl::StrCat("call ", t, " made ", created.size());
          });
    });
  }
  for (std::thread& t : threads) {
    t.join();
  }
  int inserted = 0;
  std::string record;
  for (const auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.status();
    if (r->replayed) {
      record = *r->replayed;
    } else {
      ++inserted;
      EXPECT_EQ(r->created.size(), 50u);
    }
  }
  EXPECT_EQ(inserted, 1);
  EXPECT_TRUE(absl::StrContains(record, " made 50")) << record;
  EXPECT_EQ(Count("links"), 50);
}

// A batch record outlives its 24 hours only until some batch is made: each batch with a request
// id also removes the oldest expired records of other accounts, at most kBatchSweep of them.
TEST_F(LinksEdgeTest, BatchesRemoveOtherAccountsExpiredRecordsOldestFirst) {
  ASSERT_TRUE(cluster_->primary()
                  .Transact([](pqxx::work& tx) {
                    tx.exec_params(
                        "INSERT INTO link_batches (account_id, request_id, create_time, "
                        "request_hash, response) SELECT 'gone', 'r' || i, now() - interval "
                        "'25 hours' - i * interval '1 minute', '', '' "
                        "FROM generate_series(1, $1) AS i",
                        kBatchSweep + 3);
                    tx.exec(
                        "INSERT INTO link_batches (account_id, request_id, create_time, "
                        "request_hash, response) VALUES ('recent', 'r', now() - interval "
                        "'23 hours', '', '')");
                  })
                  .ok());
  metrics::Registry registry;
  PgLinksStore store(cluster_.get(), &registry);
  LinkRecord link;
  link.code = RandomCode();
  link.target_url = "https://example.com/sweep";
  std::vector<BatchLink> links;
  links.push_back({std::move(link), false});
  absl::StatusOr<BatchInsertResult> made = store.InsertBatch(
      "acct-sweep", "sweep-1", "digest", std::move(links), [] { return RandomCode(); },
      [](const std::vector<std::optional<LinkRecord>>&) { return std::string("made"); });
  ASSERT_TRUE(made.ok()) << made.status();

  // The three newest of the expired ones are left for the next batches; nothing recent went.
  std::vector<std::string> left;
  ASSERT_TRUE(cluster_->primary()
                  .Run([&](pqxx::connection& c) {
                    pqxx::nontransaction tx(c);
                    for (const auto& row :
                         tx.exec("SELECT account_id || '/' || request_id FROM link_batches "
                                 "ORDER BY account_id, create_time DESC")) {
                      left.push_back(row[0].as<std::string>());
                    }
                  })
                  .ok());
  EXPECT_EQ(left, (std::vector<std::string>{"acct-sweep/sweep-1", "gone/r1", "gone/r2", "gone/r3",
                                            "recent/r"}));
}

TEST_F(LinksEdgeTest, BatchOfNoLinksOrOfMoreThanAThousandIs400NamingLinks) {
  const std::string key = NewAccount("batch-limits");
  Reply none = Call("POST", "/v1/links:batchCreate", key, R"({"links":[]})");
  EXPECT_EQ(none.status, 400u) << none.body;
  EXPECT_NE(none.body.find("links: "), std::string::npos) << none.body;

  std::vector<std::string> items(1001, R"({"targetUrl":"https://example.com/x"})");
  Reply many = Call("POST", "/v1/links:batchCreate", key,
                    absl::StrCat(R"({"links":[)", absl::StrJoin(items, ","), "]}"));
  EXPECT_EQ(many.status, 400u) << many.body;
  EXPECT_NE(many.body.find("links: at most 1000 links in one call, not 1001"), std::string::npos)
      << many.body;
  EXPECT_EQ(Count("links"), 0);
}

TEST_F(LinksEdgeTest, AThousandLinksInOneCallThroughTheEdge) {
  const std::string key = NewAccount("batch-1000");
  std::vector<std::string> items;
  items.reserve(1000);
  for (int i = 0; i < 1000; ++i) {
    items.push_back(absl::StrCat(R"({"targetUrl":"https://example.com/page/)", i,
                                 R"(?utm_source=batch","tags":["bulk"]})"));
  }
  const std::string body =
      absl::StrCat(R"({"requestId":"thousand","links":[)", absl::StrJoin(items, ","), "]}");
  const absl::Time start = absl::Now();
  Reply r = Call("POST", "/v1/links:batchCreate", key, body);
  const absl::Duration took = absl::Now() - start;
  ASSERT_EQ(r.status, 200u) << r.body.substr(0, 500);
  v1::BatchCreateLinksResponse results = Results(r);
  ASSERT_EQ(results.results_size(), 1000);
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(results.results(i).has_link()) << i;
    ASSERT_EQ(results.results(i).link().target_url(),
              absl::StrCat("https://example.com/page/", i, "?utm_source=batch"));
  }
  EXPECT_EQ(Count("links"), 1000);
  std::printf("1000 links in one batchCreate through the edge: %.0f ms (%zu bytes in, %zu out)\n",
              absl::ToDoubleMilliseconds(took), body.size(), r.body.size());
  // One transaction, one multi-row insert: well under a round trip per link on loopback.
  EXPECT_LT(took, absl::Seconds(5));

  const absl::Time retry_start = absl::Now();
  Reply again = Call("POST", "/v1/links:batchCreate", key, body);
  std::printf("the same 1000 retried with the same requestId: %.0f ms\n",
              absl::ToDoubleMilliseconds(absl::Now() - retry_start));
  ASSERT_EQ(again.status, 200u);
  EXPECT_EQ(again.body, r.body);
  EXPECT_EQ(Count("links"), 1000);
}

}  // namespace
}  // namespace kurt::links
