// The links service against the real stack: PostgreSQL primary + streaming replica, Redis, Kafka,
// wired by LinksModule as kurt-links wires it.
#include <atomic>
#include <cstdlib>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "kurt/events/v1/click.pb.h"
#include "kurt/links/v1/links.grpc.pb.h"
#include "platform/grpc/edge_trust.h"
#include "platform/grpc/server.h"
#include "platform/grpc/timestamps.h"
#include "platform/kafka/kafka.h"
#include "platform/pg/pg.h"
#include "platform/redis/record_seal.h"
#include "platform/redis/redis.h"
#include "services/common/mesh.h"
#include "services/links/click_publisher.h"
#include "services/links/fake_link_cache.h"
#include "services/links/links_module.h"
#include "services/links/resolver.h"
#include "tests/support/metric_value.h"
#include "tests/support/stack_env.h"
#include "tests/support/topic_reader.h"
#include "tests/support/wait_until.h"

namespace kurt::links {
namespace {

namespace v1 = kurt::links::v1;

// Runs `tools/stack <verb> <server>`; the stack script waits for readiness on start.
void Stack(const std::string& verb, const std::string& server) {
  std::string cmd =
      absl::StrCat(testing::SourceDir(), "/tools/stack ", verb, " ", server, " >/dev/null 2>&1");
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

class LinksIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pg::ClusterOptions po = db_.ClusterOptions();
    po.primary.max_connections = 16;
    po.replicas[0].max_connections = 16;
    po.max_replica_lag = absl::Seconds(2);
    po.check_interval = absl::Milliseconds(100);
    cluster_ = std::make_unique<pg::PgCluster>(po);

    redis_ = std::make_unique<redis::RedisClient>(*redis::Options::FromUrl(testing::RedisUrl()));
    topic_ = testing::RandomName("kurt.test.clicks.");
    testing::CreateTopic(topic_, 3);
    kafka::ProducerOptions ko;
    ko.brokers = testing::KafkaBrokers();
    producer_ = std::move(*kafka::KafkaProducer::Create(ko));

    config_.short_url_base = "http://kurt.test/";
    config_.click_hash_salt = "salt";
    config_.clicks_topic = topic_;
    config_.cache_key_prefix = testing::RandomName("kurt:test:link:") + ":";
    config_.max_replica_lag = po.max_replica_lag;
    links_ = Links(producer_.get(), &registry_);
    ASSERT_NE(links_, nullptr);
    platform::GrpcServerOptions go;
    go.name = "links";
    go.metrics_port = -1;
    server_ = std::make_unique<platform::GrpcServer>(go, &registry_);
    links_->AddTo(server_.get());
    ASSERT_TRUE(server_->Start().ok());
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->grpc_port()),
                                   grpc::InsecureChannelCredentials());
    stub_ = v1::LinksService::NewStub(channel_);
  }

  // A links module of this test's config on the stack's clients, with its own click producers and
  // metrics.
  std::unique_ptr<LinksModule> Links(kafka::KafkaProducer* producer, metrics::Registry* registry,
                                     kafka::KafkaProducer* unhurried = nullptr) {
    auto links = LinksModule::Create(config_, {.cluster = cluster_.get(),
                                               .redis = redis_.get(),
                                               .producer = producer,
                                               .registry = registry,
                                               .unhurried_producer = unhurried});
    EXPECT_TRUE(links.ok()) << links.status();
    return links.ok() ? *std::move(links) : nullptr;
  }

  // `links` on a server of its own (a port the fixture's module is not on), and a stub to it.
  struct OwnServer {
    std::unique_ptr<platform::GrpcServer> server;
    std::unique_ptr<v1::LinksService::Stub> stub;
  };
  OwnServer Serve(LinksModule* links, metrics::Registry* registry, const std::string& name) {
    platform::GrpcServerOptions go;
    go.name = name;
    go.metrics_port = -1;
    OwnServer own{std::make_unique<platform::GrpcServer>(go, registry), nullptr};
    links->AddTo(own.server.get());
    EXPECT_TRUE(own.server->Start().ok());
    own.stub = v1::LinksService::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", own.server->grpc_port()), grpc::InsecureChannelCredentials()));
    return own;
  }

  void TearDown() override {
    server_->Shutdown();
    ASSERT_TRUE(testing::PauseReplicaReplay(false).ok());
  }

  std::unique_ptr<grpc::ClientContext> As(const std::string& account) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    if (!account.empty()) {
      ctx->AddMetadata(std::string{platform::kAccountIdMetadata}, account);
    }
    ctx->AddMetadata(mesh::kClientIpMetadata, "203.0.113.7");
    ctx->AddMetadata(mesh::kUserAgentMetadata, "TestAgent/1.0");
    ctx->AddMetadata(mesh::kRefererMetadata, "https://ref.example/");
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return ctx;
  }

  // The edge, as it reports cached redirects: with its secret (this server has none to check).
  std::unique_ptr<grpc::ClientContext> AsEdge() {
    auto ctx = As("");
    ctx->AddMetadata(std::string{platform::kEdgeSecretMetadata}, "");
    return ctx;
  }

  grpc::Status Create(const std::string& account, const std::string& target, v1::Link* out,
                      const std::string& alias = "") {
    v1::CreateLinkRequest req;
    req.set_target_url(target);
    req.set_alias(alias);
    return stub_->CreateLink(As(account).get(), req, out);
  }

  grpc::Status Resolve(const std::string& code, std::string* target = nullptr) {
    v1::ResolveRequest req;
    req.set_code(code);
    v1::ResolveResponse res;
    grpc::Status s = stub_->Resolve(As("").get(), req, &res);
    if (target) {
      *target = res.target_url();
    }
    return s;
  }

  int64_t ReadCount(const std::string& source) {
    return static_cast<int64_t>(testing::MetricValue(
        registry_.Render(), absl::StrCat("kurt_links_db_reads_total{source=\"", source, "\"}")));
  }

  // The click events on the topic, once at least `n` have arrived (or 15 s passed), and then
  // `settle` more for any that should not be there.
  std::vector<kafka::Message> ConsumeClicks(size_t n,
                                            absl::Duration settle = absl::ZeroDuration()) {
    EXPECT_TRUE(producer_->Flush(absl::Seconds(10)).ok());
    testing::TopicReader reader(topic_);
    reader.WaitFor(n, absl::Seconds(15));
    absl::SleepFor(settle);
    return reader.Messages();
  }

  void ForgetCache(const std::string& code) {
    ASSERT_TRUE(redis_->Del({links_->cache().Key(code)}).ok());
  }

  testing::ScratchDatabase db_;
  metrics::Registry registry_;
  std::unique_ptr<pg::PgCluster> cluster_;
  std::unique_ptr<redis::RedisClient> redis_;
  std::string topic_;
  std::unique_ptr<kafka::KafkaProducer> producer_;
  LinksConfig config_;
  std::unique_ptr<LinksModule> links_;
  std::unique_ptr<platform::GrpcServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::LinksService::Stub> stub_;
};

// grpc.health.v1.Health/Check with an empty request and no metadata: true when SERVING.
bool Healthy(const std::shared_ptr<grpc::Channel>& channel) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  grpc::Slice empty("");
  grpc::ByteBuffer request(&empty, 1), response;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                 [&](const grpc::Status& s) { done.set_value(s); });
  if (!done.get_future().get().ok()) {
    return false;
  }
  std::vector<grpc::Slice> slices;
  response.Dump(&slices);
  std::string bytes;
  for (auto& s : slices) {
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return bytes == std::string("\x08\x01", 2);  // HealthCheckResponse { status: SERVING }
}

// With --edge_secret (GrpcServerOptions::edge_secret), x-kurt-account-id is believed only with
// the edge's secret: anyone else who reaches the port cannot act as an account.
TEST_F(LinksIntegrationTest, AnAccountWithoutTheEdgeSecretIsRefusedAndChangesNothing) {
  metrics::Registry registry;
  std::unique_ptr<LinksModule> links = Links(producer_.get(), &registry);
  ASSERT_NE(links, nullptr);
  platform::GrpcServerOptions go;
  go.name = "links";
  go.metrics_port = -1;
  go.shutdown_grace = absl::Seconds(1);
  go.edge_secret = "links-edge-secret";
  platform::GrpcServer server(go, &registry);
  links->AddTo(&server);
  ASSERT_TRUE(server.Start().ok());
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server.grpc_port()),
                                     grpc::InsecureChannelCredentials());
  auto stub = v1::LinksService::NewStub(channel);
  const std::string account = testing::RandomName("acct-trust-");
  const std::string alias = testing::RandomName("trust-");

  auto create = [&](const std::string& secret, v1::Link* out) {
    auto ctx = As(account);
    if (!secret.empty()) {
      ctx->AddMetadata(std::string{platform::kEdgeSecretMetadata}, secret);
    }
    v1::CreateLinkRequest req;
    req.set_target_url("https://example.com/trusted");
    req.set_alias(alias);
    return stub->CreateLink(ctx.get(), req, out);
  };
  v1::Link link;
  for (const std::string& secret : {std::string(), std::string("wrong-secret")}) {
    grpc::Status refused = create(secret, &link);
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAUTHENTICATED) << secret;
    EXPECT_NE(refused.error_message().find("x-kurt-edge-secret"), std::string::npos)
        << refused.error_message();
  }
  auto list_ctx = As(account);
  v1::ListLinksResponse list;
  EXPECT_EQ(stub->ListLinks(list_ctx.get(), v1::ListLinksRequest(), &list).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  // Nothing was created: the alias is still free (the primary's unique constraint says so).
  EXPECT_EQ(Resolve(alias).error_code(), grpc::StatusCode::NOT_FOUND);
  grpc::Status created = create("links-edge-secret", &link);
  ASSERT_TRUE(created.ok()) << created.error_message();
  EXPECT_EQ(link.code(), alias);
  // Without an account the service decides (Resolve is public) and health needs no secret.
  v1::ResolveRequest resolve;
  resolve.set_code(alias);
  v1::ResolveResponse resolved;
  auto resolve_ctx = As("");
  ASSERT_TRUE(stub->Resolve(resolve_ctx.get(), resolve, &resolved).ok());
  EXPECT_EQ(resolved.target_url(), "https://example.com/trusted");
  EXPECT_TRUE(Healthy(channel));
  server.Shutdown();
}

TEST_F(LinksIntegrationTest, CreateGetUpdateDeleteWithOwnership) {
  v1::Link link;
  ASSERT_TRUE(Create("acct-a", "https://example.com/page", &link).ok());
  EXPECT_EQ(link.code().size(), 7u);
  EXPECT_EQ(link.short_url(), "http://kurt.test/" + link.code());
  EXPECT_GT(link.create_time().seconds(), 0);

  v1::GetLinkRequest get;
  get.set_code(link.code());
  v1::Link got;
  ASSERT_TRUE(stub_->GetLink(As("acct-a").get(), get, &got).ok());
  EXPECT_EQ(got.target_url(), "https://example.com/page");
  // Another account cannot tell the link exists.
  EXPECT_EQ(stub_->GetLink(As("acct-b").get(), get, &got).error_code(), grpc::NOT_FOUND);
  EXPECT_EQ(stub_->GetLink(As("").get(), get, &got).error_code(), grpc::UNAUTHENTICATED);

  v1::UpdateLinkRequest update;
  update.set_code(link.code());
  update.set_target_url("https://example.com/new");
  v1::Link updated;
  EXPECT_EQ(stub_->UpdateLink(As("acct-b").get(), update, &updated).error_code(), grpc::NOT_FOUND);
  std::string target;
  ASSERT_TRUE(Resolve(link.code(), &target).ok());
  EXPECT_EQ(target, "https://example.com/page");
  ASSERT_TRUE(stub_->UpdateLink(As("acct-a").get(), update, &updated).ok());
  EXPECT_EQ(updated.target_url(), "https://example.com/new");
  ASSERT_TRUE(Resolve(link.code(), &target).ok());
  EXPECT_EQ(target, "https://example.com/new") << "the update reached the cache at once";

  v1::DeleteLinkRequest del;
  del.set_code(link.code());
  google::protobuf::Empty empty;
  EXPECT_EQ(stub_->DeleteLink(As("acct-b").get(), del, &empty).error_code(), grpc::NOT_FOUND);
  ASSERT_TRUE(stub_->DeleteLink(As("acct-a").get(), del, &empty).ok());
  EXPECT_EQ(Resolve(link.code()).error_code(), grpc::NOT_FOUND) << "deleted: stops at once";
  EXPECT_EQ(stub_->GetLink(As("acct-a").get(), get, &got).error_code(), grpc::NOT_FOUND);
  EXPECT_EQ(stub_->DeleteLink(As("acct-a").get(), del, &empty).error_code(), grpc::NOT_FOUND);
  // A deleted code is never handed out again.
  EXPECT_EQ(Create("acct-a", "https://x.example", &link, del.code()).error_code(),
            grpc::ALREADY_EXISTS);
}

TEST_F(LinksIntegrationTest, BadInputIsRejectedNamingTheFieldAndChangesNothing) {
  v1::Link link;
  struct Case {
    std::string target, alias, field;
  };
  for (const Case& c :
       std::vector<Case>{{"javascript:alert(1)", "", "target_url"},
                         {"data:text/html,x", "", "target_url"},
                         {"https://user:pw@example.com/", "", "target_url"},
                         {"ftp://example.com/", "", "target_url"},
                         {"https://example.com/" + std::string(2100, 'a'), "", "target_url"},
                         {"https://example.com/", "v1", "alias"},
                         {"https://example.com/", "healthz", "alias"},
                         {"https://example.com/", "a/b", "alias"},
                         {"https://example.com/", "ab", "alias"}}) {
    grpc::Status s = Create("acct-a", c.target, &link, c.alias);
    EXPECT_EQ(s.error_code(), grpc::INVALID_ARGUMENT) << c.target << " " << c.alias;
    EXPECT_EQ(s.error_message().rfind(c.field, 0), 0u) << s.error_message();
  }
  v1::CreateLinkRequest past;
  past.set_target_url("https://example.com/");
  past.mutable_expire_time()->set_seconds(1000);
  grpc::Status s = stub_->CreateLink(As("acct-a").get(), past, &link);
  EXPECT_EQ(s.error_code(), grpc::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("expire_time"), std::string::npos);

  v1::UpdateLinkRequest nothing;
  nothing.set_code("abcdefg");
  EXPECT_EQ(stub_->UpdateLink(As("acct-a").get(), nothing, &link).error_code(),
            grpc::INVALID_ARGUMENT);
  v1::ListLinksRequest bad_token;
  bad_token.set_page_token("not-a-token");
  v1::ListLinksResponse list;
  s = stub_->ListLinks(As("acct-a").get(), bad_token, &list);
  EXPECT_EQ(s.error_code(), grpc::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("page_token"), std::string::npos);

  v1::ListLinksRequest all;
  ASSERT_TRUE(stub_->ListLinks(As("acct-a").get(), all, &list).ok());
  EXPECT_EQ(list.links_size(), 0) << "no rejected request created anything";
}

TEST_F(LinksIntegrationTest, AliasesAreUniqueAndListsPaginateNewestFirst) {
  v1::Link link;
  ASSERT_TRUE(Create("acct-a", "https://example.com/1", &link, "my-alias").ok());
  EXPECT_EQ(link.code(), "my-alias");
  grpc::Status taken = Create("acct-b", "https://example.com/2", &link, "my-alias");
  EXPECT_EQ(taken.error_code(), grpc::ALREADY_EXISTS);
  EXPECT_NE(taken.error_message().find("alias"), std::string::npos);

  std::set<std::string> created = {"my-alias"};
  for (int i = 0; i < 24; ++i) {
    ASSERT_TRUE(Create("acct-a", absl::StrCat("https://example.com/", i), &link).ok());
    created.insert(link.code());
  }
  ASSERT_TRUE(Create("acct-b", "https://example.com/other", &link).ok());

  std::vector<std::string> seen;
  std::string token;
  int pages = 0;
  do {
    v1::ListLinksRequest req;
    req.set_page_size(10);
    req.set_page_token(token);
    v1::ListLinksResponse res;
    ASSERT_TRUE(stub_->ListLinks(As("acct-a").get(), req, &res).ok());
    for (const auto& l : res.links()) {
      seen.push_back(l.code());
    }
    token = res.next_page_token();
    ++pages;
  } while (!token.empty() && pages < 10);
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen.size(), 25u);
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()), created);
  EXPECT_EQ(seen.back(), "my-alias") << "newest first: the alias was created first";
}

TEST_F(LinksIntegrationTest, ResolvesRightAfterCreateWhileReplicaIsPaused) {
  ASSERT_TRUE(testing::PauseReplicaReplay(true).ok());
  v1::Link link;
  ASSERT_TRUE(Create("acct-a", "https://example.com/fresh", &link).ok());
  ForgetCache(link.code());  // force the database path
  std::string target;
  grpc::Status s = Resolve(link.code(), &target);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(target, "https://example.com/fresh");
  EXPECT_GE(ReadCount("primary"), 1) << "the primary confirmed what the replica lacked";
  ASSERT_TRUE(testing::PauseReplicaReplay(false).ok());
}

TEST_F(LinksIntegrationTest, OneDatabaseReadForAThousandConcurrentResolvesOfAColdCode) {
  v1::Link link;
  ASSERT_TRUE(Create("acct-a", "https://example.com/hot", &link).ok());
  db_.WaitForReplica();
  ForgetCache(link.code());
  const int64_t before = ReadCount("replica") + ReadCount("primary");

  std::atomic<int> ok{0}, done{0};
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<v1::ResolveRequest> requests(1000);
  std::vector<v1::ResolveResponse> responses(1000);
  std::mutex mu;
  std::condition_variable cv;
  for (int i = 0; i < 1000; ++i) {
    contexts.push_back(As(""));
    requests[i].set_code(link.code());
    stub_->async()->Resolve(contexts.back().get(), &requests[i], &responses[i],
                            [&](const grpc::Status& s) {
                              if (s.ok()) {
                                ok++;
                              }
                              std::lock_guard<std::mutex> l(mu);
                              done++;
                              cv.notify_one();
                            });
  }
  std::unique_lock<std::mutex> l(mu);
  ASSERT_TRUE(cv.wait_for(l, std::chrono::seconds(30), [&] { return done == 1000; }));
  EXPECT_EQ(ok, 1000);
  EXPECT_EQ(ReadCount("replica") + ReadCount("primary") - before, 1)
      << "a burst of misses of one code makes one database read";
}

TEST_F(LinksIntegrationTest, ExpiredLinksStopResolvingAtOnce) {
  v1::CreateLinkRequest req;
  req.set_target_url("https://example.com/soon-gone");
  absl::Time expiry = absl::Now() + absl::Milliseconds(1500);
  req.mutable_expire_time()->set_seconds(absl::ToUnixSeconds(expiry));
  req.mutable_expire_time()->set_nanos(static_cast<int32_t>(
      absl::ToInt64Nanoseconds(expiry - absl::FromUnixSeconds(absl::ToUnixSeconds(expiry)))));
  v1::Link link;
  ASSERT_TRUE(stub_->CreateLink(As("acct-a").get(), req, &link).ok());
  ASSERT_TRUE(Resolve(link.code()).ok());
  absl::SleepFor(expiry - absl::Now() + absl::Milliseconds(50));
  EXPECT_EQ(Resolve(link.code()).error_code(), grpc::NOT_FOUND);
  ForgetCache(link.code());
  EXPECT_EQ(Resolve(link.code()).error_code(), grpc::NOT_FOUND) << "from the database too";
}

TEST_F(LinksIntegrationTest, UnknownCodeIsNotFoundAndItsMissIsCachedOnlyAfterThePrimary) {
  const int64_t primary_before = ReadCount("primary");
  EXPECT_EQ(Resolve("nosuchcode").error_code(), grpc::NOT_FOUND);
  EXPECT_EQ(ReadCount("primary") - primary_before, 1);
  auto cached = redis_->Get(links_->cache().Key("nosuchcode"));
  ASSERT_TRUE(cached.ok() && cached->has_value());
  EXPECT_EQ(redis::RecordSeal(redis::kDevelopmentRecordSecret)
                .Open(links_->cache().Key("nosuchcode"), **cached),
            "M");
  EXPECT_EQ(Resolve("nosuchcode").error_code(), grpc::NOT_FOUND);
  EXPECT_EQ(ReadCount("primary") - primary_before, 1) << "the second miss came from Redis";
  // Creating the code as an alias replaces the cached miss at once.
  v1::Link link;
  ASSERT_TRUE(Create("acct-a", "https://example.com/now", &link, "nosuchcode").ok());
  EXPECT_TRUE(Resolve("nosuchcode").ok());
  EXPECT_EQ(Resolve("bad/code").error_code(), grpc::NOT_FOUND);
}

// Someone who can write to Redis but lacks the record secret points a real code at their own
// site, by writing a record of their own or by copying another code's sealed record: neither
// verifies, so the code resolves to its own target (from the database), and the forged value is
// replaced. Without the seal, the code would have redirected to the forger's target.
TEST_F(LinksIntegrationTest, AForgedCachedLinkIsIgnoredAndReplaced) {
  v1::Link victim, attacker;
  ASSERT_TRUE(Create("acct-a", "https://example.com/real", &victim).ok());
  ASSERT_TRUE(Create("acct-b", "https://evil.example/phish", &attacker).ok());
  ASSERT_TRUE(Resolve(victim.code()).ok());
  ASSERT_TRUE(Resolve(attacker.code()).ok());
  const std::string key = links_->cache().Key(victim.code());
  auto attackers_record = redis_->Get(links_->cache().Key(attacker.code()));
  ASSERT_TRUE(attackers_record.ok() && attackers_record->has_value());
  for (const std::string& forged :
       {std::string("L||https://evil.example/phish"), **attackers_record}) {
    ASSERT_TRUE(redis_->Set(key, forged, absl::Minutes(5)).ok());
    std::string target;
    grpc::Status s = Resolve(victim.code(), &target);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(target, "https://example.com/real") << "forged: " << forged;
    auto now = redis_->Get(key);
    ASSERT_TRUE(now.ok());
    EXPECT_NE(now->value_or(""), forged);
  }
}

TEST_F(LinksIntegrationTest, ResolvePublishesAClickEventKeyedByCode) {
  v1::Link link;
  ASSERT_TRUE(Create("acct-a", "https://example.com/clicked", &link).ok());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(Resolve(link.code()).ok());
  }
  std::vector<kafka::Message> got = ConsumeClicks(3);
  ASSERT_EQ(got.size(), 3u);
  std::set<std::string> ids;
  for (const auto& m : got) {
    EXPECT_EQ(m.key, link.code());
    events::v1::ClickEvent e;
    ASSERT_TRUE(e.ParseFromString(m.value));
    EXPECT_EQ(e.code(), link.code());
    EXPECT_EQ(e.referrer(), "https://ref.example/");
    EXPECT_EQ(e.user_agent(), "TestAgent/1.0");
    EXPECT_EQ(e.client_hash(), KafkaClickSink::HashClient("salt", "203.0.113.7"));
    EXPECT_EQ(e.client_hash().find("203.0.113.7"), std::string::npos);
    EXPECT_NEAR(e.time().seconds(), absl::ToUnixSeconds(absl::Now()), 60);
    EXPECT_EQ(m.Header("event-id").value(), e.event_id());
    ids.insert(e.event_id());
  }
  EXPECT_EQ(ids.size(), 3u);
}

api::v1::CachedRedirects::Hit CachedHit(const std::string& code, absl::Time time,
                                        const std::string& agent) {
  api::v1::CachedRedirects::Hit hit;
  v1::ResolveRequest resolve;
  resolve.set_code(code);
  hit.set_request(resolve.SerializeAsString());
  platform::SetTimestamp(time, hit.mutable_time());
  (*hit.mutable_metadata())[mesh::kUserAgentMetadata] = agent;
  (*hit.mutable_metadata())[mesh::kRefererMetadata] = "https://ref.example/cached";
  (*hit.mutable_metadata())[mesh::kClientIpMetadata] = "198.51.100.9";
  return hit;
}

TEST_F(LinksIntegrationTest, RedirectsTheEdgeAnsweredFromItsCacheBecomeClicksAtTheirOwnTime) {
  const absl::Time when = absl::FromUnixMicros(absl::ToUnixMicros(absl::Now()) - 3'000'123);
  api::v1::CachedRedirects batch;
  *batch.add_hits() = CachedHit("cachedone", when, "Agent/1");
  *batch.add_hits() = CachedHit("cachedone", when + absl::Milliseconds(1), "Agent/2");
  *batch.add_hits() = CachedHit("cachedtwo", when, "Agent/3");
  google::protobuf::Empty empty;
  grpc::Status s = stub_->RecordCachedRedirects(AsEdge().get(), batch, &empty);
  ASSERT_TRUE(s.ok()) << s.error_message();

  std::vector<kafka::Message> got = ConsumeClicks(3);
  ASSERT_EQ(got.size(), 3u);
  std::map<std::string, events::v1::ClickEvent> by_agent;
  for (const auto& m : got) {
    events::v1::ClickEvent e;
    ASSERT_TRUE(e.ParseFromString(m.value));
    EXPECT_EQ(m.key, e.code());
    EXPECT_EQ(e.referrer(), "https://ref.example/cached");
    EXPECT_EQ(e.client_hash(), KafkaClickSink::HashClient("salt", "198.51.100.9"));
    by_agent[e.user_agent()] = e;
  }
  ASSERT_EQ(by_agent.size(), 3u);
  EXPECT_EQ(by_agent["Agent/1"].code(), "cachedone");
  EXPECT_EQ(platform::FromTimestamp(by_agent["Agent/1"].time()), when);
  EXPECT_EQ(platform::FromTimestamp(by_agent["Agent/2"].time()), when + absl::Milliseconds(1));
  EXPECT_EQ(by_agent["Agent/3"].code(), "cachedtwo");
}

// The edge forgets reported hits once RecordCachedRedirects answers OK, so it answers OK only
// when Kafka has the clicks; with no broker reachable it says UNAVAILABLE (the edge tries again).
TEST_F(LinksIntegrationTest, CachedRedirectsAreAcknowledgedOnlyOnceKafkaHasTheirClicks) {
  kafka::ProducerOptions ko;
  ko.brokers = "127.0.0.1:1";  // nothing listens there
  ko.extra["message.timeout.ms"] = "500";
  auto nowhere = std::move(*kafka::KafkaProducer::Create(ko));
  metrics::Registry registry;
  std::unique_ptr<LinksModule> unreachable = Links(nowhere.get(), &registry);
  ASSERT_NE(unreachable, nullptr);
  OwnServer own = Serve(unreachable.get(), &registry, "links-without-kafka");

  api::v1::CachedRedirects batch;
  *batch.add_hits() = CachedHit("unsentcode", absl::Now(), "Agent/1");
  grpc::ClientContext ctx;
  ctx.AddMetadata(std::string{platform::kEdgeSecretMetadata}, "");
  // librdkafka fails the message after its 500 ms timeout (it looks about once a second).
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  google::protobuf::Empty empty;
  grpc::Status s = own.stub->RecordCachedRedirects(&ctx, batch, &empty);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  // Kafka's own words stay in the log: the caller gets a generic message with the request id.
  EXPECT_EQ(s.error_message().find("Message timed out"), std::string::npos) << s.error_message();
  own.server->Shutdown();

  // With Kafka reachable the same batch is acknowledged, and its click is on the topic by then.
  grpc::Status ok = stub_->RecordCachedRedirects(AsEdge().get(), batch, &empty);
  ASSERT_TRUE(ok.ok()) << ok.error_message();
  std::vector<kafka::Message> got = ConsumeClicks(1);
  ASSERT_EQ(got.size(), 1u);
}

// A held batch (redirects wait for it) goes to Kafka at once; an unheld one goes through the
// unhurried producer, which gathers clicks for its linger (1.5 s here, to tell them apart).
TEST_F(LinksIntegrationTest, OnlyAnUnheldBatchOfCachedRedirectsWaitsForTheUnhurriedLinger) {
  kafka::ProducerOptions ko;
  ko.brokers = testing::KafkaBrokers();
  ko.linger = absl::Milliseconds(1500);
  auto unhurried = std::move(*kafka::KafkaProducer::Create(ko));
  metrics::Registry registry;
  std::unique_ptr<LinksModule> links = Links(producer_.get(), &registry, unhurried.get());
  ASSERT_NE(links, nullptr);
  OwnServer own = Serve(links.get(), &registry, "links-unhurried");
  auto record = [&](bool held, const std::string& agent) {
    api::v1::CachedRedirects batch;
    *batch.add_hits() = CachedHit("gathered", absl::Now(), agent);
    batch.set_held(held);
    google::protobuf::Empty empty;
    const absl::Time start = absl::Now();
    grpc::Status s = own.stub->RecordCachedRedirects(AsEdge().get(), batch, &empty);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return absl::Now() - start;
  };
  EXPECT_LT(record(true, "Held/1"), absl::Seconds(1)) << "a held batch waited for the linger";
  EXPECT_GE(record(false, "Unheld/1"), absl::Milliseconds(1200))
      << "an unheld batch went without the unhurried producer's linger";
  std::vector<kafka::Message> got = ConsumeClicks(2, absl::Milliseconds(500));
  std::set<std::string> agents;
  for (const auto& m : got) {
    events::v1::ClickEvent e;
    ASSERT_TRUE(e.ParseFromString(m.value));
    agents.insert(e.user_agent());
  }
  EXPECT_EQ(agents, (std::set<std::string>{"Held/1", "Unheld/1"}));
  own.server->Shutdown();
}

TEST_F(LinksIntegrationTest, ABadCachedRedirectBatchIsRefusedNamingTheHitAndPublishesNothing) {
  const absl::Time now = absl::Now();
  auto refused = [&](const api::v1::CachedRedirects& batch, const std::string& names) {
    google::protobuf::Empty empty;
    grpc::Status s = stub_->RecordCachedRedirects(AsEdge().get(), batch, &empty);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << names;
    EXPECT_NE(s.error_message().find(names), std::string::npos) << s.error_message();
  };
  api::v1::CachedRedirects batch;
  *batch.add_hits() = CachedHit("goodcode", now, "Refused/1");
  *batch.add_hits() = CachedHit("goodcode", now, "Refused/1");
  batch.mutable_hits(1)->set_request("\xff\xff not a message");
  refused(batch, "hits[1].request");
  batch.mutable_hits(1)->set_request(CachedHit("bad code!", now, "x").request());
  refused(batch, "hits[1].request: code");
  *batch.mutable_hits(1) = CachedHit("goodcode", now + absl::Minutes(5), "Refused/1");
  refused(batch, "hits[1].time");
  *batch.mutable_hits(1) = CachedHit("goodcode", now - absl::Hours(25), "Refused/1");
  refused(batch, "hits[1].time");
  batch.mutable_hits(1)->mutable_time()->set_nanos(-1);
  refused(batch, "hits[1].time");
  api::v1::CachedRedirects too_many;
  for (int i = 0; i <= kMaxCachedRedirectsPerCall; ++i) {
    *too_many.add_hits() = batch.hits(0);
  }
  refused(too_many, "hits: at most");

  // Then one good hit: it is the only click on the topic.
  api::v1::CachedRedirects good;
  *good.add_hits() = CachedHit("goodcode", now, "Accepted/1");
  google::protobuf::Empty empty;
  ASSERT_TRUE(stub_->RecordCachedRedirects(AsEdge().get(), good, &empty).ok());
  std::vector<kafka::Message> got = ConsumeClicks(1, absl::Seconds(2));
  ASSERT_EQ(got.size(), 1u);
  events::v1::ClickEvent e;
  ASSERT_TRUE(e.ParseFromString(got[0].value));
  EXPECT_EQ(e.user_agent(), "Accepted/1");
}

TEST_F(LinksIntegrationTest, EveryCallWorksWhileRedisIsStopped) {
  v1::Link link;
  ASSERT_TRUE(Create("acct-a", "https://example.com/before", &link).ok());
  ASSERT_TRUE(Resolve(link.code()).ok());
  Stack("stop", "redis");
  v1::Link other;
  grpc::Status s = Create("acct-a", "https://example.com/during", &other);
  EXPECT_TRUE(s.ok()) << s.error_message();
  std::string target;
  s = Resolve(link.code(), &target);
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(target, "https://example.com/before");
  EXPECT_TRUE(Resolve(other.code()).ok());
  v1::UpdateLinkRequest update;
  update.set_code(link.code());
  update.set_target_url("https://example.com/changed-while-redis-was-down");
  EXPECT_TRUE(stub_->UpdateLink(As("acct-a").get(), update, &other).ok());
  EXPECT_TRUE(Resolve(link.code(), &target).ok());
  EXPECT_EQ(target, "https://example.com/changed-while-redis-was-down");
  Stack("start", "redis");
  // Redis kept the old value on disk; the change made while it was down replaces it.
  absl::SleepFor(absl::Seconds(1));  // the client's circuit breaker closes again
  ASSERT_TRUE(Resolve(link.code(), &target).ok());
  EXPECT_EQ(target, "https://example.com/changed-while-redis-was-down");
  ASSERT_TRUE(Resolve(link.code(), &target).ok());
  EXPECT_EQ(target, "https://example.com/changed-while-redis-was-down");
}

TEST_F(LinksIntegrationTest, ReadsGoToThePrimaryWhileTheReplicaIsStopped) {
  v1::Link link;
  ASSERT_TRUE(Create("acct-a", "https://example.com/replica-down", &link).ok());
  Stack("stop", "pg-replica");
  ForgetCache(link.code());
  std::string target;
  grpc::Status s = Resolve(link.code(), &target);
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(target, "https://example.com/replica-down");
  Stack("start", "pg-replica");
}

// A link with max_clicks is counted by an UPDATE on the primary, which waits while its row is
// locked (another replica counting it, a long transaction, a failover). Meanwhile the other links'
// redirects, answered from Redis by one thread, go on; the counted one goes out once it is counted.
TEST_F(LinksIntegrationTest, ARedirectWaitingToBeCountedHoldsUpNoOtherRedirect) {
  v1::CreateLinkRequest req;
  req.set_target_url("https://example.com/limited");
  req.set_max_clicks(5);
  v1::Link limited;
  ASSERT_TRUE(stub_->CreateLink(As("acct-a").get(), req, &limited).ok());
  v1::Link plain;
  ASSERT_TRUE(Create("acct-a", "https://example.com/plain", &plain).ok());
  // Both in Redis: each redirect below is a cache hit, answered by the cache's thread.
  ASSERT_TRUE(Resolve(limited.code()).ok());
  ASSERT_TRUE(Resolve(plain.code()).ok());

  pqxx::connection blocker(db_.primary_url());
  pqxx::work lock(blocker);
  lock.exec_params("SELECT 1 FROM links WHERE code = $1 FOR UPDATE", limited.code());
  std::future<grpc::Status> counted =
      std::async(std::launch::async, [&] { return Resolve(limited.code()); });
  // Until its UPDATE waits for the row.
  auto waiting_for_lock = [&] {
    pqxx::connection c(db_.primary_url());
    pqxx::nontransaction tx(c);
    return tx.exec1(
                 "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                 "AND datname = current_database()")[0]
               .as<int>() > 0;
  };
  ASSERT_TRUE(testing::WaitUntil(waiting_for_lock, absl::Seconds(5)))
      << "the counted redirect never reached its UPDATE";

  for (int i = 0; i < 20; ++i) {
    v1::ResolveRequest r;
    r.set_code(plain.code());
    v1::ResolveResponse res;
    auto ctx = As("");
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    const absl::Time start = absl::Now();
    grpc::Status s = stub_->Resolve(ctx.get(), r, &res);
    ASSERT_TRUE(s.ok()) << "a plain redirect waited for the counted one: " << s.error_message();
    EXPECT_EQ(res.target_url(), "https://example.com/plain");
    EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  }
  EXPECT_EQ(counted.wait_for(std::chrono::milliseconds(0)), std::future_status::timeout)
      << "the counted redirect went out while its row was locked";

  lock.commit();
  grpc::Status s = counted.get();
  EXPECT_TRUE(s.ok()) << s.error_message();
  pqxx::nontransaction read(blocker);
  EXPECT_EQ(
      read.exec_params1("SELECT clicks FROM links WHERE code = $1", limited.code())[0].as<int>(),
      2);
}

// kurt-links stopping while its database hangs (the links table locked: every read waits for its
// statement timeout): the redirects queued for a load thread are answered UNAVAILABLE at once, and
// the stop waits only for the reads under way, not for the queue, kLoadThreads reads at a time.
TEST(ResolverStopTest, StoppingDuringADatabaseOutageAnswersTheQueuedLoadsAtOnce) {
  testing::ScratchDatabase db;
  pg::ClusterOptions po = db.ClusterOptions();
  po.replicas.clear();  // the reads go to the primary, where the lock is
  po.primary.statement_timeout = absl::Milliseconds(300);
  po.primary.max_connections = 2 * Resolver::kLoadThreads;
  pg::PgCluster cluster(po);
  metrics::Registry registry;
  PgLinksStore store(&cluster, &registry);
  FakeLinkCache cache;  // every code a miss: a database read
  auto resolver = std::make_unique<Resolver>(&store, &cache, &registry);

  pqxx::connection blocker(db.primary_url());
  pqxx::work lock(blocker);
  lock.exec("LOCK TABLE links IN ACCESS EXCLUSIVE MODE");

  constexpr int kCodes = 100;  // one call each: as many loads
  std::mutex mu;
  std::vector<absl::Status> answers;
  for (int i = 0; i < kCodes; ++i) {
    resolver->ResolveAsync(absl::StrCat("hang", i), absl::InfiniteFuture(),
                           [&](const absl::StatusOr<CachedLink>& link) {
                             std::lock_guard<std::mutex> guard(mu);
                             answers.push_back(link.status());
                           });
  }
  absl::SleepFor(absl::Milliseconds(100));  // each load thread waits on the lock
  // One load reads the replica's pool, then the primary: two statement timeouts at most.
  const absl::Time start = absl::Now();
  resolver.reset();
  const absl::Duration stop = absl::Now() - start;
  EXPECT_LT(stop, absl::Seconds(2)) << "the stop waited for the queued loads";

  std::lock_guard<std::mutex> guard(mu);
  ASSERT_EQ(answers.size(), static_cast<size_t>(kCodes));
  int stopping = 0;
  for (const absl::Status& s : answers) {
    EXPECT_FALSE(s.ok()) << s;
    if (absl::IsUnavailable(s) && s.message() == "kurt-links is stopping") {
      ++stopping;
    }
  }
  EXPECT_GE(stopping, kCodes - 2 * Resolver::kLoadThreads) << "queued calls answered at the stop";
}

}  // namespace
}  // namespace kurt::links
