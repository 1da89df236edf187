// The accounts service against the local stack: PostgreSQL (a scratch database with every
// migration) and Redis. Proves the key life cycle, ownership, and that the raw key is stored
// nowhere in the database and written to no log.
#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "platform/grpc/server.h"
#include "platform/pg/pg.h"
#include "platform/redis/redis.h"
#include "services/accounts/accounts_module.h"
#include "services/accounts/api_key.h"
#include "tests/support/stack_env.h"
#include "tests/support/stderr_capture.h"

namespace kurt::accounts {
namespace {

namespace v1 = kurt::accounts::v1;

class AccountsIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pg::ClusterOptions po;
    po.primary.url = db_.primary_url();
    po.primary.max_connections = 4;
    cluster_ = std::make_unique<pg::PgCluster>(po);
    redis_ = std::make_unique<redis::RedisClient>(*redis::Options::FromUrl(testing::RedisUrl()));
    AccountsConfig config;
    config.admin_token = "test-admin-token";
    config.edge_secret = "test-edge-secret";
    config.key_cache_ttl = absl::Seconds(10);
    config.key_cache_prefix = prefix_;
    config.record_secret = "test-record-secret";
    accounts_ = AccountsModule::Create(config, {cluster_.get(), redis_.get()});
    platform::GrpcServerOptions go;
    go.name = "accounts";
    go.metrics_port = -1;
    server_ = std::make_unique<platform::GrpcServer>(go, &registry_);
    server_->AddService(accounts_->service());
    ASSERT_TRUE(server_->Start().ok());
    stub_ = v1::AccountsService::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", server_->grpc_port()), grpc::InsecureChannelCredentials()));
  }
  void TearDown() override { server_->Shutdown(); }

  v1::CreateAccountResponse NewAccount(const std::string& name) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer test-admin-token");
    v1::CreateAccountRequest req;
    req.set_name(name);
    v1::CreateAccountResponse res;
    grpc::Status s = stub_->CreateAccount(&ctx, req, &res);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return res;
  }
  grpc::Status Authenticate(const std::string& key, v1::AuthenticateResponse* out) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("x-kurt-edge-secret", "test-edge-secret");
    v1::AuthenticateRequest req;
    req.set_key(key);
    return stub_->Authenticate(&ctx, req, out);
  }
  void As(grpc::ClientContext* ctx, const std::string& account) {
    ctx->AddMetadata("x-kurt-account-id", account);
    ctx->AddMetadata("x-kurt-edge-secret", "test-edge-secret");
  }

  testing::ScratchDatabase db_;
  const std::string prefix_ = testing::RandomName("kurt:test:apikey:") + ":";
  metrics::Registry registry_;
  std::unique_ptr<pg::PgCluster> cluster_;
  std::unique_ptr<redis::RedisClient> redis_;
  std::unique_ptr<AccountsModule> accounts_;
  std::unique_ptr<platform::GrpcServer> server_;
  std::unique_ptr<v1::AccountsService::Stub> stub_;
};

TEST_F(AccountsIntegrationTest, KeyLifeCycleAndOwnership) {
  v1::CreateAccountResponse a = NewAccount("A");
  v1::CreateAccountResponse b = NewAccount("B");
  v1::AuthenticateResponse who;
  ASSERT_TRUE(Authenticate(a.secret_key(), &who).ok());
  EXPECT_EQ(who.account_id(), a.account().id());
  ASSERT_TRUE(Authenticate(b.secret_key(), &who).ok());
  EXPECT_EQ(who.account_id(), b.account().id());

  v1::CreateKeyResponse extra;
  {
    grpc::ClientContext ctx;
    As(&ctx, a.account().id());
    v1::CreateKeyRequest req;
    req.set_name("deploy");
    ASSERT_TRUE(stub_->CreateKey(&ctx, req, &extra).ok());
  }
  {
    grpc::ClientContext ctx;
    As(&ctx, a.account().id());
    v1::ListKeysResponse list;
    ASSERT_TRUE(stub_->ListKeys(&ctx, {}, &list).ok());
    ASSERT_EQ(list.keys_size(), 2);
    EXPECT_EQ(list.keys(0).id(), extra.key().id());
    EXPECT_EQ(list.keys(0).name(), "deploy");
  }
  // B asking to revoke A's key: NOT_FOUND, and the key still works.
  {
    grpc::ClientContext ctx;
    As(&ctx, b.account().id());
    v1::RevokeKeyRequest req;
    req.set_id(extra.key().id());
    v1::ApiKey out;
    EXPECT_EQ(stub_->RevokeKey(&ctx, req, &out).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  ASSERT_TRUE(Authenticate(extra.secret_key(), &who).ok());  // now cached in Redis
  {
    grpc::ClientContext ctx;
    As(&ctx, a.account().id());
    v1::RevokeKeyRequest req;
    req.set_id(extra.key().id());
    v1::ApiKey out;
    ASSERT_TRUE(stub_->RevokeKey(&ctx, req, &out).ok());
  }
  // The revoke deleted the cached entry: refused at once, not after the TTL.
  EXPECT_EQ(Authenticate(extra.secret_key(), &who).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(Authenticate(a.secret_key(), &who).ok());
}

// Someone who can write to Redis but does not hold the service's record secret rewrites the
// cached record of their own key to name another account: the record does not verify, so the
// database answers, and the key stays its own account's. Without the seal, the key would have
// authenticated as the victim.
TEST_F(AccountsIntegrationTest, AForgedCachedKeyRecordDoesNotChangeWhoAKeyIs) {
  v1::CreateAccountResponse victim = NewAccount("victim");
  v1::CreateAccountResponse attacker = NewAccount("attacker");
  v1::AuthenticateResponse who;
  ASSERT_TRUE(Authenticate(attacker.secret_key(), &who).ok());  // now cached in Redis
  ASSERT_EQ(who.account_id(), attacker.account().id());
  absl::StatusOr<ParsedApiKey> parsed = ParseApiKey(attacker.secret_key());
  ASSERT_TRUE(parsed.ok());
  const std::string key = absl::StrCat(prefix_, parsed->prefix);
  auto cached = redis_->Get(key);
  ASSERT_TRUE(cached.ok() && cached->has_value());
  const std::string sealed = **cached;
  const size_t at = sealed.find(attacker.account().id());
  ASSERT_NE(at, std::string::npos) << "the cached record names its account";

  // The record with the victim's account, under its old MAC, and without any.
  std::string tampered = sealed;
  tampered.replace(at, attacker.account().id().size(), victim.account().id());
  for (const std::string& forged : {tampered, tampered.substr(64)}) {
    ASSERT_TRUE(redis_->Set(key, forged, absl::Seconds(60)).ok());
    ASSERT_TRUE(Authenticate(attacker.secret_key(), &who).ok());
    EXPECT_EQ(who.account_id(), attacker.account().id()) << "forged: " << forged;
    // The forged record is gone, replaced by a sealed one from the database's answer.
    auto now = redis_->Get(key);
    ASSERT_TRUE(now.ok());
    EXPECT_NE(now->value_or(""), forged);
  }
}

TEST_F(AccountsIntegrationTest, RawKeysAreNeitherStoredNorLogged) {
  testing::StderrCapture capture;
  std::vector<std::string> keys;
  for (int i = 0; i < 3; ++i) {
    v1::CreateAccountResponse r = NewAccount(absl::StrCat("acct", i));
    keys.push_back(r.secret_key());
    grpc::ClientContext ctx;
    As(&ctx, r.account().id());
    v1::CreateKeyResponse extra;
    ASSERT_TRUE(stub_->CreateKey(&ctx, {}, &extra).ok());
    keys.push_back(extra.secret_key());
    v1::AuthenticateResponse who;
    ASSERT_TRUE(Authenticate(extra.secret_key(), &who).ok());
    std::string wrong = extra.secret_key();
    wrong.back() = wrong.back() == 'a' ? 'b' : 'a';
    EXPECT_FALSE(Authenticate(wrong, &who).ok());
  }
  std::string logs = capture.Stop();
  EXPECT_NE(logs.find("account created"), std::string::npos) << "logs were not captured";
  std::string db = testing::AllRowsAsText(db_.primary_url());
  EXPECT_NE(db.find("acct0"), std::string::npos) << "the dump missed the accounts table";
  for (const std::string& key : keys) {
    auto parsed = ParseApiKey(key);
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(db.find(parsed->secret), std::string::npos);
    EXPECT_EQ(logs.find(parsed->secret), std::string::npos);
    EXPECT_EQ(db.find(key), std::string::npos);
    EXPECT_EQ(logs.find(key), std::string::npos);
    // What is stored is the hash.
    EXPECT_NE(db.find(Sha256Hex(parsed->secret)), std::string::npos);
  }
}

}  // namespace
}  // namespace kurt::accounts
