// Mutual TLS on the gRPC hop from the edge to kurt-links, with certificates from tools/certs: a
// server with --tls_* refuses clients without a certificate of its CA; only the edge (its
// certificate or its secret) may report cached redirects, which links counts as clicks; and the
// real edge reaches a real kurt-links (on the local stack) through mTLS.
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "edge/edge_server.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "kurt/events/v1/click.pb.h"
#include "kurt/links/v1/links.grpc.pb.h"
#include "platform/grpc/edge_trust.h"
#include "platform/grpc/server.h"
#include "platform/grpc/timestamps.h"
#include "platform/grpc/tls.h"
#include "platform/kafka/kafka.h"
#include "platform/pg/pg.h"
#include "platform/redis/redis.h"
#include "services/common/mesh.h"
#include "services/links/links_module.h"
#include "tests/support/http_client.h"
#include "tests/support/metric_value.h"
#include "tests/support/stack_env.h"
#include "tests/support/topic_reader.h"

namespace kurt::links {
namespace {

namespace v1 = kurt::links::v1;

// Certificates made by the project's own script: `dir` holds a CA and one certificate per identity.
std::string MakeCertificates(const std::string& dir, const std::string& identities) {
  std::string cmd = absl::StrCat(testing::SourceDir(), "/tools/certs ", dir, " ", identities);
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  return dir;
}

platform::TlsFiles Files(const std::string& dir, const std::string& identity) {
  return {absl::StrCat(dir, "/", identity, ".crt"), absl::StrCat(dir, "/", identity, ".key"),
          absl::StrCat(dir, "/ca.crt")};
}

std::optional<platform::TlsConfig> Load(const platform::TlsFiles& files) {
  absl::StatusOr<std::optional<platform::TlsConfig>> tls = platform::LoadTls(files);
  EXPECT_TRUE(tls.ok()) << tls.status();
  return tls.ok() ? *tls : std::nullopt;
}

api::v1::CachedRedirects::Hit CachedHit(const std::string& code, const std::string& agent) {
  api::v1::CachedRedirects::Hit hit;
  v1::ResolveRequest resolve;
  resolve.set_code(code);
  hit.set_request(resolve.SerializeAsString());
  platform::SetTimestamp(absl::Now(), hit.mutable_time());
  (*hit.mutable_metadata())[mesh::kUserAgentMetadata] = agent;
  (*hit.mutable_metadata())[mesh::kClientIpMetadata] = "198.51.100.9";
  return hit;
}

class LinksMtlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(std::filesystem::temp_directory_path() /
                           testing::RandomName("kurt-mtls-test-"));
    // Kurt's CA with the edge, links and another service; a stranger's CA with an "edge".
    MakeCertificates(*dir_ + "/kurt", "kurt-edge kurt-links kurt-reports");
    MakeCertificates(*dir_ + "/stranger", "kurt-edge");
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*dir_);
    delete dir_;
  }

  void SetUp() override {
    cluster_ = std::make_unique<pg::PgCluster>(db_.ClusterOptions());
    redis_ = std::make_unique<redis::RedisClient>(*redis::Options::FromUrl(testing::RedisUrl()));
    topic_ = testing::RandomName("kurt.test.clicks.");
    testing::CreateTopic(topic_, 1);
    kafka::ProducerOptions ko;
    ko.brokers = testing::KafkaBrokers();
    producer_ = std::move(*kafka::KafkaProducer::Create(ko));
    LinksConfig config;
    config.short_url_base = "http://kurt.test/";
    config.click_hash_salt = "salt";
    config.clicks_topic = topic_;
    config.cache_key_prefix = testing::RandomName("kurt:test:link:") + ":";
    auto links = LinksModule::Create(config, {.cluster = cluster_.get(),
                                              .redis = redis_.get(),
                                              .producer = producer_.get(),
                                              .registry = &registry_});
    ASSERT_TRUE(links.ok()) << links.status();
    links_ = *std::move(links);
  }

  void TearDown() override {
    if (server_) {
      server_->Shutdown();
    }
  }

  // kurt-links as deployed with mTLS (its own certificate) and, if given, the edge's secret.
  void StartLinks(platform::TlsFiles tls, std::string edge_secret = "") {
    platform::GrpcServerOptions go;
    go.name = "links-mtls";
    go.metrics_port = -1;
    go.h2_port = 0;  // Resolve on Kurt's own HTTP/2 server too, as deployed
    go.tls = std::move(tls);
    go.edge_secret = std::move(edge_secret);
    server_ = std::make_unique<platform::GrpcServer>(go, &registry_);
    links_->AddTo(server_.get());
    absl::Status started = server_->Start();
    ASSERT_TRUE(started.ok()) << started;
  }

  std::string Address() const { return absl::StrCat("127.0.0.1:", server_->grpc_port()); }
  std::string H2Address() const { return absl::StrCat("127.0.0.1:", server_->h2_port()); }

  std::unique_ptr<v1::LinksService::Stub> Stub(
      const std::shared_ptr<grpc::ChannelCredentials>& credentials) {
    return v1::LinksService::NewStub(grpc::CreateChannel(Address(), credentials));
  }
  std::unique_ptr<v1::LinksService::Stub> StubAs(const std::string& ca_dir,
                                                 const std::string& identity) {
    return Stub(platform::ChannelCredentials(Load(Files(ca_dir, identity))));
  }

  // A redirect of a code that does not exist: NOT_FOUND once a connection is made.
  grpc::Status ResolveWith(const std::shared_ptr<grpc::ChannelCredentials>& credentials) {
    v1::ResolveRequest resolve;
    resolve.set_code("nosuchcode");
    v1::ResolveResponse resolved;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    return Stub(credentials)->Resolve(&ctx, resolve, &resolved);
  }

  grpc::Status Report(v1::LinksService::Stub* stub, const std::string& code,
                      const std::string& agent, const std::string* secret = nullptr) {
    api::v1::CachedRedirects batch;
    *batch.add_hits() = CachedHit(code, agent);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (secret != nullptr) {
      ctx.AddMetadata(std::string(platform::kEdgeSecretMetadata), *secret);
    }
    google::protobuf::Empty empty;
    return stub->RecordCachedRedirects(&ctx, batch, &empty);
  }

  // The user agents of the click events on the topic, once `n` have arrived (or 15 s passed),
  // then one more second for any that should not be there.
  std::multiset<std::string> ClickAgents(size_t n) {
    EXPECT_TRUE(producer_->Flush(absl::Seconds(10)).ok());
    testing::TopicReader reader(topic_);
    reader.WaitFor(n, absl::Seconds(15));
    absl::SleepFor(absl::Seconds(1));
    std::multiset<std::string> agents;
    for (const kafka::Message& m : reader.Messages()) {
      events::v1::ClickEvent e;
      EXPECT_TRUE(e.ParseFromString(m.value));
      agents.insert(e.user_agent());
    }
    return agents;
  }

  static inline std::string* dir_ = nullptr;
  testing::ScratchDatabase db_;
  metrics::Registry registry_;
  std::unique_ptr<pg::PgCluster> cluster_;
  std::unique_ptr<redis::RedisClient> redis_;
  std::string topic_;
  std::unique_ptr<kafka::KafkaProducer> producer_;
  std::unique_ptr<LinksModule> links_;
  std::unique_ptr<platform::GrpcServer> server_;
};

TEST_F(LinksMtlsTest, AServerWithMutualTlsServesOnlyClientsWithACertificateOfItsCa) {
  const std::string kurt = *dir_ + "/kurt";
  StartLinks(Files(kurt, "kurt-links"));

  // Plaintext, TLS without a client certificate, a certificate of another CA: no connection.
  EXPECT_EQ(ResolveWith(grpc::InsecureChannelCredentials()).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  grpc::SslCredentialsOptions no_cert;
  no_cert.pem_root_certs = Load(Files(kurt, "kurt-edge"))->ca_pem;
  EXPECT_EQ(ResolveWith(grpc::SslCredentials(no_cert)).error_code(), grpc::StatusCode::UNAVAILABLE);
  grpc::SslCredentialsOptions stranger;
  stranger.pem_root_certs = no_cert.pem_root_certs;  // trusts the server...
  std::optional<platform::TlsConfig> foreign = Load(Files(*dir_ + "/stranger", "kurt-edge"));
  stranger.pem_cert_chain = foreign->cert_pem;  // ...but shows a certificate it cannot verify
  stranger.pem_private_key = foreign->key_pem;
  EXPECT_EQ(ResolveWith(grpc::SslCredentials(stranger)).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  // And a client of the stranger's CA does not believe Kurt's server either.
  EXPECT_EQ(ResolveWith(platform::ChannelCredentials(foreign)).error_code(),
            grpc::StatusCode::UNAVAILABLE);

  // Any certificate of Kurt's CA is served.
  grpc::Status s = ResolveWith(platform::ChannelCredentials(Load(Files(kurt, "kurt-reports"))));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
}

TEST_F(LinksMtlsTest, OnlyTheEdgeMayReportCachedRedirectsByItsCertificateOrItsSecret) {
  const std::string kurt = *dir_ + "/kurt";
  const std::string secret = "mtls-test-secret";
  const std::string wrong = "not-the-secret";
  StartLinks(Files(kurt, "kurt-links"), secret);
  auto other = StubAs(kurt, "kurt-reports");
  auto edge = StubAs(kurt, "kurt-edge");

  // Another service of the same CA, without the secret or with a wrong one: refused, no click.
  grpc::Status s = Report(other.get(), "somecode", "Forged/1");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  EXPECT_NE(s.error_message().find("only the edge may make this call"), std::string::npos)
      << s.error_message();
  s = Report(other.get(), "somecode", "Forged/2", &wrong);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  // Nor may it name an account.
  grpc::ClientContext as_account;
  as_account.AddMetadata(std::string(platform::kAccountIdMetadata), "acct-forged");
  v1::CreateLinkRequest create;
  create.set_target_url("https://example.com/forged");
  v1::Link link;
  s = other->CreateLink(&as_account, create, &link);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << s.error_message();

  // The edge by its certificate alone, and any caller with the edge's secret.
  s = Report(edge.get(), "somecode", "Edge/cert");
  EXPECT_TRUE(s.ok()) << s.error_message();
  s = Report(other.get(), "somecode", "Edge/secret", &secret);
  EXPECT_TRUE(s.ok()) << s.error_message();
  grpc::ClientContext edge_account;
  edge_account.AddMetadata(std::string(platform::kAccountIdMetadata), "acct-edge");
  s = edge->CreateLink(&edge_account, create, &link);
  EXPECT_TRUE(s.ok()) << s.error_message();

  std::multiset<std::string> agents = ClickAgents(2);
  EXPECT_EQ(agents, (std::multiset<std::string>{"Edge/cert", "Edge/secret"}));
}

// Without TLS the secret alone names the edge, as before.
TEST_F(LinksMtlsTest, WithoutTlsOnlyTheEdgesSecretMayReportCachedRedirects) {
  const std::string secret = "plain-test-secret";
  StartLinks({}, secret);
  auto stub = Stub(grpc::InsecureChannelCredentials());
  grpc::Status s = Report(stub.get(), "somecode", "Forged/plain");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  const std::string empty;
  s = Report(stub.get(), "somecode", "Forged/empty", &empty);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  s = Report(stub.get(), "somecode", "Edge/plain", &secret);
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(ClickAgents(1), (std::multiset<std::string>{"Edge/plain"}));
}

// The real edge in front of the real kurt-links, every call through mTLS and no secret at all:
// the edge's certificate carries the account it authenticated, the redirect works (its Resolve
// only on links' h2 port, as deployed), and the redirects it answers from its cache reach links as
// clicks. An edge of another CA gets 503.
TEST_F(LinksMtlsTest, TheEdgeServesThroughMutualTlsToRealLinks) {
  const std::string kurt = *dir_ + "/kurt";
  StartLinks(Files(kurt, "kurt-links"));

  auto start_edge = [&](const std::string& ca_dir) {
    edge::EdgeServerConfig c;
    c.http.port = 0;
    c.http.threads = 2;
    c.dev_trust_account_header = true;  // the account from X-Kurt-Account-Id, no accounts service
    // Two addresses (replicas), as tools/run --ha gives them: checked against kurt-links.
    c.upstreams = {
        absl::StrCat("kurt.links.v1.LinksService=", Address(), ",", Address()),
        absl::StrCat("kurt.links.v1.LinksService/Resolve=", H2Address(), ",", H2Address())};
    c.default_upstream_host = "";
    c.upstream.tls = Load(Files(ca_dir, "kurt-edge"));
    c.edge.cached_hits.interval = absl::Milliseconds(50);
    absl::StatusOr<std::unique_ptr<edge::EdgeServer>> s = edge::EdgeServer::Start(std::move(c));
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *std::move(s) : nullptr;
  };
  std::unique_ptr<edge::EdgeServer> edge = start_edge(kurt);
  ASSERT_NE(edge, nullptr);

  kurt::testing::Reply created = kurt::testing::Fetch(
      edge->port(), "POST", "/v1/links",
      {{"Content-Type", "application/json"}, {"X-Kurt-Account-Id", "acct-mtls"}},
      R"({"targetUrl": "https://example.com/mtls", "alias": "mtls-link"})");
  ASSERT_LT(created.status, 300u) << created.body;
  constexpr int kRedirects = 5;
  for (int i = 0; i < kRedirects; ++i) {
    kurt::testing::Reply r = kurt::testing::Fetch(edge->port(), "GET", "/mtls-link",
                                                  {{"User-Agent", absl::StrCat("Browser/", i)}});
    ASSERT_EQ(r.status, 302u) << r.body;
    EXPECT_EQ(r.Header("location"), "https://example.com/mtls");
  }
  edge->edge().FlushCachedHits();
  EXPECT_GT(testing::MetricValue(edge->registry().Render(), "kurt_edge_cache_hits_total"), 0)
      << "the later redirects come from the edge's cache";
  // Each redirect is one click: the first from Resolve, the others reported by the edge.
  std::multiset<std::string> agents = ClickAgents(kRedirects);
  EXPECT_EQ(agents.size(), static_cast<size_t>(kRedirects));
  for (int i = 0; i < kRedirects; ++i) {
    EXPECT_EQ(agents.count(absl::StrCat("Browser/", i)), 1u) << i;
  }

  std::unique_ptr<edge::EdgeServer> stranger = start_edge(*dir_ + "/stranger");
  ASSERT_NE(stranger, nullptr);
  kurt::testing::Reply refused = kurt::testing::Fetch(stranger->port(), "GET", "/mtls-link");
  EXPECT_EQ(refused.status, 503u) << refused.body;
}

TEST(TlsFilesTest, IncompleteOrUnreadableSettingsAreRefusedNamingTheFlag) {
  absl::StatusOr<std::optional<platform::TlsConfig>> off = platform::LoadTls({});
  ASSERT_TRUE(off.ok());
  EXPECT_FALSE(off->has_value());
  absl::StatusOr<std::optional<platform::TlsConfig>> partial =
      platform::LoadTls({"/nonexistent/a.crt", "", ""});
  EXPECT_TRUE(absl::IsInvalidArgument(partial.status()));
  EXPECT_NE(partial.status().message().find("--tls_key is empty"), std::string::npos)
      << partial.status();
  absl::StatusOr<std::optional<platform::TlsConfig>> missing =
      platform::LoadTls({"/nonexistent/a.crt", "/nonexistent/a.key", "/nonexistent/ca.crt"});
  EXPECT_NE(missing.status().message().find("--tls_cert: cannot read /nonexistent/a.crt"),
            std::string::npos)
      << missing.status();
  // A server given such settings does not start (and says why).
  metrics::Registry registry;
  platform::GrpcServerOptions go;
  go.name = "bad-tls";
  go.metrics_port = -1;
  go.tls = {"/nonexistent/a.crt", "/nonexistent/a.key", "/nonexistent/ca.crt"};
  platform::GrpcServer server(go, &registry);
  absl::Status started = server.Start();
  EXPECT_TRUE(absl::IsInvalidArgument(started)) << started;
}

}  // namespace
}  // namespace kurt::links
