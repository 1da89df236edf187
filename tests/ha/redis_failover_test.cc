// The --ha stack's Redis (tools/stack up --ha): the master is SIGKILLed under a steady stream of
// cached-link reads and writes; Sentinel promotes the replica and the client, which asks the
// Sentinels, follows it. Prints the failover window and the failed calls. A client that ignored
// the Sentinels would stay on the dead address and never succeed again: the test fails then.
// Also: a wrong or missing password is refused at start-up, clearly and at once.
//
// Needs KURT_REDIS_SENTINELS, KURT_REDIS_MASTER_NAME and KURT_REDIS_PASSWORD (the --ha stack's
// stack.env); fails without them. Leaves the topology whole: the killed server is restarted and
// rejoins as a replica.
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "platform/redis/redis.h"
#include "services/links/link_cache.h"
#include "tests/ha/ha_env.h"
#include "tests/support/stack_env.h"
#include "tests/support/wait_until.h"

namespace kurt {
namespace {

struct HaRedisEnv {
  std::string sentinels;
  std::string master_name;
  std::string password;
};

// The --ha stack's variables; a test without them fails (it does not skip).
std::optional<HaRedisEnv> Env() {
  return HaRedisEnv{testing::HaEnv("KURT_REDIS_SENTINELS"),
                    testing::HaEnv("KURT_REDIS_MASTER_NAME"),
                    testing::HaEnv("KURT_REDIS_PASSWORD")};
}

// Both servers running, the replica in sync with the master (idempotent).
void RestoreTopology() {
  EXPECT_TRUE(testing::Stack("start", "--ha redis-1"));
  EXPECT_TRUE(testing::Stack("start", "--ha redis-2"));
}

std::unique_ptr<redis::RedisClient> SentinelClient(const HaRedisEnv& env) {
  absl::SetFlag(&FLAGS_redis_sentinels, env.sentinels);
  absl::SetFlag(&FLAGS_redis_master_name, env.master_name);
  absl::SetFlag(&FLAGS_redis_password, env.password);
  auto client = redis::RedisClient::FromFlags();  // as the binaries make theirs
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? *std::move(client) : nullptr;
}

// A client of one fixed server, as a client that ignores the Sentinels would be.
std::unique_ptr<redis::RedisClient> DirectClient(const redis::Endpoint& server,
                                                 const std::string& password) {
  redis::Options o;
  o.host = server.host;
  o.port = server.port;
  o.password = password;
  return std::make_unique<redis::RedisClient>(o);
}

std::string Field(const std::string& info, const std::string& name) {
  for (absl::string_view line : absl::StrSplit(info, absl::ByAnyChar("\r\n"))) {
    if (absl::ConsumePrefix(&line, name + ":")) {
      return std::string(line);
    }
  }
  return "";
}

std::string Role(redis::RedisClient& client) {
  auto role = client.Command({"ROLE"});
  return role.ok() && !role->elements.empty() ? role->elements[0].str : "";
}

class RedisFailoverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_ = Env();
    if (env_) {
      RestoreTopology();
    }
  }
  void TearDown() override {
    if (env_) {
      RestoreTopology();
    }
  }
  std::optional<HaRedisEnv> env_;
  absl::FlagSaver flags_;
};

TEST_F(RedisFailoverTest, SentinelPromotesTheReplicaAndTheClientFollows) {
  ASSERT_TRUE(env_);
  const std::optional<HaRedisEnv>& env = env_;
  auto client = SentinelClient(*env);
  ASSERT_TRUE(client);
  auto old_master = client->Master();
  ASSERT_TRUE(old_master.ok()) << old_master.status();
  auto info = client->Command({"INFO", "server"});
  ASSERT_TRUE(info.ok()) << info.status();
  int old_pid = 0;
  ASSERT_TRUE(absl::SimpleAtoi(Field(info->str, "process_id"), &old_pid)) << info->str;

  // Cached redirects through the links cache, replicated before the kill (WAIT), so each must
  // still be a hit on the promoted replica.
  links::LinkCacheOptions cache_options;
  cache_options.key_prefix = testing::RandomName("kurt:ha-test:") + ":";
  links::RedisLinkCache cache(client.get(), cache_options);
  constexpr int kLinks = 200;
  auto target = [](int i) { return absl::StrCat("https://example.com/ha/", i); };
  for (int i = 0; i < kLinks; ++i) {
    cache.Put(absl::StrCat("c", i),
              {.exists = true, .target_url = target(i), .expire_time = std::nullopt, .limits = {}},
              /*announce=*/false);
  }
  auto waited = client->Command({"WAIT", "1", "5000"});
  ASSERT_TRUE(waited.ok()) << waited.status();
  ASSERT_GE(waited->integer, 1) << "the replica did not acknowledge the cached links";

  // The load: each thread alternates a cached redirect (GET through the cache) and a write.
  struct Call {
    absl::Time at;
    bool ok;
  };
  std::mutex mu;
  std::vector<Call> calls;
  std::vector<std::string> written;  // keys whose SET was acknowledged
  std::atomic<bool> stop{false};
  std::atomic<int> wrong_answers{0};
  auto worker = [&](int t) {
    for (int n = 0; !stop; ++n) {
      const int i = (t * 7919 + n) % kLinks;
      auto got = cache.Get(absl::StrCat("c", i));
      const bool read_ok = got.ok();
      if (got.ok() && (!got->has_value() || (*got)->target_url != target(i))) {
        ++wrong_answers;
      }
      const std::string key = absl::StrCat(cache_options.key_prefix, "w", t, ":", n);
      const bool write_ok = client->Set(key, "v", absl::Minutes(5)).ok();
      {
        std::lock_guard<std::mutex> lock(mu);
        calls.push_back({absl::Now(), read_ok});
        calls.push_back({absl::Now(), write_ok});
        if (write_ok) {
          written.push_back(key);
        }
      }
      absl::SleepFor(absl::Milliseconds(2));
    }
  };
  constexpr int kThreads = 4;
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back(worker, t);
  }
  absl::SleepFor(absl::Seconds(2));

  const absl::Time killed_at = absl::Now();
  ASSERT_EQ(::kill(old_pid, SIGKILL), 0);
  std::fprintf(stderr, "SIGKILL to the master %s (pid %d)\n", old_master->ToString().c_str(),
               old_pid);

  // Recovered: a write acknowledged after the kill; then 3 s more of load.
  auto first_success_after_kill = [&]() -> std::optional<absl::Time> {
    std::lock_guard<std::mutex> lock(mu);
    for (const Call& c : calls) {
      if (c.at > killed_at + absl::Milliseconds(100) && c.ok) {
        return c.at;
      }
    }
    return std::nullopt;
  };
  const bool recovered =
      testing::WaitUntil([&] { return first_success_after_kill().has_value(); }, absl::Seconds(30));
  absl::SleepFor(absl::Seconds(3));
  stop = true;
  for (std::thread& t : threads) {
    t.join();
  }
  ASSERT_TRUE(recovered) << "no call succeeded within 30 s of the master's death";

  const absl::Time recovered_at = *first_success_after_kill();
  int failed = 0;
  int failed_outside_window = 0;
  absl::Time last_failure = killed_at;
  for (const Call& c : calls) {
    if (!c.ok) {
      ++failed;
      last_failure = std::max(last_failure, c.at);
      failed_outside_window += c.at < killed_at || c.at > recovered_at ? 1 : 0;
    }
  }
  const absl::Duration window = recovered_at - killed_at;
  const absl::Duration ran = calls.back().at - calls.front().at;
  // While the circuit is open calls fail at once, so the loop runs faster in the window: the
  // number of failed calls says how many callers went to the database meanwhile.
  std::fprintf(stderr,
               "redis failover: window %.2f s (from SIGKILL to the first call answered by the "
               "promoted replica), last failure %.2f s after the kill; %d of %zu calls failed "
               "(UNAVAILABLE: callers fall back to the database), %d of them outside the window; "
               "%.0f calls/s over %.1f s\n",
               absl::ToDoubleSeconds(window), absl::ToDoubleSeconds(last_failure - killed_at),
               failed, calls.size(), failed_outside_window,
               static_cast<double>(calls.size()) / absl::ToDoubleSeconds(ran),
               absl::ToDoubleSeconds(ran));
  EXPECT_LT(window, absl::Seconds(15));
  EXPECT_LT(last_failure - killed_at, absl::Seconds(15));
  EXPECT_EQ(failed_outside_window, 0) << "calls failed while the master was up";
  EXPECT_EQ(wrong_answers.load(), 0) << "cached links lost or wrong on the promoted replica";

  // The client is on the promoted replica, and what it wrote after the kill is there.
  auto new_master = client->Master();
  ASSERT_TRUE(new_master.ok()) << new_master.status();
  EXPECT_NE(*new_master, *old_master);
  auto direct_new = DirectClient(*new_master, env->password);
  EXPECT_EQ(Role(*direct_new), "master");
  std::string written_after;
  {
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_FALSE(written.empty());
    written_after = written.back();
  }
  auto value = direct_new->Get(written_after);
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(*value, "v") << written_after << " is not on the new master";
  EXPECT_TRUE(client->Set(written_after, "after", absl::Minutes(5)).ok());
  EXPECT_EQ(*direct_new->Get(written_after), "after");
  for (int i = 0; i < kLinks; ++i) {
    auto got = cache.Get(absl::StrCat("c", i));
    ASSERT_TRUE(got.ok() && got->has_value()) << "cached link c" << i << " lost in the failover";
  }
  // What a client that ignored the Sentinels would see: the dead address.
  EXPECT_EQ(DirectClient(*old_master, env->password)->Set("k", "v", absl::Seconds(5)).code(),
            absl::StatusCode::kUnavailable);

  // The old master comes back as a replica of the new one.
  RestoreTopology();
  auto direct_old = DirectClient(*old_master, env->password);
  EXPECT_EQ(Role(*direct_old), "slave");
  auto replication = direct_old->Command({"INFO", "replication"});
  ASSERT_TRUE(replication.ok()) << replication.status();
  EXPECT_EQ(Field(replication->str, "master_port"), absl::StrCat(new_master->port));
  EXPECT_EQ(Field(replication->str, "master_link_status"), "up");
}

// `env -u KURT_REDIS_PASSWORD <binary> args...` bounded by `timeout` (with an edge secret and a
// record secret, which kurt-links needs outside dev mode): its exit code and output.
std::pair<int, std::string> RunBinary(const std::string& args) {
  const std::string cmd =
      absl::StrCat("env -u KURT_REDIS_PASSWORD -u KURT_REDIS_URL timeout 30 ", KURT_LINKS_BINARY,
                   " --edge_secret=ha-redis-test-secret --redis_record_secret=ha-redis-test-seal ",
                   args, " 2>&1");
  FILE* p = ::popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) {
    out.append(buf, n);
  }
  const int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

TEST(RedisAuthTest, AWrongOrMissingPasswordIsRefusedAtStartUpNamingRedisAuth) {
  auto env = Env();
  ASSERT_TRUE(env);
  absl::FlagSaver flags;
  for (const std::string& password : {std::string("not-the-password-7f3a"), std::string()}) {
    HaRedisEnv wrong = *env;
    wrong.password = password;
    absl::SetFlag(&FLAGS_redis_sentinels, wrong.sentinels);
    absl::SetFlag(&FLAGS_redis_master_name, wrong.master_name);
    absl::SetFlag(&FLAGS_redis_password, wrong.password);
    const absl::Time start = absl::Now();
    auto client = redis::RedisClient::FromFlags();
    EXPECT_LT(absl::Now() - start, absl::Seconds(2));
    ASSERT_FALSE(client.ok());
    EXPECT_EQ(client.status().code(), absl::StatusCode::kUnauthenticated) << client.status();
    EXPECT_TRUE(absl::StrContains(client.status().message(), "redis authentication failed"))
        << client.status();
    EXPECT_TRUE(absl::StrContains(client.status().message(), "NOAUTH") ||
                absl::StrContains(client.status().message(), "WRONGPASS"))
        << client.status();
    if (!password.empty()) {
      EXPECT_FALSE(absl::StrContains(client.status().message(), password));
    }
  }

  // The binary: exits 2 at once, saying why, never printing the password.
  const absl::Time start = absl::Now();
  auto [code, out] = RunBinary(absl::StrCat("--redis_sentinels=", env->sentinels,
                                            " --redis_master_name=", env->master_name,
                                            " --redis_password=not-the-password-7f3a"));
  EXPECT_EQ(code, 2) << out;
  EXPECT_LT(absl::Now() - start, absl::Seconds(10)) << out;
  EXPECT_TRUE(absl::StrContains(out, "redis authentication failed")) << out;
  EXPECT_FALSE(absl::StrContains(out, "not-the-password-7f3a")) << out;
  auto [code_missing, out_missing] = RunBinary(absl::StrCat(
      "--redis_sentinels=", env->sentinels, " --redis_master_name=", env->master_name));
  EXPECT_EQ(code_missing, 2) << out_missing;
  EXPECT_TRUE(absl::StrContains(out_missing, "redis authentication failed")) << out_missing;
}

}  // namespace
}  // namespace kurt
