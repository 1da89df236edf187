// AccountsAuthorizer with a fake KeyAuthenticator and a fake clock.
#include "edge/accounts_authorizer.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <optional>

#include "absl/synchronization/notification.h"
#include "edge/rate_limiter.h"
#include "gtest/gtest.h"

namespace kurt::edge {
namespace {

class FakeAuthenticator : public KeyAuthenticator {
 public:
  void Authenticate(const std::string& key,
                    std::function<void(absl::StatusOr<std::string>)> done) override {
    ++calls;
    if (down) {
      return done(absl::UnavailableError("accounts down"));
    }
    auto it = accounts.find(key);
    if (it == accounts.end()) {
      return done(absl::UnauthenticatedError("invalid API key"));
    }
    done(it->second);
  }
  std::map<std::string, std::string> accounts;
  bool down = false;
  int calls = 0;
};

class AccountsAuthorizerTest : public ::testing::Test {
 protected:
  AccountsAuthorizerTest() {
    fake_.accounts["kurt_good"] = "acc_1";
    AccountsAuthorizerOptions o;
    o.edge_secret = "shh";
    o.cache_ttl = absl::Seconds(5);
    o.cache_entries = 2;
    authorizer_ = std::make_unique<AccountsAuthorizer>(o, &fake_, [this] { return now_; });
  }

  AuthDecision Run(const std::string& authorization, bool is_public = false) {
    Route route;
    route.is_public = is_public;
    AuthRequest req;
    req.route = &route;
    req.authorization = authorization;
    std::optional<AuthDecision> out;
    authorizer_->Authorize(req, [&](AuthDecision d) { out = std::move(d); });
    EXPECT_TRUE(out.has_value());
    return out.value_or(AuthDecision{});
  }
  static std::string Meta(const AuthDecision& d, const std::string& key) {
    for (const auto& [k, v] : d.metadata) {
      if (k == key) {
        return v;
      }
    }
    return "";
  }

  FakeAuthenticator fake_;
  absl::Time now_ = absl::FromUnixSeconds(1000);
  std::unique_ptr<AccountsAuthorizer> authorizer_;
};

TEST_F(AccountsAuthorizerTest, PublicRoutesPassWithoutAKey) {
  AuthDecision d = Run("", true);
  EXPECT_TRUE(d.status.ok());
  EXPECT_EQ(Meta(d, "x-kurt-account-id"), "");
  EXPECT_EQ(Meta(d, "x-kurt-edge-secret"), "shh");
  EXPECT_EQ(fake_.calls, 0);
}

TEST_F(AccountsAuthorizerTest, MissingOrMalformedAuthorizationIs401) {
  AuthDecision d = Run("");
  EXPECT_EQ(d.status.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_NE(d.status.message().find("Bearer"), std::string::npos);
  EXPECT_EQ(Run("Basic dXNlcjpwYXNz").status.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(Run("Bearer kurt_bad").status.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(fake_.calls, 1);
}

TEST_F(AccountsAuthorizerTest, GoodKeyAddsAccountAndSecretAndIsCachedForTheTtl) {
  AuthDecision d = Run("Bearer kurt_good");
  ASSERT_TRUE(d.status.ok());
  EXPECT_EQ(Meta(d, "x-kurt-account-id"), "acc_1");
  EXPECT_EQ(Meta(d, "x-kurt-edge-secret"), "shh");
  EXPECT_TRUE(Run("bearer kurt_good").status.ok());
  EXPECT_EQ(fake_.calls, 1);
  // Revoked upstream: still cached until the TTL ends, then refused.
  fake_.accounts.clear();
  now_ += absl::Seconds(4);
  EXPECT_TRUE(Run("Bearer kurt_good").status.ok());
  now_ += absl::Seconds(2);
  EXPECT_EQ(Run("Bearer kurt_good").status.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(fake_.calls, 2);
}

TEST_F(AccountsAuthorizerTest, AccountsDownIs503AndNotCached) {
  fake_.down = true;
  EXPECT_EQ(Run("Bearer kurt_good").status.code(), absl::StatusCode::kUnavailable);
  fake_.down = false;
  EXPECT_TRUE(Run("Bearer kurt_good").status.ok());
  EXPECT_EQ(fake_.calls, 2);
}

TEST_F(AccountsAuthorizerTest, CacheIsBounded) {
  fake_.accounts["kurt_a"] = "acc_a";
  fake_.accounts["kurt_b"] = "acc_b";
  Run("Bearer kurt_good");
  Run("Bearer kurt_a");
  Run("Bearer kurt_b");  // evicts kurt_good (least recently used)
  EXPECT_EQ(fake_.calls, 3);
  Run("Bearer kurt_b");
  EXPECT_EQ(fake_.calls, 3);
  Run("Bearer kurt_good");
  EXPECT_EQ(fake_.calls, 4);
}

TEST(TokenBucketTest, BurstThenRefillAtTheRate) {
  RateLimit limit{2, 3};
  BucketState b;
  absl::Time t = absl::FromUnixSeconds(100);
  EXPECT_TRUE(TakeToken(&b, true, t, limit).allowed);
  EXPECT_TRUE(TakeToken(&b, false, t, limit).allowed);
  EXPECT_TRUE(TakeToken(&b, false, t, limit).allowed);
  RateDecision d = TakeToken(&b, false, t, limit);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after, absl::Milliseconds(500));
  EXPECT_FALSE(TakeToken(&b, false, t + absl::Milliseconds(400), limit).allowed);
  EXPECT_TRUE(TakeToken(&b, false, t + absl::Milliseconds(500), limit).allowed);
  // A long pause refills to the burst, not beyond.
  t += absl::Hours(1);
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(TakeToken(&b, false, t, limit).allowed);
  }
  EXPECT_FALSE(TakeToken(&b, false, t, limit).allowed);
}

TEST(TokenBucketTest, LocalBucketsAreIndependentAndBounded) {
  LocalBuckets buckets(2);
  RateLimit limit{1, 1};
  absl::Time t = absl::FromUnixSeconds(100);
  EXPECT_TRUE(buckets.Take("a", limit, t).allowed);
  EXPECT_FALSE(buckets.Take("a", limit, t).allowed);
  EXPECT_TRUE(buckets.Take("b", limit, t).allowed);
  EXPECT_TRUE(buckets.Take("c", limit, t + absl::Seconds(5)).allowed);  // evicts idle ones
  EXPECT_FALSE(buckets.Take("c", limit, t + absl::Seconds(5)).allowed);
}

TEST(TokenBucketTest, RedisDownFallsBackToLocalBuckets) {
  redis::Options o;
  o.port = 1;  // nothing listens there
  redis::RedisClient redis(o);
  RedisRateLimiter limiter(&redis, 1);
  auto take = [&] {
    absl::Notification n;
    RateDecision out;
    limiter.Take("k", RateLimit{0.5, 2}, [&](RateDecision d) {
      out = d;
      n.Notify();
    });
    n.WaitForNotification();
    return out;
  };
  EXPECT_TRUE(take().allowed);
  EXPECT_TRUE(take().allowed);
  RateDecision d = take();
  EXPECT_FALSE(d.allowed);
  EXPECT_GT(d.retry_after, absl::ZeroDuration());
}

// While Redis hangs, the limiter's threads are busy and checks queue up, each holding its
// request: past the bound the limiter answers at once that it is overloaded.
TEST(TokenBucketTest, QueueOfRedisCallsIsBounded) {
  // A listener that never accepts: connections complete in its backlog, commands get no answer.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 16), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  redis::Options o;
  o.port = ntohs(addr.sin_port);
  o.command_timeout = absl::Seconds(1);
  redis::RedisClient redis(o);
  std::atomic<int> answered{0};
  std::atomic<int> overloaded{0};
  {
    RedisRateLimiter limiter(&redis, /*threads=*/1, "kurt:test:rl:", /*max_queue=*/2);
    for (int i = 0; i < 10; ++i) {
      limiter.Take("k", RateLimit{10, 20}, [&](RateDecision d) {
        answered.fetch_add(1);
        if (d.overloaded) {
          EXPECT_FALSE(d.allowed);
          overloaded.fetch_add(1);
        }
      });
      absl::SleepFor(absl::Milliseconds(20));  // the thread takes the first one and hangs
    }
    // One in the thread, two queued: the other seven were answered at once.
    EXPECT_EQ(overloaded.load(), 7);
  }
  EXPECT_EQ(answered.load(), 10);
  close(fd);
}

class FakeLimiter : public RateLimiter {
 public:
  void Take(std::string key, RateLimit, std::function<void(RateDecision)> done) override {
    keys.push_back(key);
    RateDecision d;
    d.allowed = key != deny;
    d.overloaded = overloaded;
    d.retry_after = absl::Milliseconds(1500);
    done(d);
  }
  std::vector<std::string> keys;
  std::string deny;
  bool overloaded = false;
};

TEST(AccountsAuthorizerLimitsTest, PerAddressThenPerAccount) {
  FakeAuthenticator fake;
  fake.accounts["kurt_good"] = "acc_1";
  FakeLimiter limiter;
  AccountsAuthorizerOptions o;
  o.limiter = &limiter;
  AccountsAuthorizer authorizer(o, &fake);
  Route route;
  AuthRequest req;
  req.route = &route;
  req.client_ip = "192.0.2.1";
  req.authorization = "Bearer kurt_good";
  auto run = [&] {
    std::optional<AuthDecision> out;
    authorizer.Authorize(req, [&](AuthDecision d) { out = std::move(d); });
    return out.value_or(AuthDecision{});
  };
  EXPECT_TRUE(run().status.ok());
  EXPECT_EQ(limiter.keys, (std::vector<std::string>{"ip:192.0.2.1", "acct:acc_1"}));
  limiter.deny = "acct:acc_1";
  AuthDecision d = run();
  EXPECT_EQ(d.status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(d.status.message().find("retry after 2 s"), std::string::npos) << d.status;
  limiter.deny = "ip:192.0.2.1";
  EXPECT_EQ(run().status.code(), absl::StatusCode::kResourceExhausted);
}

// A limiter too busy to check answers 503 (retry in a moment), not 429, and both are counted.
TEST(AccountsAuthorizerLimitsTest, OverloadedLimiterIs503AndCounted) {
  FakeAuthenticator fake;
  FakeLimiter limiter;
  AccountsAuthorizerOptions o;
  o.limiter = &limiter;
  AccountsAuthorizer authorizer(o, &fake);
  metrics::Registry registry;
  authorizer.AttachMetrics(&registry);
  Route route;
  AuthRequest req;
  req.route = &route;
  req.client_ip = "192.0.2.1";
  auto run = [&] {
    std::optional<AuthDecision> out;
    authorizer.Authorize(req, [&](AuthDecision d) { out = std::move(d); });
    return out.value_or(AuthDecision{});
  };
  limiter.deny = "ip:192.0.2.1";
  EXPECT_EQ(run().status.code(), absl::StatusCode::kResourceExhausted);
  limiter.overloaded = true;
  AuthDecision d = run();
  EXPECT_EQ(d.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(d.status.message().find("retry"), std::string::npos) << d.status;
  ASSERT_EQ(d.response_headers.size(), 1u);
  EXPECT_EQ(d.response_headers[0].first, "Retry-After");
  std::string text = registry.Render();
  EXPECT_NE(text.find(R"(kurt_edge_rate_limit_refusals_total{reason="limited"} 1)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(kurt_edge_rate_limit_refusals_total{reason="overloaded"} 1)"),
            std::string::npos)
      << text;
}

}  // namespace
}  // namespace kurt::edge
