// AccountsService over a loopback gRPC server with an in-memory store and cache.
#include "services/accounts/accounts_service.h"

#include <map>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "platform/grpc/server.h"
#include "services/accounts/api_key.h"

namespace kurt::accounts {
namespace {

class FakeStore : public AccountsStore {
 public:
  absl::StatusOr<std::pair<AccountRecord, KeyRecord>> CreateAccount(
      const AccountRecord& account, const KeyRecord& key) override {
    std::lock_guard lock(mu_);
    accounts_[account.id] = account;
    keys_[key.id] = key;
    keys_[key.id].create_time = absl::Now();
    return std::make_pair(account, keys_[key.id]);
  }
  absl::StatusOr<KeyRecord> InsertKey(const KeyRecord& key) override {
    std::lock_guard lock(mu_);
    if (!accounts_.contains(key.account_id)) return absl::NotFoundError("no account");
    keys_[key.id] = key;
    keys_[key.id].create_time = absl::Now();
    return keys_[key.id];
  }
  absl::StatusOr<std::vector<KeyRecord>> ListKeys(const std::string& account_id) override {
    std::lock_guard lock(mu_);
    std::vector<KeyRecord> out;
    for (const auto& [id, key] : keys_) {
      if (key.account_id == account_id) out.push_back(key);
    }
    return out;
  }
  absl::StatusOr<KeyRecord> RevokeKey(const std::string& account_id,
                                      const std::string& key_id) override {
    std::lock_guard lock(mu_);
    auto it = keys_.find(key_id);
    if (it == keys_.end() || it->second.account_id != account_id) {
      return absl::NotFoundError("no key");
    }
    if (!it->second.revoke_time) it->second.revoke_time = absl::Now();
    return it->second;
  }
  absl::StatusOr<std::optional<KeyRecord>> FindKey(const std::string& prefix) override {
    std::lock_guard lock(mu_);
    ++finds;
    for (const auto& [id, key] : keys_) {
      if (key.prefix == prefix) return key;
    }
    return std::nullopt;
  }
  int finds = 0;

 private:
  std::mutex mu_;
  std::map<std::string, AccountRecord> accounts_;
  std::map<std::string, KeyRecord> keys_;
};

class MapCache : public KeyCache {
 public:
  std::optional<KeyRecord> Get(const std::string& prefix) override {
    std::lock_guard lock(mu_);
    auto it = entries_.find(prefix);
    if (it == entries_.end()) return std::nullopt;
    return it->second;
  }
  void Put(const KeyRecord& key) override {
    std::lock_guard lock(mu_);
    entries_[key.prefix] = key;
  }
  void Forget(const std::string& prefix) override {
    std::lock_guard lock(mu_);
    entries_.erase(prefix);
  }

 private:
  std::mutex mu_;
  std::map<std::string, KeyRecord> entries_;
};

namespace v1 = kurt::accounts::v1;

class AccountsServiceTest : public ::testing::Test {
 protected:
  void Start(AccountsServiceOptions options) {
    service_ = std::make_unique<AccountsService>(options, &store_, &cache_);
    platform::GrpcServerOptions go;
    go.name = "accounts";
    go.metrics_port = -1;
    server_ = std::make_unique<platform::GrpcServer>(go, &registry_);
    server_->AddService(service_.get());
    ASSERT_TRUE(server_->Start().ok());
    stub_ = v1::AccountsService::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", server_->grpc_port()), grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
  }

  grpc::Status CreateAccount(const std::string& bearer, v1::CreateAccountResponse* out,
                             const std::string& name = "Ada") {
    grpc::ClientContext ctx;
    if (!bearer.empty()) ctx.AddMetadata("authorization", "Bearer " + bearer);
    v1::CreateAccountRequest req;
    req.set_name(name);
    return stub_->CreateAccount(&ctx, req, out);
  }
  void As(grpc::ClientContext* ctx, const std::string& account,
          const std::string& secret = "edge-secret") {
    ctx->AddMetadata("x-kurt-account-id", account);
    ctx->AddMetadata("x-kurt-edge-secret", secret);
  }
  grpc::Status Authenticate(const std::string& key, v1::AuthenticateResponse* out,
                            const std::string& secret = "edge-secret") {
    grpc::ClientContext ctx;
    ctx.AddMetadata("x-kurt-edge-secret", secret);
    v1::AuthenticateRequest req;
    req.set_key(key);
    return stub_->Authenticate(&ctx, req, out);
  }

  AccountsServiceOptions Defaults() {
    AccountsServiceOptions o;
    o.admin_token = "admin-token";
    o.edge_secret = "edge-secret";
    return o;
  }

  FakeStore store_;
  MapCache cache_;
  metrics::Registry registry_;
  std::unique_ptr<AccountsService> service_;
  std::unique_ptr<platform::GrpcServer> server_;
  std::unique_ptr<v1::AccountsService::Stub> stub_;
};

TEST_F(AccountsServiceTest, CreateAccountNeedsTheAdminToken) {
  Start(Defaults());
  v1::CreateAccountResponse res;
  EXPECT_EQ(CreateAccount("", &res).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(CreateAccount("wrong", &res).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(CreateAccount("admin-token", &res, "").error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  grpc::Status s = CreateAccount("admin-token", &res);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_FALSE(res.account().id().empty());
  EXPECT_TRUE(ParseApiKey(res.secret_key()).ok());
  EXPECT_EQ(res.key().prefix(), res.secret_key().substr(0, 17));
}

TEST_F(AccountsServiceTest, OpenSignupNeedsNoToken) {
  AccountsServiceOptions o;
  o.open_signup = true;
  Start(o);
  v1::CreateAccountResponse res;
  EXPECT_TRUE(CreateAccount("", &res).ok());
}

TEST_F(AccountsServiceTest, NoAdminTokenAndNoSignupMeansDisabled) {
  Start(AccountsServiceOptions{});
  v1::CreateAccountResponse res;
  EXPECT_EQ(CreateAccount("", &res).error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(AccountsServiceTest, AuthenticateRevokeAndOwnership) {
  Start(Defaults());
  v1::CreateAccountResponse a, b;
  ASSERT_TRUE(CreateAccount("admin-token", &a).ok());
  ASSERT_TRUE(CreateAccount("admin-token", &b).ok());

  v1::AuthenticateResponse who;
  ASSERT_TRUE(Authenticate(a.secret_key(), &who).ok());
  EXPECT_EQ(who.account_id(), a.account().id());
  EXPECT_EQ(who.key_id(), a.key().id());
  // Second lookup is served by the cache.
  int finds = store_.finds;
  ASSERT_TRUE(Authenticate(a.secret_key(), &who).ok());
  EXPECT_EQ(store_.finds, finds);

  // A wrong secret with a valid prefix, garbage, and calls not from the edge.
  std::string tampered = a.secret_key();
  tampered.back() = tampered.back() == '0' ? '1' : '0';
  EXPECT_EQ(Authenticate(tampered, &who).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Authenticate("nonsense", &who).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Authenticate(a.secret_key(), &who, "forged").error_code(),
            grpc::StatusCode::PERMISSION_DENIED);

  // A second key for A; B cannot see or revoke A's keys (NOT_FOUND, not PERMISSION_DENIED).
  v1::CreateKeyResponse second;
  {
    grpc::ClientContext ctx;
    As(&ctx, a.account().id());
    v1::CreateKeyRequest req;
    req.set_name("ci");
    ASSERT_TRUE(stub_->CreateKey(&ctx, req, &second).ok());
  }
  {
    grpc::ClientContext ctx;
    As(&ctx, a.account().id(), "forged");
    v1::CreateKeyRequest req;
    EXPECT_EQ(stub_->CreateKey(&ctx, req, &second).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  {
    grpc::ClientContext ctx;
    As(&ctx, b.account().id());
    v1::ListKeysResponse list;
    ASSERT_TRUE(stub_->ListKeys(&ctx, {}, &list).ok());
    ASSERT_EQ(list.keys_size(), 1);
    EXPECT_EQ(list.keys(0).id(), b.key().id());
  }
  {
    grpc::ClientContext ctx;
    As(&ctx, b.account().id());
    v1::RevokeKeyRequest req;
    req.set_id(second.key().id());
    v1::ApiKey out;
    EXPECT_EQ(stub_->RevokeKey(&ctx, req, &out).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  ASSERT_TRUE(Authenticate(second.secret_key(), &who).ok());
  {
    grpc::ClientContext ctx;
    As(&ctx, a.account().id());
    v1::RevokeKeyRequest req;
    req.set_id(second.key().id());
    v1::ApiKey out;
    ASSERT_TRUE(stub_->RevokeKey(&ctx, req, &out).ok());
    EXPECT_TRUE(out.has_revoke_time());
  }
  grpc::Status s = Authenticate(second.secret_key(), &who);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(s.error_message(), "API key revoked");
  EXPECT_TRUE(Authenticate(a.secret_key(), &who).ok());
}

}  // namespace
}  // namespace kurt::accounts
