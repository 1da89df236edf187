// AccountsRpcs with an in-memory store and cache, called as the gRPC adapter would; and the
// adapter's access rules (which RPCs need an account) through AccountsService.
#include "services/accounts/accounts_rpcs.h"

#include <map>
#include <mutex>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
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
      if (key.account_id == account_id && key.session_id.empty()) {
        out.push_back(key);
      }
    }
    return out;
  }
  absl::StatusOr<KeyRecord> RevokeKey(const std::string& account_id,
                                      const std::string& key_id) override {
    std::lock_guard lock(mu_);
    auto it = keys_.find(key_id);
    if (it == keys_.end() || it->second.account_id != account_id ||
        !it->second.session_id.empty()) {
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
  absl::StatusOr<AccountRecord> SignUp(const AccountRecord& account, const UserRecord& user,
                                       const NewSession& session) override {
    std::lock_guard lock(mu_);
    for (const auto& [id, u] : users_) {
      if (u.email == user.email) {
        return absl::AlreadyExistsError("users_email");
      }
    }
    accounts_[account.id] = account;
    users_[user.id] = user;
    Start(session);
    return account;
  }
  absl::StatusOr<std::optional<UserRecord>> FindUser(const std::string& email) override {
    std::lock_guard lock(mu_);
    for (const auto& [id, u] : users_) {
      if (u.email == email) {
        return u;
      }
    }
    return std::nullopt;
  }
  absl::Status StartSession(const NewSession& session) override {
    std::lock_guard lock(mu_);
    Start(session);
    return absl::OkStatus();
  }
  absl::StatusOr<std::optional<RefreshRecord>> FindRefresh(const std::string& prefix) override {
    std::lock_guard lock(mu_);
    auto it = refresh_.find(prefix);
    if (it == refresh_.end()) {
      return std::nullopt;
    }
    RefreshRecord r = it->second;
    r.account_id = sessions_[r.session_id].account_id;
    r.email = users_[sessions_[r.session_id].user_id].email;
    r.session_ended = ended_.contains(r.session_id);
    return r;
  }
  absl::Status Rotate(const std::string& spent, absl::Time now, const KeyRecord& token,
                      const RefreshRecord& refresh) override {
    std::lock_guard lock(mu_);
    RefreshRecord& old = refresh_[spent];
    if (old.spend_time || ended_.contains(old.session_id)) {
      return absl::FailedPreconditionError("spent");
    }
    old.spend_time = now;
    keys_[token.id] = token;
    refresh_[refresh.prefix] = refresh;
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<std::string>> EndSession(const std::string& session_id,
                                                      absl::Time now) override {
    std::lock_guard lock(mu_);
    ended_.insert(session_id);
    std::vector<std::string> prefixes;
    for (auto& [id, key] : keys_) {
      if (key.session_id == session_id) {
        key.revoke_time = key.revoke_time.value_or(now);
        prefixes.push_back(key.prefix);
      }
    }
    for (auto& [prefix, r] : refresh_) {
      if (r.session_id == session_id && !r.spend_time) {
        r.spend_time = now;
      }
    }
    return prefixes;
  }
  absl::StatusOr<int64_t> SweepExpired(absl::Time, int) override { return 0; }
  int finds = 0;

 private:
  void Start(const NewSession& session) {
    sessions_[session.id] = session;
    keys_[session.token.id] = session.token;
    refresh_[session.refresh.prefix] = session.refresh;
  }

  std::mutex mu_;
  std::map<std::string, AccountRecord> accounts_;
  std::map<std::string, KeyRecord> keys_;
  std::map<std::string, UserRecord> users_;
  std::map<std::string, NewSession> sessions_;
  std::map<std::string, RefreshRecord> refresh_;
  std::set<std::string> ended_;
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
    rpcs_ = std::make_unique<AccountsRpcs>(options, &store_, &cache_, &passwords_, &throttle_,
                                           [this] { return now_; });
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

  // A session's calls, as the edge makes them for a client at 192.0.2.1.
  static Caller FromClient() {
    return Caller("", {{"x-kurt-edge-secret", "edge-secret"}, {"x-kurt-client-ip", "192.0.2.1"}});
  }
  absl::StatusOr<v1::SignUpResponse> SignUp(const std::string& email, const std::string& password) {
    v1::SignUpRequest req;
    req.set_email(email);
    req.set_password(password);
    return rpcs_->SignUp(FromClient(), req);
  }
  absl::StatusOr<v1::Session> SignIn(const std::string& email, const std::string& password) {
    v1::CreateSessionRequest req;
    req.set_email(email);
    req.set_password(password);
    return rpcs_->CreateSession(FromClient(), req);
  }
  absl::StatusOr<v1::Session> Refresh(const std::string& token) {
    v1::RefreshSessionRequest req;
    req.set_refresh_token(token);
    return rpcs_->RefreshSession(FromClient(), req);
  }
  absl::StatusOr<v1::DeleteSessionResponse> SignOut(const std::string& session_token) {
    return rpcs_->DeleteSession(Caller("", {{"authorization", "Bearer " + session_token}}),
                                v1::DeleteSessionRequest());
  }

  AccountsRpcsOptions OpenSignUp() {
    AccountsRpcsOptions o = Defaults();
    o.open_signup = true;
    return o;
  }

  FakeStore store_;
  MapCache cache_;
  // The cheapest argon2id libsodium allows: these tests are about the rules, not the cost.
  PasswordHasher passwords_{PasswordHasherOptions{1, 8192, 2}};
  absl::Time now_ = absl::FromUnixSeconds(1800000000);
  LocalFailureThrottle signin_failures_{[this] { return now_; }};
  SignInThrottle throttle_{&signin_failures_, SignInLimits{3, 5, absl::Minutes(15)}};
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
  // A NUL (which PostgreSQL's text cannot hold), a line break, a DEL.
  const std::vector<std::string> controls = {std::string("\0Q", 2), "two\nlines", "del\x7f"};
  const api::v1::FieldRules& account = RulesOf(v1::CreateAccountRequest::descriptor(), "name");
  std::vector<std::string> account_probes = {wide, wide + "e", "\xC3\xA9"};
  account_probes.insert(account_probes.end(), controls.begin(), controls.end());
  ExpectServiceAgrees(account, StringProbes(account, account_probes), [&](const std::string& name) {
    return CreateAccount("admin-token", name).ok();
  });

  absl::StatusOr<v1::CreateAccountResponse> a = CreateAccount("admin-token");
  ASSERT_TRUE(a.ok());
  const api::v1::FieldRules& key = RulesOf(v1::CreateKeyRequest::descriptor(), "name");
  std::vector<std::string> key_probes = {wide, wide + "e"};
  key_probes.insert(key_probes.end(), controls.begin(), controls.end());
  ExpectServiceAgrees(key, StringProbes(key, key_probes), [&](const std::string& name) {
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
TEST_F(AccountsRpcsTest, SignUpSignInRefreshAndSignOut) {
  Start(OpenSignUp());
  absl::StatusOr<v1::SignUpResponse> up = SignUp("Ada@Example.com", "correct horse");
  ASSERT_TRUE(up.ok()) << up.status();
  EXPECT_EQ(up->session().email(), "ada@example.com");
  EXPECT_EQ(up->account().name(), "ada");
  EXPECT_EQ(up->session().session_token_expire_time().seconds(),
            absl::ToUnixSeconds(now_ + absl::Minutes(15)));
  EXPECT_EQ(up->session().refresh_token_expire_time().seconds(),
            absl::ToUnixSeconds(now_ + absl::Hours(24 * 30)));
  absl::StatusOr<v1::AuthenticateResponse> who = Authenticate(up->session().session_token());
  ASSERT_TRUE(who.ok()) << who.status();
  EXPECT_EQ(who->account_id(), up->account().id());
  // The same address in other case is the same person.
  EXPECT_EQ(SignUp("ADA@example.COM", "another password").status().code(),
            absl::StatusCode::kAlreadyExists);

  absl::StatusOr<v1::Session> in = SignIn("ada@EXAMPLE.com", "correct horse");
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_EQ(in->account_id(), up->account().id());
  EXPECT_NE(in->session_token(), up->session().session_token());

  absl::StatusOr<v1::Session> next = Refresh(in->refresh_token());
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_NE(next->refresh_token(), in->refresh_token());
  EXPECT_TRUE(Authenticate(next->session_token()).ok());

  // Signing out ends that session only: its tokens, old and new, and its refresh token.
  ASSERT_TRUE(SignOut(in->session_token()).ok());
  EXPECT_EQ(Authenticate(in->session_token()).status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(Authenticate(next->session_token()).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(Refresh(next->refresh_token()).status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(Authenticate(up->session().session_token()).ok());
  // Session tokens are not API keys: not listed, not revocable as keys.
  absl::StatusOr<v1::ListKeysResponse> keys =
      rpcs_->ListKeys(As(up->account().id()), v1::ListKeysRequest());
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(keys->keys_size(), 0);
}

TEST_F(AccountsRpcsTest, AWrongEmailAndAWrongPasswordAnswerAlike) {
  Start(OpenSignUp());
  ASSERT_TRUE(SignUp("ada@example.com", "correct horse").ok());
  absl::StatusOr<v1::Session> wrong_password = SignIn("ada@example.com", "wrong horse");
  absl::StatusOr<v1::Session> wrong_email = SignIn("bob@example.com", "correct horse");
  EXPECT_EQ(wrong_password.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(wrong_password.status(), wrong_email.status());
}

TEST_F(AccountsRpcsTest, SignUpIsClosedWithoutOpenSignUpOrTheAdminToken) {
  Start(Defaults());
  EXPECT_EQ(SignUp("ada@example.com", "correct horse").status().code(),
            absl::StatusCode::kUnauthenticated);
  v1::SignUpRequest req;
  req.set_email("ada@example.com");
  req.set_password("correct horse");
  EXPECT_TRUE(rpcs_->SignUp(Caller("", {{"authorization", "Bearer admin-token"}}), req).ok());
}

TEST_F(AccountsRpcsTest, ASessionTokenExpiresAndTheRefreshTokenStillWorks) {
  Start(OpenSignUp());
  absl::StatusOr<v1::SignUpResponse> up = SignUp("ada@example.com", "correct horse");
  ASSERT_TRUE(up.ok());
  now_ += absl::Minutes(15);
  absl::StatusOr<v1::AuthenticateResponse> expired = Authenticate(up->session().session_token());
  EXPECT_EQ(expired.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(absl::StrContains(expired.status().message(), "expired")) << expired.status();
  absl::StatusOr<v1::Session> next = Refresh(up->session().refresh_token());
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_TRUE(Authenticate(next->session_token()).ok());
  now_ += absl::Hours(24 * 30);
  EXPECT_EQ(Refresh(next->refresh_token()).status().code(), absl::StatusCode::kUnauthenticated);
  // An expired session token still signs its session out.
  EXPECT_TRUE(SignOut(next->session_token()).ok());
}

TEST_F(AccountsRpcsTest, ASpentRefreshTokenShownAgainLaterEndsTheSession) {
  Start(OpenSignUp());
  absl::StatusOr<v1::SignUpResponse> up = SignUp("ada@example.com", "correct horse");
  ASSERT_TRUE(up.ok());
  const std::string first = up->session().refresh_token();
  absl::StatusOr<v1::Session> second = Refresh(first);
  ASSERT_TRUE(second.ok());
  // Another tab of the same person, a moment later: refused, the session lives.
  now_ += absl::Seconds(2);
  EXPECT_EQ(Refresh(first).status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(Authenticate(second->session_token()).ok());
  // The same token a minute later: someone else has it. The whole session ends.
  now_ += absl::Minutes(1);
  EXPECT_EQ(Refresh(first).status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(Authenticate(second->session_token()).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(Refresh(second->refresh_token()).status().code(), absl::StatusCode::kUnauthenticated);
}

TEST_F(AccountsRpcsTest, FailedSignInsAreLimitedPerEmailAndPerClient) {
  Start(OpenSignUp());
  ASSERT_TRUE(SignUp("ada@example.com", "correct horse").ok());
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(SignIn("ada@example.com", "guess").status().code(),
              absl::StatusCode::kUnauthenticated);
  }
  // At the limit even the right password waits, and the answer says for how long.
  absl::StatusOr<v1::Session> limited = SignIn("ada@example.com", "correct horse");
  EXPECT_EQ(limited.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(absl::StrContains(limited.status().message(), "retry after 900 s"))
      << limited.status();
  grpc::Status on_the_wire = platform::ToGrpcStatus(limited.status());
  EXPECT_FALSE(on_the_wire.error_details().empty()) << "no RetryInfo for the edge's Retry-After";
  now_ += absl::Minutes(15);
  EXPECT_TRUE(SignIn("ada@example.com", "correct horse").ok());

  // Five failures from one client, over addresses nobody has, close that client.
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(SignIn(absl::StrCat("nobody", i, "@example.com"), "guess").status().code(),
              absl::StatusCode::kUnauthenticated);
  }
  EXPECT_EQ(SignIn("ada@example.com", "correct horse").status().code(),
            absl::StatusCode::kResourceExhausted);
}

TEST_F(AccountsRpcsTest, SignOutNeedsASessionTokenNotAnApiKey) {
  Start(OpenSignUp());
  absl::StatusOr<v1::CreateAccountResponse> a = CreateAccount("admin-token");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(SignOut(a->secret_key()).status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(Authenticate(a->secret_key()).ok());
  EXPECT_EQ(SignOut("kurt_0123456789ab_" + std::string(64, 'a')).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(rpcs_->DeleteSession(Caller(""), v1::DeleteSessionRequest()).status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST_F(AccountsRpcsTest, SessionChecksAgreeWithTheFieldRulesOfTheProtos) {
  using rules_testing::ExpectServiceAgrees;
  using rules_testing::RulesOf;
  using rules_testing::StringProbes;
  Start(OpenSignUp());
  int n = 0;
  const std::string local64(64, 'a');
  const std::string long_domain = std::string(185, 'd') + ".example";
  const api::v1::FieldRules& email = RulesOf(v1::SignUpRequest::descriptor(), "email");
  ExpectServiceAgrees(
      email,
      StringProbes(email, {"a@b.c", "ab@c", "a b@c.d", "@b.c", "a@.b", "a@b.", "a@@b.c",
                           local64 + "@b.c", local64 + "a@b.c", "Ã©@b.c",
                           local64 + "@" + long_domain, local64 + "@d" + long_domain}),
      [&](const std::string& value) {
        // A probe seen twice is ALREADY_EXISTS the second time: allowed by the rules, as it is.
        return SignUp(value, "correct horse").status().code() != absl::StatusCode::kInvalidArgument;
      });
  const api::v1::FieldRules& password = RulesOf(v1::SignUpRequest::descriptor(), "password");
  std::string wide;  // 256 two-byte characters
  for (int i = 0; i < 256; ++i) {
    wide += "Ã©";
  }
  ExpectServiceAgrees(
      password, StringProbes(password, {wide, wide + "e"}), [&](const std::string& value) {
        return SignUp(absl::StrCat("pw", ++n, "@example.com"), value).status().code() !=
               absl::StatusCode::kInvalidArgument;
      });
  const api::v1::FieldRules& sign_in_email =
      RulesOf(v1::CreateSessionRequest::descriptor(), "email");
  // With a NUL, a line break, a DEL: refused before anything is looked up.
  ExpectServiceAgrees(
      sign_in_email,
      StringProbes(sign_in_email, {local64 + "@" + long_domain, std::string("a@b.c\0x", 7),
                                   "a@b.c\nx", "a@b.c\x7f", "a b@c.d"}),
      [&](const std::string& value) {
        return SignIn(value, "a password").status().code() != absl::StatusCode::kInvalidArgument;
      });
  const api::v1::FieldRules& sign_in = RulesOf(v1::CreateSessionRequest::descriptor(), "password");
  ExpectServiceAgrees(
      sign_in, StringProbes(sign_in, {wide, wide + "e", "x"}), [&](const std::string& value) {
        return SignIn(absl::StrCat("in", ++n, "@example.com"), value).status().code() !=
               absl::StatusCode::kInvalidArgument;
      });
  const api::v1::FieldRules& refresh =
      RulesOf(v1::RefreshSessionRequest::descriptor(), "refresh_token");
  ExpectServiceAgrees(
      refresh,
      StringProbes(refresh, {"kurt_0123456789ab_" + std::string(64, 'f'),
                             "kurt_0123456789AB_" + std::string(64, 'f'),
                             "kurt_0123456789ab_" + std::string(63, 'f'), "kurt__"}),
      [&](const std::string& value) {
        return Refresh(value).status().code() != absl::StatusCode::kInvalidArgument;
      });
}

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
