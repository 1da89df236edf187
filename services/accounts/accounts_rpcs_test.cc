// AccountsRpcs with an in-memory store and cache, called as the gRPC adapter would; and the
// adapter's access rules (which RPCs need an account) through AccountsService.
#include "services/accounts/accounts_rpcs.h"

#include <map>
#include <mutex>

#include "grpcpp/test/server_context_test_spouse.h"
#include "gtest/gtest.h"
#include "services/accounts/accounts_service.h"
#include "services/accounts/api_key.h"
#include "services/common/field_rules_testing.h"

namespace kurt::accounts {
namespace {

class FakeStore : public AccountsStore {
 public:
  absl::StatusOr<std::pair<AccountRecord, KeyRecord>> CreateAccount(const AccountRecord& account,
                                                                    const KeyRecord& key) override {
    std::lock_guard lock(mu_);
    accounts_[account.id] = account;
    keys_[key.id] = key;
    keys_[key.id].create_time = absl::Now();
    return std::make_pair(account, keys_[key.id]);
  }
  absl::StatusOr<KeyRecord> InsertKey(const KeyRecord& key) override {
    std::lock_guard lock(mu_);
    if (!accounts_.contains(key.account_id)) {
      return absl::NotFoundError("no account");
    }
    keys_[key.id] = key;
    keys_[key.id].create_time = absl::Now();
    return keys_[key.id];
  }
  absl::StatusOr<std::vector<KeyRecord>> ListKeys(const std::string& account_id) override {
    std::lock_guard lock(mu_);
    std::vector<KeyRecord> out;
    for (const auto& [id, key] : keys_) {
      if (key.account_id == account_id) {
        out.push_back(key);
      }
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
    if (!it->second.revoke_time) {
      it->second.revoke_time = absl::Now();
    }
    return it->second;
  }
  absl::StatusOr<std::optional<KeyRecord>> FindKey(const std::string& prefix) override {
    std::lock_guard lock(mu_);
    ++finds;
    for (const auto& [id, key] : keys_) {
      if (key.prefix == prefix) {
        return key;
      }
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
    if (it == entries_.end()) {
      return std::nullopt;
    }
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
using platform::Caller;

class AccountsRpcsTest : public ::testing::Test {
 protected:
  void Start(const AccountsRpcsOptions& options) {
    rpcs_ = std::make_unique<AccountsRpcs>(options, &store_, &cache_);
  }

  absl::StatusOr<v1::CreateAccountResponse> CreateAccount(const std::string& bearer,
                                                          const std::string& name = "Ada") {
    std::map<std::string, std::string> metadata;
    if (!bearer.empty()) {
      metadata["authorization"] = "Bearer " + bearer;
    }
    v1::CreateAccountRequest req;
    req.set_name(name);
    return rpcs_->CreateAccount(Caller("", metadata), req);
  }
  // A call the edge makes for `account`.
  static Caller As(const std::string& account, const std::string& secret = "edge-secret") {
    return Caller(account, {{"x-kurt-edge-secret", secret}});
  }
  absl::StatusOr<v1::AuthenticateResponse> Authenticate(const std::string& key,
                                                        const std::string& secret = "edge-secret") {
    v1::AuthenticateRequest req;
    req.set_key(key);
    return rpcs_->Authenticate(Caller("", {{"x-kurt-edge-secret", secret}}), req);
  }

  AccountsRpcsOptions Defaults() {
    AccountsRpcsOptions o;
    o.admin_token = "admin-token";
    o.edge_secret = "edge-secret";
    return o;
  }

  FakeStore store_;
  MapCache cache_;
  std::unique_ptr<AccountsRpcs> rpcs_;
};

TEST_F(AccountsRpcsTest, CreateAccountNeedsTheAdminToken) {
  Start(Defaults());
  EXPECT_EQ(CreateAccount("").status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(CreateAccount("wrong").status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(CreateAccount("admin-token", "").status().code(), absl::StatusCode::kInvalidArgument);
  absl::StatusOr<v1::CreateAccountResponse> res = CreateAccount("admin-token");
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_FALSE(res->account().id().empty());
  EXPECT_TRUE(ParseApiKey(res->secret_key()).ok());
  EXPECT_EQ(res->key().prefix(), res->secret_key().substr(0, 17));
}

// The schema's maxLength (200) counts characters, as the database does: 200 two-byte characters
// are a valid name, 201 are not.
TEST_F(AccountsRpcsTest, NameLimitsCountCharactersNotBytes) {
  Start(Defaults());
  std::string name;
  for (int i = 0; i < 200; ++i) {
    name += "\xC3\xA9";  // é
  }
  EXPECT_TRUE(CreateAccount("admin-token", name).ok());
  absl::StatusOr<v1::CreateAccountResponse> longer = CreateAccount("admin-token", name + "e");
  EXPECT_EQ(longer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(longer.status().message(), "name: at most 200 characters");
}

// A key id of the wrong shape is refused before the database is asked.
TEST_F(AccountsRpcsTest, RevokingAMalformedKeyIdIsInvalidArgument) {
  Start(Defaults());
  absl::StatusOr<v1::CreateAccountResponse> a = CreateAccount("admin-token");
  ASSERT_TRUE(a.ok());
  for (const char* id : {"key_0123", "KEY_0123456789abcdef", "key_0123456789ABCDEF",
                         "key_0123456789abcdefa", "1 OR 1=1"}) {
    v1::RevokeKeyRequest revoke;
    revoke.set_id(id);
    absl::StatusOr<v1::ApiKey> out = rpcs_->RevokeKey(As(a->account().id()), revoke);
    EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument) << id;
    EXPECT_EQ(out.status().message(), "id: not a key id (key_ and 16 hex digits)") << id;
  }
  EXPECT_TRUE(Authenticate(a->secret_key()).ok());
}

// The checks of every annotated request field agree with its kurt.api.v1.rules (what the OpenAPI
// document publishes), at and past each limit, in characters as the document counts them.
TEST_F(AccountsRpcsTest, ChecksAgreeWithTheFieldRulesOfTheProtos) {
  using rules_testing::ExpectServiceAgrees;
  using rules_testing::RulesOf;
  using rules_testing::StringProbes;
  Start(Defaults());
  std::string wide;  // 200 two-byte characters: 400 bytes
  for (int i = 0; i < 200; ++i) {
    wide += "\xC3\xA9";
  }
  const api::v1::FieldRules& account = RulesOf(v1::CreateAccountRequest::descriptor(), "name");
  ExpectServiceAgrees(
      account, StringProbes(account, {wide, wide + "e", "\xC3\xA9"}),
      [&](const std::string& name) { return CreateAccount("admin-token", name).ok(); });

  absl::StatusOr<v1::CreateAccountResponse> a = CreateAccount("admin-token");
  ASSERT_TRUE(a.ok());
  const api::v1::FieldRules& key = RulesOf(v1::CreateKeyRequest::descriptor(), "name");
  ExpectServiceAgrees(key, StringProbes(key, {wide, wide + "e"}), [&](const std::string& name) {
    v1::CreateKeyRequest request;
    request.set_name(name);
    return rpcs_->CreateKey(As(a->account().id()), request).ok();
  });

  // Malformed is INVALID_ARGUMENT; well-formed but unknown is NOT_FOUND.
  const api::v1::FieldRules& id = RulesOf(v1::RevokeKeyRequest::descriptor(), "id");
  ExpectServiceAgrees(
      id,
      StringProbes(id, {"key_00000000deadbeef", "key_0123456789ABCDEF", "KEY_0123456789abcdef",
                        "key_0123456789abcde", "key_0123456789abcdefa", "key-0123456789abcdef"}),
      [&](const std::string& value) {
        v1::RevokeKeyRequest request;
        request.set_id(value);
        return rpcs_->RevokeKey(As(a->account().id()), request).status().code() !=
               absl::StatusCode::kInvalidArgument;
      });
}

TEST_F(AccountsRpcsTest, OpenSignupNeedsNoToken) {
  AccountsRpcsOptions o;
  o.open_signup = true;
  Start(o);
  EXPECT_TRUE(CreateAccount("").ok());
}

TEST_F(AccountsRpcsTest, NoAdminTokenAndNoSignupMeansDisabled) {
  Start(AccountsRpcsOptions{});
  EXPECT_EQ(CreateAccount("").status().code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(AccountsRpcsTest, AuthenticateRevokeAndOwnership) {
  Start(Defaults());
  absl::StatusOr<v1::CreateAccountResponse> a = CreateAccount("admin-token");
  absl::StatusOr<v1::CreateAccountResponse> b = CreateAccount("admin-token");
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());

  absl::StatusOr<v1::AuthenticateResponse> who = Authenticate(a->secret_key());
  ASSERT_TRUE(who.ok());
  EXPECT_EQ(who->account_id(), a->account().id());
  EXPECT_EQ(who->key_id(), a->key().id());
  // Second lookup is served by the cache.
  int finds = store_.finds;
  ASSERT_TRUE(Authenticate(a->secret_key()).ok());
  EXPECT_EQ(store_.finds, finds);

  // A wrong secret with a valid prefix, garbage, and calls not from the edge.
  std::string tampered = a->secret_key();
  tampered.back() = tampered.back() == '0' ? '1' : '0';
  EXPECT_EQ(Authenticate(tampered).status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(Authenticate("nonsense").status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(Authenticate(a->secret_key(), "forged").status().code(),
            absl::StatusCode::kPermissionDenied);

  // A second key for A; B cannot see or revoke A's keys (NOT_FOUND, not PERMISSION_DENIED).
  v1::CreateKeyRequest create;
  create.set_name("ci");
  absl::StatusOr<v1::CreateKeyResponse> second = rpcs_->CreateKey(As(a->account().id()), create);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(rpcs_->CreateKey(As(a->account().id(), "forged"), {}).status().code(),
            absl::StatusCode::kUnauthenticated);
  {
    absl::StatusOr<v1::ListKeysResponse> list = rpcs_->ListKeys(As(b->account().id()), {});
    ASSERT_TRUE(list.ok());
    ASSERT_EQ(list->keys_size(), 1);
    EXPECT_EQ(list->keys(0).id(), b->key().id());
  }
  v1::RevokeKeyRequest revoke;
  revoke.set_id(second->key().id());
  EXPECT_EQ(rpcs_->RevokeKey(As(b->account().id()), revoke).status().code(),
            absl::StatusCode::kNotFound);
  ASSERT_TRUE(Authenticate(second->secret_key()).ok());
  {
    absl::StatusOr<v1::ApiKey> out = rpcs_->RevokeKey(As(a->account().id()), revoke);
    ASSERT_TRUE(out.ok());
    EXPECT_TRUE(out->has_revoke_time());
  }
  absl::Status s = Authenticate(second->secret_key()).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(s.message(), "API key revoked");
  EXPECT_TRUE(Authenticate(a->secret_key()).ok());
}

// A gRPC call as the server would hand it to the service, from the edge (its secret) and for
// `account` when not empty.
struct EdgeCall {
  explicit EdgeCall(const std::string& account = "") : spouse(&context) {
    spouse.AddClientMetadata("x-kurt-edge-secret", "edge-secret");
    if (!account.empty()) {
      spouse.AddClientMetadata("x-kurt-account-id", account);
    }
  }
  grpc::ServerContext context;
  grpc::testing::ServerContextTestSpouse spouse;  // keeps the metadata
};

// CreateAccount and Authenticate act for no account; the key RPCs need one.
TEST_F(AccountsRpcsTest, TheServiceAsksForAnAccountOnlyWhereAKeyRpcActsForOne) {
  AccountsRpcsOptions o = Defaults();
  o.open_signup = true;
  Start(o);
  AccountsService service(rpcs_.get());
  v1::CreateAccountResponse account;
  {
    grpc::ServerContext context;
    v1::CreateAccountRequest req;
    req.set_name("Ada");
    ASSERT_TRUE(service.CreateAccount(&context, &req, &account).ok());
  }
  {
    EdgeCall call;
    v1::AuthenticateRequest req;
    req.set_key(account.secret_key());
    v1::AuthenticateResponse who;
    ASSERT_TRUE(service.Authenticate(&call.context, &req, &who).ok());
    EXPECT_EQ(who.account_id(), account.account().id());
  }
  {
    EdgeCall call;
    v1::CreateKeyRequest req;
    v1::CreateKeyResponse out;
    EXPECT_EQ(service.CreateKey(&call.context, &req, &out).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  {
    EdgeCall call;
    v1::ListKeysRequest req;
    v1::ListKeysResponse out;
    EXPECT_EQ(service.ListKeys(&call.context, &req, &out).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  {
    EdgeCall call;
    v1::RevokeKeyRequest req;
    req.set_id(account.key().id());
    v1::ApiKey out;
    EXPECT_EQ(service.RevokeKey(&call.context, &req, &out).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  {
    EdgeCall call(account.account().id());
    v1::ListKeysRequest req;
    v1::ListKeysResponse out;
    ASSERT_TRUE(service.ListKeys(&call.context, &req, &out).ok());
    EXPECT_EQ(out.keys_size(), 1);
  }
}

}  // namespace
}  // namespace kurt::accounts
