// Through the real edge: the accounts, links, analytics (stats), reports and notifications
// services in this process on the local stack (a scratch database, Redis, Kafka), and the edge
// with AccountsAuthorizer in front.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "edge/accounts_authorizer.h"
#include "edge/edge_server.h"
#include "edge/rate_limiter.h"
#include "gtest/gtest.h"
#include "platform/grpc/server.h"
#include "platform/kafka/kafka.h"
#include "platform/pg/pg.h"
#include "platform/redis/redis.h"
#include "services/accounts/accounts_module.h"
#include "services/accounts/api_key.h"
#include "services/analytics/analytics_module.h"
#include "services/links/links_module.h"
#include "services/notifications/notifications_module.h"
#include "services/reports/reports_module.h"
#include "tests/support/child_process.h"
#include "tests/support/free_port.h"
#include "tests/support/http_client.h"
#include "tests/support/stack_env.h"
#include "tests/support/stderr_capture.h"

namespace kurt::accounts {
namespace {

using kurt::testing::Fetch;
using kurt::testing::Reply;
using Headers = std::vector<std::pair<std::string, std::string>>;

constexpr absl::Duration kEdgeCacheTtl = absl::Seconds(1);
constexpr absl::Duration kRedisTtl = absl::Seconds(2);

// The names of a process's threads (/proc/<pid>/task/*/comm), sorted.
std::vector<std::string> ThreadNames(pid_t pid) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& task :
       std::filesystem::directory_iterator(absl::StrCat("/proc/", pid, "/task"), ec)) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    if (std::getline(comm, name)) {
      names.push_back(name);
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

// A JSON string field's value (good enough for the flat answers these tests read).
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

class AccountsEdgeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pg::ClusterOptions po;
    po.primary.url = db_.primary_url();
    po.primary.max_connections = 8;
    cluster_ = std::make_unique<pg::PgCluster>(po);
    redis_ = std::make_unique<redis::RedisClient>(*redis::Options::FromUrl(testing::RedisUrl()));

    AccountsConfig ac;
    ac.admin_token = "edge-test-admin";
    ac.edge_secret = "edge-test-secret";
    ac.key_cache_ttl = kRedisTtl;
    ac.key_cache_prefix = testing::RandomName("kurt:test:apikey:") + ":";
    ac.signin_key_prefix = testing::RandomName("kurt:test:signin:") + ":";
    ac.signin_limits = SignInLimits{3, 1000, absl::Minutes(15)};
    accounts_ = AccountsModule::Create(ac, {cluster_.get(), redis_.get()});

    topic_ = testing::RandomName("kurt.test.clicks.");
    testing::CreateTopic(topic_, 1);
    kafka::ProducerOptions ko;
    ko.brokers = testing::KafkaBrokers();
    producer_ = std::move(*kafka::KafkaProducer::Create(ko));
    links::LinksConfig lc;
    lc.click_hash_salt = "salt";
    lc.clicks_topic = topic_;
    lc.cache_key_prefix = testing::RandomName("kurt:test:link:") + ":";
    auto links =
        links::LinksModule::Create(lc, {cluster_.get(), redis_.get(), producer_.get(), &registry_});
    ASSERT_TRUE(links.ok()) << links.status();
    links_ = std::move(*links);

    // Stats (no consumer), reports (no relay and no worker: a report stays PENDING) and
    // notifications (not started: no consumer; tests store their rows through the store).
    analytics::AnalyticsConfig anc;
    anc.consume = false;
    anc.kafka_brokers = testing::KafkaBrokers();
    analytics_ =
        analytics::AnalyticsModule::Create(anc, {cluster_.get(), producer_.get(), &registry_});
    reports::ReportsConfig rc;
    rc.artifacts.dir = artifact_dir_;
    rc.outbox_relay = false;
    auto reports = reports::ReportsModule::Create(rc, {cluster_.get(), nullptr, &registry_});
    ASSERT_TRUE(reports.ok()) << reports.status();
    reports_ = std::move(*reports);
    notifications::NotificationsConfig nc;
    nc.kafka_brokers = testing::KafkaBrokers();
    nc.consumer_group = testing::RandomName("kurt-test-notifications-");
    auto notifications =
        notifications::NotificationsModule::Create(nc, {&cluster_->primary(), &registry_});
    ASSERT_TRUE(notifications.ok()) << notifications.status();
    notifications_ = std::move(*notifications);

    platform::GrpcServerOptions go;
    go.name = "edge-test-upstream";
    go.metrics_port = -1;
    grpc_ = std::make_unique<platform::GrpcServer>(go, &registry_);
    grpc_->AddService(accounts_->service());
    links_->AddTo(grpc_.get());
    grpc_->AddService(analytics_->service());
    grpc_->AddService(reports_->service());
    grpc_->AddService(notifications_->service());
    ASSERT_TRUE(grpc_->Start().ok());
    std::string upstream = absl::StrCat("127.0.0.1:", grpc_->grpc_port());

    edge::GrpcKeyAuthenticatorOptions gko;
    gko.address = upstream;
    gko.edge_secret = "edge-test-secret";
    authenticator_ = edge::MakeGrpcKeyAuthenticator(gko);
    edge::AccountsAuthorizerOptions eao;
    eao.edge_secret = "edge-test-secret";
    eao.cache_ttl = kEdgeCacheTtl;
    limiter_ = std::make_unique<edge::RedisRateLimiter>(redis_.get(), 2,
                                                        testing::RandomName("kurt:test:rl:") + ":");
    eao.limiter = limiter_.get();
    eao.per_address = {1000, 1000};
    eao.per_account = {10, 20};
    authorizer_ = std::make_unique<edge::AccountsAuthorizer>(eao, authenticator_.get());

    edge::EdgeServerConfig c;
    c.http.port = 0;
    c.http.threads = 2;
    c.upstreams = {absl::StrCat("kurt.accounts.v1.AccountsService=", upstream),
                   absl::StrCat("kurt.links.v1.LinksService=", upstream),
                   absl::StrCat("kurt.analytics.v1.AnalyticsService=", upstream),
                   absl::StrCat("kurt.reports.v1.ReportsService=", upstream),
                   absl::StrCat("kurt.notifications.v1.NotificationsService=", upstream)};
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
    std::filesystem::remove_all(artifact_dir_);
  }

  Reply Call(const std::string& method, const std::string& target, const std::string& key,
             const std::string& body = "") {
    Headers h;
    if (!key.empty()) {
      h.emplace_back("Authorization", "Bearer " + key);
    }
    if (!body.empty()) {
      h.emplace_back("Content-Type", "application/json");
    }
    return Fetch(edge_->port(), method, target, h, body);
  }

  // POST /v1/accounts with the admin token: {account id, raw key}.
  std::pair<std::string, std::string> NewAccount(const std::string& name) {
    Reply r =
        Call("POST", "/v1/accounts", "edge-test-admin", absl::StrCat("{\"name\":\"", name, "\"}"));
    EXPECT_EQ(r.status, 200u) << r.body;
    return {Field(r.body, "id"), Field(r.body, "secretKey")};
  }

  // Signs `email` up (password "correct horse"), then fails to sign in as often as the test's
  // throttle allows (3).
  void SignUpAndFailThrice(const std::string& email) {
    ASSERT_EQ(Call("POST", "/v1/signup", "edge-test-admin",
                   absl::StrCat(R"({"email":")", email, R"(","password":"correct horse"})"))
                  .status,
              200u);
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(Call("POST", "/v1/sessions", "",
                     absl::StrCat(R"({"email":")", email, R"(","password":"no"})"))
                    .status,
                401u);
    }
  }

  // The rows of `table` in the primary.
  int64_t Count(absl::string_view table) {
    int64_t n = -1;
    EXPECT_TRUE(cluster_->primary()
                    .Run([&](pqxx::connection& c) {
                      pqxx::nontransaction tx(c);
                      n = tx.exec1(absl::StrCat("SELECT count(*) FROM ", table))[0].as<int64_t>();
                    })
                    .ok());
    return n;
  }

  testing::ScratchDatabase db_;
  metrics::Registry registry_;
  std::unique_ptr<pg::PgCluster> cluster_;
  std::unique_ptr<redis::RedisClient> redis_;
  std::unique_ptr<AccountsModule> accounts_;
  std::string topic_;
  std::unique_ptr<kafka::KafkaProducer> producer_;
  std::unique_ptr<links::LinksModule> links_;
  std::unique_ptr<analytics::AnalyticsModule> analytics_;
  const std::string artifact_dir_ =
      absl::StrCat("/tmp/", testing::RandomName("kurt-edge-artifacts-"));
  std::unique_ptr<reports::ReportsModule> reports_;
  std::unique_ptr<notifications::NotificationsModule> notifications_;
  std::unique_ptr<platform::GrpcServer> grpc_;
  std::unique_ptr<edge::RateLimiter> limiter_;
  std::unique_ptr<edge::KeyAuthenticator> authenticator_;
  std::unique_ptr<edge::AccountsAuthorizer> authorizer_;
  std::unique_ptr<edge::EdgeServer> edge_;
};

TEST_F(AccountsEdgeTest, NoOrBadKeyIs401AndPublicRoutesNeedNone) {
  EXPECT_EQ(Call("GET", "/v1/links", "").status, 401u);
  Reply r = Call("GET", "/v1/keys", "");
  EXPECT_EQ(r.status, 401u);
  EXPECT_NE(r.body.find("Bearer"), std::string::npos) << r.body;
  EXPECT_EQ(Call("GET", "/v1/links", "kurt_000000000000_" + std::string(64, '0')).status, 401u);
  EXPECT_EQ(Call("GET", "/v1/links", "garbage").status, 401u);
  EXPECT_EQ(Call("GET", "/healthz", "").status, 200u);
  EXPECT_EQ(Call("GET", "/v1/openapi.json", "").status, 200u);
  EXPECT_EQ(Call("GET", "/nosuchcode", "").status, 404u);  // the redirect is public
  // Account creation needs the admin token, checked by accounts itself.
  EXPECT_EQ(Call("POST", "/v1/accounts", "", "{\"name\":\"x\"}").status, 401u);
  EXPECT_EQ(Call("POST", "/v1/accounts", "wrong", "{\"name\":\"x\"}").status, 401u);
}

// A name with a control character (a NUL, which PostgreSQL's text cannot hold, or a line break) is
// the caller's mistake: 400 INVALID_ARGUMENT naming the field, and no account or key is made.
TEST_F(AccountsEdgeTest, ControlCharactersInANameAre400NamingItAndMakeNothing) {
  auto [id, key] = NewAccount("Names");
  const int64_t accounts = Count("accounts");
  const int64_t keys = Count("api_keys");
  for (const char* name : {"\\u0000Q", "two\\nlines", "del\\u007f"}) {
    Reply account =
        Call("POST", "/v1/accounts", "edge-test-admin", absl::StrCat("{\"name\":\"", name, "\"}"));
    EXPECT_EQ(account.status, 400u) << name;
    // google.rpc.Status as JSON: code 3 is INVALID_ARGUMENT.
    EXPECT_NE(account.body.find("\"code\":3,"), std::string::npos) << account.body;
    EXPECT_NE(account.body.find("name: must not hold control characters"), std::string::npos)
        << account.body;
    Reply made = Call("POST", "/v1/keys", key, absl::StrCat("{\"name\":\"", name, "\"}"));
    EXPECT_EQ(made.status, 400u) << name;
    EXPECT_NE(made.body.find("name: must not hold control characters"), std::string::npos)
        << made.body;
  }
  EXPECT_EQ(Count("accounts"), accounts);
  EXPECT_EQ(Count("api_keys"), keys);
}

TEST_F(AccountsEdgeTest, PeopleSignUpSignInRefreshAndSignOutOverHttp) {
  const std::string person = R"({"email":"Ada@Example.org","password":"correct horse"})";
  // Sign-up is closed here (no open sign-up): the admin token opens it.
  EXPECT_EQ(Call("POST", "/v1/signup", "", person).status, 401u);
  Reply up = Call("POST", "/v1/signup", "edge-test-admin", person);
  ASSERT_EQ(up.status, 200u) << up.body;
  const std::string signup_token = Field(up.body, "sessionToken");
  ASSERT_FALSE(signup_token.empty()) << up.body;
  EXPECT_EQ(Field(up.body, "email"), "ada@example.org");
  EXPECT_EQ(Call("POST", "/v1/signup", "edge-test-admin", person).status, 409u);

  // A session token is taken wherever an API key is.
  Reply link = Call("POST", "/v1/links", signup_token, R"({"targetUrl":"https://example.org/a"})");
  ASSERT_EQ(link.status, 200u) << link.body;
  ASSERT_EQ(Call("GET", "/v1/keys", signup_token).status, 200u);

  Reply wrong = Call("POST", "/v1/sessions", "", R"({"email":"ada@example.org","password":"x"})");
  EXPECT_EQ(wrong.status, 401u);
  Reply nobody =
      Call("POST", "/v1/sessions", "", R"({"email":"bob@example.org","password":"correct horse"})");
  EXPECT_EQ(nobody.status, 401u);
  EXPECT_EQ(Field(nobody.body, "message"), Field(wrong.body, "message"));
  EXPECT_EQ(Field(wrong.body, "message"), "wrong email or password");

  Reply in = Call("POST", "/v1/sessions", "", person);
  ASSERT_EQ(in.status, 200u) << in.body;
  Reply next = Call("POST", "/v1/sessions:refresh", "",
                    absl::StrCat(R"({"refreshToken":")", Field(in.body, "refreshToken"), "\"}"));
  ASSERT_EQ(next.status, 200u) << next.body;
  const std::string token = Field(next.body, "sessionToken");
  ASSERT_EQ(Call("GET", "/v1/links", token).status, 200u);  // now in the edge's cache

  ASSERT_EQ(Call("DELETE", "/v1/sessions/current", Field(in.body, "sessionToken")).status, 200u);
  absl::Time signed_out = absl::Now();
  unsigned status = 0;
  while (absl::Now() - signed_out < kEdgeCacheTtl + absl::Milliseconds(500)) {
    status = Call("GET", "/v1/links", token).status;
    if (status == 401) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(status, 401u) << "the session's token still works after signing out";
  EXPECT_EQ(Call("POST", "/v1/sessions:refresh", "",
                 absl::StrCat(R"({"refreshToken":")", Field(next.body, "refreshToken"), "\"}"))
                .status,
            401u);
  // The sign-up's own session is another one.
  EXPECT_EQ(Call("GET", "/v1/links", signup_token).status, 200u);
}

TEST_F(AccountsEdgeTest, TooManyFailedSignInsAre429WithRetryAfter) {
  SignUpAndFailThrice("grace@example.org");
  Reply limited = Call("POST", "/v1/sessions", "",
                       R"({"email":"grace@example.org","password":"correct horse"})");
  EXPECT_EQ(limited.status, 429u) << limited.body;
  EXPECT_EQ(limited.Header("retry-after"), "900");
  EXPECT_NE(limited.body.find("retry after 900 s"), std::string::npos) << limited.body;
  // Bad input is 400 naming the field, and counts as no attempt.
  Reply bad = Call("POST", "/v1/signup", "edge-test-admin",
                   R"({"email":"not an address","password":"correct horse"})");
  EXPECT_EQ(bad.status, 400u);
  EXPECT_NE(bad.body.find("email:"), std::string::npos) << bad.body;
}

// PostgreSQL's driver ends a text parameter at its first NUL: "hedy@example.org\0x" would find
// Hedy while the sign-in throttle counted it as another address, and a locked account could be
// tried again with a new suffix each time. An email with a control character is refused first.
TEST_F(AccountsEdgeTest, ASignInEmailWithAControlCharacterIs400AndDoesNotSlipPastTheThrottle) {
  SignUpAndFailThrice("hedy@example.org");
  ASSERT_EQ(
      Call("POST", "/v1/sessions", "", R"({"email":"hedy@example.org","password":"correct horse"})")
          .status,
      429u);
  const int64_t before = Count("sessions");
  for (const char* email : {"hedy@example.org\\u0000x", "hedy@example.org\\u0000",
                            "hedy@example.org\\nx", "hedy@example.org\\u007f"}) {
    Reply in = Call("POST", "/v1/sessions", "",
                    absl::StrCat(R"({"email":")", email, R"(","password":"correct horse"})"));
    EXPECT_EQ(in.status, 400u) << email << ": " << in.body;
    EXPECT_NE(in.body.find("email: must not hold control characters"), std::string::npos)
        << in.body;
  }
  EXPECT_EQ(Count("sessions"), before);
}

TEST_F(AccountsEdgeTest, KeysOverHttpAndRevocationWithinTheBound) {
  auto [account, key] = NewAccount("Ada");
  ASSERT_FALSE(key.empty());
  Reply created = Call("POST", "/v1/keys", key, "{\"name\":\"ci\"}");
  ASSERT_EQ(created.status, 200u) << created.body;
  std::string second = Field(created.body, "secretKey");
  std::string second_id = Field(created.body, "id");
  ASSERT_EQ(Call("GET", "/v1/links", second).status, 200u);
  Reply list = Call("GET", "/v1/keys", key);
  ASSERT_EQ(list.status, 200u);
  EXPECT_NE(list.body.find(second_id), std::string::npos);
  EXPECT_EQ(list.body.find(second), std::string::npos) << "list shows a secret";

  ASSERT_EQ(Call("DELETE", "/v1/keys/" + second_id, key).status, 200u);
  absl::Time revoked = absl::Now();
  // The documented bound: the edge's cache TTL + the Redis TTL (the revoke also deletes the Redis
  // entry, so in practice it is the edge's TTL).
  absl::Duration bound = kEdgeCacheTtl + kRedisTtl;
  unsigned status = 0;
  while (absl::Now() - revoked < bound + absl::Milliseconds(500)) {
    status = Call("GET", "/v1/links", second).status;
    if (status == 401) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(status, 401u);
  EXPECT_LE(absl::Now() - revoked, bound + absl::Milliseconds(500));
  EXPECT_EQ(Call("GET", "/v1/links", key).status, 200u);
}

// Every route of proto/kurt that takes an id, called by A with B's id. A's answer must be the
// very answer to an id that does not exist (same status, same body once the id is blanked out),
// so it tells A nothing; and B's objects must be as they were.
TEST_F(AccountsEdgeTest, OtherAccountsObjectsAre404OnEveryRouteWithAnId) {
  auto [a_id, a] = NewAccount("A");
  auto [b_id, b] = NewAccount("B");
  ASSERT_FALSE(a.empty());
  ASSERT_FALSE(b.empty());

  // B's objects: a link, a key, a report (PENDING: nothing runs it) and a notification.
  Reply made = Call("POST", "/v1/links", b, "{\"targetUrl\":\"https://example.com/b\"}");
  ASSERT_EQ(made.status, 200u) << made.body;
  std::string code = Field(made.body, "code");
  ASSERT_FALSE(code.empty());
  Reply b_keys = Call("GET", "/v1/keys", b);
  std::string b_key_id = Field(b_keys.body, "id");
  ASSERT_FALSE(b_key_id.empty()) << b_keys.body;
  constexpr char kUtc[] = "%Y-%m-%dT%H:%M:%SZ";
  absl::Time now = absl::Now();
  Reply requested =
      Call("POST", "/v1/reports", b,
           absl::StrCat("{\"kind\":\"SUMMARY_JSON\",\"startTime\":\"",
                        absl::FormatTime(kUtc, now - absl::Hours(1), absl::UTCTimeZone()),
                        "\",\"endTime\":\"", absl::FormatTime(kUtc, now, absl::UTCTimeZone()),
                        "\",\"code\":\"", code, "\"}"));
  ASSERT_EQ(requested.status, 200u) << requested.body;
  std::string report = Field(requested.body, "id");
  ASSERT_EQ(report.size(), 36u) << requested.body;
  ASSERT_EQ(Field(requested.body, "state"), "PENDING") << requested.body;
  // A notification as the consumer stores one (of another report of B's, one that finished).
  events::v1::ReportCompleted completed;
  completed.set_report_id("0b0b0b0b-0000-4000-8000-000000000001");
  completed.set_event_id(completed.report_id() + "/completed");
  completed.set_account_id(b_id);
  completed.set_kind(reports::v1::SUMMARY_JSON);
  completed.set_state(reports::v1::SUCCEEDED);
  ASSERT_EQ(notifications_->store().StoreCompleted({completed}).value_or(-1), 1);
  auto b_notes = notifications_->store().List(b_id, 10, 0, false);
  ASSERT_TRUE(b_notes.ok()) << b_notes.status();
  ASSERT_EQ(b_notes->size(), 1u);
  std::string note = absl::StrCat(b_notes->front().id);

  // What B gets, so the ids are known to be real and the routes to work for their owner.
  Reply b_stats = Call("GET", absl::StrCat("/v1/links/", code, "/stats"), b);
  ASSERT_EQ(b_stats.status, 200u) << b_stats.body;
  EXPECT_EQ(Field(b_stats.body, "code"), code) << b_stats.body;
  Reply b_report = Call("GET", "/v1/reports/" + report, b);
  ASSERT_EQ(b_report.status, 200u) << b_report.body;
  // Content exists once a report SUCCEEDED: B hears that this one is PENDING, not that it is
  // unknown.
  Reply b_content = Call("GET", absl::StrCat("/v1/reports/", report, "/content"), b);
  EXPECT_NE(b_content.status, 404u) << b_content.body;
  EXPECT_NE(b_content.body.find("PENDING"), std::string::npos) << b_content.body;
  Reply b_list = Call("GET", "/v1/notifications", b);
  ASSERT_EQ(b_list.status, 200u) << b_list.body;
  EXPECT_NE(b_list.body.find(absl::StrCat("\"id\":\"", note, "\"")), std::string::npos)
      << b_list.body;

  // A, with each of B's ids and with one nobody has.
  struct Route {
    std::string method, path, body, real, made_up;
  };
  const std::string kNoReport = "0badc0de-0000-4000-8000-000000000000";
  const std::vector<Route> routes = {
      {"GET", "/v1/links/{id}", "", code, "nosuch" + code},
      {"PATCH", "/v1/links/{id}", "{\"targetUrl\":\"https://evil.example/\"}", code,
       "nosuch" + code},
      {"DELETE", "/v1/links/{id}", "", code, "nosuch" + code},
      {"GET", "/v1/links/{id}/stats", "", code, "nosuch" + code},
      {"GET", "/v1/links/{id}/qr", "", code, "nosuch" + code},
      {"DELETE", "/v1/keys/{id}", "", b_key_id, "key_00000000deadbeef"},
      {"GET", "/v1/reports/{id}", "", report, kNoReport},
      {"POST", "/v1/reports/{id}:cancel", "{}", report, kNoReport},
      {"GET", "/v1/reports/{id}/content", "", report, kNoReport},
      {"POST", "/v1/notifications/{id}:ack", "{}", note, "999999999"},
  };
  for (const Route& r : routes) {
    SCOPED_TRACE(absl::StrCat(r.method, " ", r.path));
    Reply theirs = Call(r.method, absl::StrReplaceAll(r.path, {{"{id}", r.real}}), a, r.body);
    Reply unknown = Call(r.method, absl::StrReplaceAll(r.path, {{"{id}", r.made_up}}), a, r.body);
    EXPECT_EQ(theirs.status, 404u) << theirs.body;
    EXPECT_EQ(unknown.status, 404u) << unknown.body;
    EXPECT_EQ(absl::StrReplaceAll(theirs.body, {{r.real, "<id>"}}),
              absl::StrReplaceAll(unknown.body, {{r.made_up, "<id>"}}));
    EXPECT_EQ(theirs.Header("content-type"), unknown.Header("content-type"));
  }

  // Nothing changed for B.
  Reply still = Call("GET", "/v1/links/" + code, b);
  EXPECT_EQ(still.status, 200u) << still.body;
  EXPECT_NE(still.body.find("https://example.com/b"), std::string::npos) << still.body;
  EXPECT_EQ(Call("GET", "/v1/links", b).status, 200u);
  EXPECT_EQ(Call("GET", absl::StrCat("/v1/links/", code, "/stats"), b).status, 200u);
  Reply b_report_after = Call("GET", "/v1/reports/" + report, b);
  EXPECT_EQ(b_report_after.status, 200u) << b_report_after.body;
  EXPECT_EQ(Field(b_report_after.body, "state"), "PENDING") << b_report_after.body;
  Reply b_list_after = Call("GET", "/v1/notifications", b);
  EXPECT_EQ(b_list_after.status, 200u) << b_list_after.body;
  EXPECT_EQ(b_list_after.body.find("ackTime"), std::string::npos) << b_list_after.body;
  // The ids were B's to use all along: B's own cancel and ack go through.
  Reply cancelled = Call("POST", absl::StrCat("/v1/reports/", report, ":cancel"), b, "{}");
  EXPECT_EQ(cancelled.status, 200u) << cancelled.body;
  EXPECT_EQ(Field(cancelled.body, "state"), "CANCELLED") << cancelled.body;
  Reply acked = Call("POST", absl::StrCat("/v1/notifications/", note, ":ack"), b, "{}");
  EXPECT_EQ(acked.status, 200u) << acked.body;
  EXPECT_NE(acked.body.find("ackTime"), std::string::npos) << acked.body;
}

TEST_F(AccountsEdgeTest, PerAccountLimitGives429AndRecovers) {
  auto [a_id, a] = NewAccount("Busy");
  auto [b_id, b] = NewAccount("Quiet");
  int limited = 0;
  std::string message;
  for (int i = 0; i < 40; ++i) {
    Reply r = Call("GET", "/v1/links", a);
    if (r.status == 429) {
      ++limited;
      message = r.body;
      int retry_after = 0;
      EXPECT_TRUE(absl::SimpleAtoi(r.Header("retry-after"), &retry_after))
          << r.Header("retry-after");
      EXPECT_GE(retry_after, 1);
    } else {
      EXPECT_EQ(r.status, 200u) << r.body;
    }
  }
  EXPECT_GT(limited, 0);
  EXPECT_NE(message.find("retry after"), std::string::npos) << message;
  // Another account is not affected; the busy one recovers once tokens refill.
  EXPECT_EQ(Call("GET", "/v1/links", b).status, 200u);
  absl::SleepFor(absl::Milliseconds(1200));
  EXPECT_EQ(Call("GET", "/v1/links", a).status, 200u);
}

// Two edge replicas' limiters share one bucket through Redis.
TEST(SharedRateLimitTest, ReplicasShareTheBucket) {
  redis::RedisClient redis(*redis::Options::FromUrl(testing::RedisUrl()));
  std::string prefix = testing::RandomName("kurt:test:rl:") + ":";
  edge::RedisRateLimiter one(&redis, 1, prefix);
  edge::RedisRateLimiter two(&redis, 1, prefix);
  auto take = [](edge::RedisRateLimiter& l) {
    absl::Notification n;
    edge::RateDecision out;
    l.Take("acct:x", edge::RateLimit{0.1, 3}, [&](edge::RateDecision d) {
      out = d;
      n.Notify();
    });
    n.WaitForNotification();
    return out;
  };
  EXPECT_TRUE(take(one).allowed);
  EXPECT_TRUE(take(two).allowed);
  EXPECT_TRUE(take(one).allowed);
  edge::RateDecision d = take(two);
  EXPECT_FALSE(d.allowed);
  EXPECT_GT(d.retry_after, absl::Seconds(5));
}

TEST_F(AccountsEdgeTest, RawKeysAppearInNoLogAndNoTable) {
  std::vector<std::string> keys;
  {
    testing::StderrCapture capture;
    auto [id, key] = NewAccount("Logs");
    keys.push_back(key);
    Reply created = Call("POST", "/v1/keys", key, "{}");
    keys.push_back(Field(created.body, "secretKey"));
    EXPECT_EQ(Call("POST", "/v1/links", key, "{\"targetUrl\":\"https://example.com/\"}").status,
              200u);
    EXPECT_EQ(Call("GET", "/v1/links", keys[1]).status, 200u);
    std::string wrong = key;
    wrong.back() = wrong.back() == 'a' ? 'b' : 'a';
    EXPECT_EQ(Call("GET", "/v1/links", wrong).status, 401u);
    EXPECT_EQ(Call("GET", "/v1/links/nosuch", key).status, 404u);
    std::string logs = capture.Stop();
    EXPECT_NE(logs.find("account created"), std::string::npos) << "logs were not captured";
    for (const std::string& k : keys) {
      ASSERT_TRUE(ParseApiKey(k).ok());
      EXPECT_EQ(logs.find(ParseApiKey(k)->secret), std::string::npos) << logs;
    }
  }
  std::string all;
  ASSERT_TRUE(cluster_->primary()
                  .Run([&](pqxx::connection& c) {
                    pqxx::nontransaction tx(c);
                    for (const auto& t :
                         tx.exec("SELECT table_schema, table_name FROM information_schema.tables "
                                 "WHERE table_type = 'BASE TABLE' AND table_schema NOT IN "
                                 "('pg_catalog', 'information_schema')")) {
                      for (const auto& row :
                           tx.exec(absl::StrCat("SELECT t::text FROM ", c.quote_name(t[0].c_str()),
                                                ".", c.quote_name(t[1].c_str()), " t"))) {
                        absl::StrAppend(&all, row[0].c_str(), "\n");
                      }
                    }
                  })
                  .ok());
  EXPECT_NE(all.find("Logs"), std::string::npos);
  for (const std::string& k : keys) {
    EXPECT_EQ(all.find(ParseApiKey(k)->secret), std::string::npos);
  }
}

// The real kurt-edge checks API keys on its upstream calls' completion queues: the first key it
// checks starts no thread. gRPC 1.51's callback API, which it used for them, starts two polling
// threads ("nexting_thread") the first time it is used; they then read the upstream calls'
// responses off the connections, and each call paid a thread hop to its completion thread.
TEST_F(AccountsEdgeTest, CheckingAKeyStartsNoGrpcCallbackThreads) {
  const std::string key = NewAccount("no-callback-threads").second;
  ASSERT_FALSE(key.empty());
  const std::string upstream = absl::StrCat("127.0.0.1:", grpc_->grpc_port());
  const int port = kurt::testing::FreePort();
  const int admin_port = kurt::testing::FreePort();
  kurt::testing::ChildProcess edge(
      KURT_EDGE_BINARY,
      {absl::StrCat("--edge_port=", port), absl::StrCat("--admin_port=", admin_port),
       absl::StrCat("--accounts_address=", upstream),
       absl::StrCat("--upstream=kurt.accounts.v1.AccountsService=", upstream),
       "--edge_secret=edge-test-secret", "--upstream_host=", "--rate_per_address=0",
       "--rate_per_account=0", "--redirect_changes_channel=", "--io_threads=1"},
      absl::StrCat(::testing::TempDir(), "/", testing::RandomName("kurt-edge-"), ".log"));
  ASSERT_TRUE(edge.Start().ok()) << KURT_EDGE_BINARY;
  ASSERT_TRUE(kurt::testing::WaitReady(admin_port, absl::Seconds(30)))
      << "kurt-edge did not become ready: " << edge.LogTail();
  const Headers auth = {{"Authorization", "Bearer " + key}};
  // A request refused before any key check: the threads of an edge that serves requests (and
  // whose health checks have reached the upstream).
  ASSERT_EQ(Fetch(port, "GET", "/v1/keys", {}).status, 401u);
  const std::vector<std::string> before = ThreadNames(edge.pid());

  Reply r = Fetch(port, "GET", "/v1/keys", auth);
  ASSERT_EQ(r.status, 200u) << r.body << edge.LogTail();
  // A wrong key is checked too (not cached), and refused.
  EXPECT_EQ(Fetch(port, "GET", "/v1/keys", {{"Authorization", "Bearer " + key + "x"}}).status,
            401u);
  // Only gRPC's callback threads are looked for: its executors and event engine may grow on
  // their own.
  const std::vector<std::string> after = ThreadNames(edge.pid());
  int callback_threads = 0;
  for (const std::string& name : after) {
    callback_threads += absl::StartsWith(name, "nexting") ? 1 : 0;
  }
  EXPECT_EQ(callback_threads, 0) << "threads before: " << absl::StrJoin(before, ", ")
                                 << "; after: " << absl::StrJoin(after, ", ");
}

}  // namespace
}  // namespace kurt::accounts
