// Sign-up, sessions and sign-in limits against the local stack: PostgreSQL (a scratch database
// with every migration) and Redis, with the real argon2id cost. Two accounts services share the
// database and Redis, as replicas do.
#include <algorithm>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
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

constexpr char kPassword[] = "correct horse battery";

// One replica of kurt-accounts: the module and its gRPC server.
struct Replica {
  std::unique_ptr<AccountsModule> module;
  std::unique_ptr<platform::GrpcServer> server;
  std::unique_ptr<v1::AccountsService::Stub> stub;
};

class SessionsIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pg::ClusterOptions po;
    po.primary.url = db_.primary_url();
    po.primary.max_connections = 8;
    cluster_ = std::make_unique<pg::PgCluster>(po);
    redis_ = std::make_unique<redis::RedisClient>(*redis::Options::FromUrl(testing::RedisUrl()));
    for (Replica& r : replicas_) {
      AccountsConfig config;
      config.open_signup = true;
      config.edge_secret = "test-edge-secret";
      config.key_cache_prefix = prefix_ + "key:";
      config.signin_key_prefix = prefix_ + "signin:";
      config.record_secret = "test-record-secret";
      config.signin_limits = SignInLimits{4, 1000, absl::Minutes(15)};
      config.sweep_interval = absl::ZeroDuration();
      r.module = AccountsModule::Create(config, {cluster_.get(), redis_.get()});
      platform::GrpcServerOptions go;
      go.name = "accounts";
      go.metrics_port = -1;
      r.server = std::make_unique<platform::GrpcServer>(go, &registry_);
      r.server->AddService(r.module->service());
      ASSERT_TRUE(r.server->Start().ok());
      r.stub = v1::AccountsService::NewStub(grpc::CreateChannel(
          absl::StrCat("127.0.0.1:", r.server->grpc_port()), grpc::InsecureChannelCredentials()));
    }
  }
  void TearDown() override {
    for (Replica& r : replicas_) {
      r.server->Shutdown();
    }
  }

  // Calls as the edge makes them, for a client at `client`.
  static void FromEdge(grpc::ClientContext* ctx, const std::string& client = "198.51.100.7") {
    ctx->AddMetadata("x-kurt-edge-secret", "test-edge-secret");
    ctx->AddMetadata("x-kurt-client-ip", client);
  }
  v1::SignUpResponse SignUp(const std::string& email, int replica = 0) {
    grpc::ClientContext ctx;
    FromEdge(&ctx);
    v1::SignUpRequest req;
    req.set_email(email);
    req.set_password(kPassword);
    v1::SignUpResponse res;
    grpc::Status s = replicas_[replica].stub->SignUp(&ctx, req, &res);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return res;
  }
  grpc::Status SignIn(const std::string& email, const std::string& password, v1::Session* out,
                      int replica = 0, const std::string& client = "198.51.100.7") {
    grpc::ClientContext ctx;
    FromEdge(&ctx, client);
    v1::CreateSessionRequest req;
    req.set_email(email);
    req.set_password(password);
    return replicas_[replica].stub->CreateSession(&ctx, req, out);
  }
  grpc::Status Refresh(const std::string& token, v1::Session* out, int replica = 0) {
    grpc::ClientContext ctx;
    FromEdge(&ctx);
    v1::RefreshSessionRequest req;
    req.set_refresh_token(token);
    return replicas_[replica].stub->RefreshSession(&ctx, req, out);
  }
  grpc::Status SignOut(const std::string& session_token) {
    grpc::ClientContext ctx;
    FromEdge(&ctx);
    ctx.AddMetadata("authorization", "Bearer " + session_token);
    v1::DeleteSessionResponse out;
    return replicas_[0].stub->DeleteSession(&ctx, {}, &out);
  }
  grpc::Status Authenticate(const std::string& key, int replica = 0) {
    grpc::ClientContext ctx;
    FromEdge(&ctx);
    v1::AuthenticateRequest req;
    req.set_key(key);
    v1::AuthenticateResponse out;
    return replicas_[replica].stub->Authenticate(&ctx, req, &out);
  }
  int64_t Count(const std::string& sql) {
    pqxx::connection c(db_.primary_url());
    pqxx::nontransaction tx(c);
    return tx.exec1(sql)[0].as<int64_t>();
  }

  testing::ScratchDatabase db_;
  const std::string prefix_ = testing::RandomName("kurt:test:sessions:") + ":";
  metrics::Registry registry_;
  std::unique_ptr<pg::PgCluster> cluster_;
  std::unique_ptr<redis::RedisClient> redis_;
  Replica replicas_[2];
};

TEST_F(SessionsIntegrationTest, ASessionLivesFromSignUpToSignOutAcrossReplicas) {
  v1::SignUpResponse up = SignUp("Grace@Example.org");
  EXPECT_EQ(up.session().email(), "grace@example.org");
  // The session token works wherever an API key does, on either replica (Redis and the database
  // are shared).
  EXPECT_TRUE(Authenticate(up.session().session_token(), 1).ok());

  v1::Session in;
  ASSERT_TRUE(SignIn("GRACE@example.org", kPassword, &in, 1).ok());
  v1::Session next;
  ASSERT_TRUE(Refresh(in.refresh_token(), &next, 0).ok());
  EXPECT_TRUE(Authenticate(next.session_token(), 1).ok());
  EXPECT_EQ(Refresh(in.refresh_token(), &next, 1).error_code(), grpc::StatusCode::UNAUTHENTICATED);

  // Session tokens are kept out of the API keys people manage.
  EXPECT_EQ(Count(absl::StrCat("SELECT count(*) FROM api_keys WHERE account_id = '",
                               up.account().id(), "' AND session_id IS NULL")),
            0);
  {
    grpc::ClientContext ctx;
    FromEdge(&ctx);
    ctx.AddMetadata("x-kurt-account-id", up.account().id());
    v1::ListKeysResponse keys;
    ASSERT_TRUE(replicas_[1].stub->ListKeys(&ctx, {}, &keys).ok());
    EXPECT_EQ(keys.keys_size(), 0);
  }

  // Signed out on one replica (the token cached in Redis by both): refused at once on both.
  ASSERT_TRUE(SignOut(in.session_token()).ok());
  for (int r : {0, 1}) {
    EXPECT_EQ(Authenticate(in.session_token(), r).error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_EQ(Authenticate(next.session_token(), r).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  EXPECT_EQ(Refresh(next.refresh_token(), &next).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  // The sign-up's own session is another one: it lives.
  EXPECT_TRUE(Authenticate(up.session().session_token(), 1).ok());
}

TEST_F(SessionsIntegrationTest, OfTwoRefreshesWithOneTokenExactlyOneWins) {
  v1::SignUpResponse up = SignUp("ada@example.org");
  for (int round = 0; round < 5; ++round) {
    v1::Session a;
    v1::Session b;
    grpc::Status sa;
    grpc::Status sb;
    const std::string token = up.session().refresh_token();
    std::thread t1([&] { sa = Refresh(token, &a, 0); });
    std::thread t2([&] { sb = Refresh(token, &b, 1); });
    t1.join();
    t2.join();
    ASSERT_NE(sa.ok(), sb.ok()) << "round " << round << ": " << sa.error_message() << " / "
                                << sb.error_message();
    *up.mutable_session() = sa.ok() ? a : b;
    // The loser was the same person a moment later: the session goes on.
    EXPECT_TRUE(Authenticate(up.session().session_token()).ok());
  }
}

TEST_F(SessionsIntegrationTest, PasswordsAndTokensAreStoredOnlyAsHashes) {
  testing::StderrCapture capture;
  v1::SignUpResponse up = SignUp("hopper@example.org");
  v1::Session in;
  ASSERT_TRUE(SignIn("hopper@example.org", kPassword, &in).ok());
  v1::Session wrong;
  EXPECT_FALSE(SignIn("hopper@example.org", "not the password", &wrong).ok());
  std::string logs = capture.Stop();
  EXPECT_TRUE(absl::StrContains(logs, "signed in")) << "logs were not captured";
  const std::string db = testing::AllRowsAsText(db_.primary_url());
  EXPECT_TRUE(absl::StrContains(db, "$argon2id$v=19$m=65536,t=2,p=1$"));
  for (const std::string& secret :
       {std::string(kPassword), std::string("not the password"), up.session().session_token(),
        up.session().refresh_token(), in.session_token(), in.refresh_token()}) {
    EXPECT_FALSE(absl::StrContains(db, secret)) << secret;
    EXPECT_FALSE(absl::StrContains(logs, secret)) << secret;
  }
}

// A wrong email and a wrong password take the same time: the unknown address is checked against
// a hash too. Without that, it answers in about a millisecond against about 75.
TEST_F(SessionsIntegrationTest, AWrongEmailTakesAsLongAsAWrongPassword) {
  constexpr int kPeople = 6;
  for (int i = 0; i < kPeople; ++i) {
    SignUp(absl::StrCat("person", i, "@example.org"));
  }
  std::vector<double> known;
  std::vector<double> unknown;
  auto time_ms = [&](const std::string& email, std::vector<double>* out) {
    v1::Session session;
    const absl::Time start = absl::Now();
    grpc::Status s = SignIn(email, "wrong password", &session);
    out->push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_EQ(s.error_message(), "wrong email or password");
  };
  // Interleaved, two tries per address (under the limit of four).
  for (int i = 0; i < kPeople; ++i) {
    for (int k = 0; k < 2; ++k) {
      time_ms(absl::StrCat("person", i, "@example.org"), &known);
      time_ms(absl::StrCat("nobody", i, "@example.org"), &unknown);
    }
  }
  std::sort(known.begin(), known.end());
  std::sort(unknown.begin(), unknown.end());
  const double known_ms = known[known.size() / 2];
  const double unknown_ms = unknown[unknown.size() / 2];
  std::printf("sign-in refused: median %.1f ms for a known email, %.1f ms for an unknown one\n",
              known_ms, unknown_ms);
  EXPECT_GT(known_ms, 20.0) << "argon2id at the interactive cost takes tens of ms";
  EXPECT_GT(unknown_ms / known_ms, 0.75);
  EXPECT_LT(unknown_ms / known_ms, 1.33);
}

// The limit counts in Redis: failures on either replica add up, and the right password waits too.
TEST_F(SessionsIntegrationTest, FailedSignInsCountAcrossReplicas) {
  SignUp("turing@example.org");
  v1::Session out;
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(SignIn("turing@example.org", "guess", &out, i % 2).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  for (int r : {0, 1}) {
    grpc::Status limited = SignIn("turing@example.org", kPassword, &out, r);
    EXPECT_EQ(limited.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
    EXPECT_TRUE(absl::StrContains(limited.error_message(), "retry after"))
        << limited.error_message();
    EXPECT_FALSE(limited.error_details().empty()) << "no RetryInfo";
  }
  // Another address is not affected; Redis holds no address in clear.
  SignUp("hamilton@example.org");
  EXPECT_TRUE(SignIn("hamilton@example.org", kPassword, &out, 1).ok());
  auto keys = redis_->Command({"KEYS", prefix_ + "signin:*"});
  ASSERT_TRUE(keys.ok());
  ASSERT_FALSE(keys->elements.empty());
  for (const redis::Reply& key : keys->elements) {
    EXPECT_FALSE(absl::StrContains(key.str, "turing")) << key.str;
  }
}

// Expired session tokens and refresh tokens, and the sessions left with neither, are deleted.
TEST_F(SessionsIntegrationTest, TheJanitorDeletesWhatExpired) {
  v1::SignUpResponse old = SignUp("old@example.org");
  v1::SignUpResponse live = SignUp("live@example.org");
  {
    pqxx::connection c(db_.primary_url());
    pqxx::work tx(c);
    tx.exec_params0(
        "UPDATE api_keys SET expire_time = now() - interval '2 hours' WHERE account_id = $1",
        old.account().id());
    tx.exec_params0(
        "UPDATE refresh_tokens SET expire_time = now() - interval '1 minute' "
        "WHERE session_id IN (SELECT id FROM sessions WHERE account_id = $1)",
        old.account().id());
    tx.commit();
  }
  PgAccountsStore store(cluster_.get());
  absl::StatusOr<int64_t> deleted = store.SweepExpired(absl::Now(), 1000);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, 3);  // a session token, a refresh token, their session
  EXPECT_EQ(Count("SELECT count(*) FROM sessions"), 1);
  EXPECT_TRUE(Authenticate(live.session().session_token()).ok());
  EXPECT_EQ(Authenticate(old.session().session_token()).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

}  // namespace
}  // namespace kurt::accounts
