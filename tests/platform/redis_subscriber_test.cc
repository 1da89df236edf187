// redis::Subscriber against real Redis servers: a message published on the channel arrives, and
// when the subscription is lost (the server killed and started again, or frozen so that only the
// PING check notices) it is made again, says so before any later message, and hears what is
// published after. The loss tests run a redis-server of their own on a free port, so the shared
// stack's Redis is left alone.
#include <signal.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "platform/redis/redis.h"
#include "platform/redis/subscriber.h"
#include "tests/support/child_process.h"
#include "tests/support/free_port.h"
#include "tests/support/stack_env.h"

namespace kurt {
namespace {

using testing::RandomName;

template <typename Predicate>
bool Eventually(Predicate done, absl::Duration within = absl::Seconds(10)) {
  const absl::Time deadline = absl::Now() + within;
  while (!done()) {
    if (absl::Now() > deadline) {
      return false;
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

// What a subscriber heard, in order: "+" for each (re)subscription, else the message.
class Recorder {
 public:
  void Subscribed() { Add("+"); }
  void Message(absl::string_view m) { Add(std::string(m)); }
  std::vector<std::string> events() {
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
  }
  int Count(const std::string& e) {
    auto all = events();
    return static_cast<int>(std::count(all.begin(), all.end(), e));
  }

 private:
  void Add(std::string e) {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back(std::move(e));
  }
  std::mutex mu_;
  std::vector<std::string> events_;
};

std::unique_ptr<redis::Subscriber> Subscribe(redis::RedisClient* client, const std::string& channel,
                                             Recorder* recorder) {
  redis::SubscriberOptions options;
  options.channel = channel;
  options.ping_interval = absl::Milliseconds(200);
  options.ping_timeout = absl::Milliseconds(500);
  return std::make_unique<redis::Subscriber>(
      client, options, [recorder](absl::string_view m) { recorder->Message(m); },
      [recorder] { recorder->Subscribed(); });
}

absl::Status Publish(redis::RedisClient& client, const std::string& channel,
                     const std::string& message) {
  return client.Command({"PUBLISH", channel, message}).status();
}

TEST(RedisSubscriberTest, MessagesArriveInOrderAfterTheSubscription) {
  auto options = redis::Options::FromUrl(testing::RedisUrl());
  ASSERT_TRUE(options.ok()) << options.status();
  redis::RedisClient client(*options);
  const std::string channel = RandomName("kurt-test-channel-");
  Recorder recorder;
  auto subscriber = Subscribe(&client, channel, &recorder);
  ASSERT_TRUE(Eventually([&] { return subscriber->subscribed(); }));
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(Publish(client, channel, absl::StrCat("m", i)).ok());
  }
  // A binary payload passes unchanged.
  const std::string binary("\0\x01\xff", 3);
  ASSERT_TRUE(Publish(client, channel, binary).ok());
  ASSERT_TRUE(Eventually([&] { return recorder.events().size() == 5; }));
  EXPECT_EQ(recorder.events(), (std::vector<std::string>{"+", "m0", "m1", "m2", binary}));
}

// A redis-server of the test's own.
class OwnRedisTest : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = testing::FreePort();
    server_ = std::make_unique<testing::ChildProcess>(
        "/usr/bin/redis-server",
        std::vector<std::string>{"--port", absl::StrCat(port_), "--bind", "127.0.0.1", "--save", "",
                                 "--appendonly", "no"},
        absl::StrCat(::testing::TempDir(), "/", RandomName("redis-"), ".log"));
    StartServer();
    redis::Options options;
    options.port = port_;
    client_ = std::make_unique<redis::RedisClient>(options);
  }
  void StartServer() {
    ASSERT_TRUE(server_->Start().ok());
    ASSERT_TRUE(Eventually([&] {
      redis::Options options;
      options.port = port_;
      return redis::RedisClient(options).Probe().ok();
    })) << server_->LogTail();
  }
  // Publishes until the subscriber hears it (a PUBLISH right after the server restarts may come
  // before the subscription is back; only what comes after `subscribed()` must arrive).
  bool PublishHeard(Recorder& recorder, const std::string& channel, const std::string& message) {
    return Eventually([&] {
      (void)Publish(*client_, channel, message);
      return recorder.Count(message) > 0;
    });
  }

  int port_ = 0;
  std::unique_ptr<testing::ChildProcess> server_;
  std::unique_ptr<redis::RedisClient> client_;
};

TEST_F(OwnRedisTest, AKilledServerStartedAgainIsSubscribedToAgainAndSaysSo) {
  const std::string channel = "changes";
  Recorder recorder;
  auto subscriber = Subscribe(client_.get(), channel, &recorder);
  ASSERT_TRUE(Eventually([&] { return subscriber->subscribed(); }));
  ASSERT_TRUE(PublishHeard(recorder, channel, "before"));

  ASSERT_TRUE(server_->Stop(SIGKILL));
  ASSERT_TRUE(Eventually([&] { return !subscriber->subscribed(); }, absl::Seconds(2)))
      << "the subscriber did not notice the server died";
  StartServer();
  ASSERT_TRUE(Eventually([&] { return subscriber->subscribed(); }, absl::Seconds(5)));
  ASSERT_TRUE(PublishHeard(recorder, channel, "after"));
  // Subscribed, message, subscribed again (before anything published since), message.
  std::vector<std::string> events = recorder.events();
  ASSERT_EQ(recorder.Count("+"), 2);
  EXPECT_EQ(events.front(), "+");
  auto second = std::find(events.begin() + 1, events.end(), "+");
  EXPECT_LT(std::find(events.begin(), events.end(), "before"), second);
  EXPECT_GT(std::find(events.begin(), events.end(), "after"), second);
}

// A server that stops answering without closing the connection (frozen, or cut off by the
// network) is noticed by the PING check, within ping_interval + ping_timeout.
TEST_F(OwnRedisTest, AFrozenServerIsNoticedAndSubscribedToAgainOnceItAnswers) {
  const std::string channel = "changes";
  Recorder recorder;
  auto subscriber = Subscribe(client_.get(), channel, &recorder);
  ASSERT_TRUE(Eventually([&] { return subscriber->subscribed(); }));

  server_->Signal(SIGSTOP);
  const absl::Time frozen = absl::Now();
  const bool noticed = Eventually([&] { return !subscriber->subscribed(); }, absl::Seconds(3));
  const absl::Duration took = absl::Now() - frozen;
  server_->Signal(SIGCONT);
  ASSERT_TRUE(noticed) << "a frozen server went unnoticed for 3 s";
  EXPECT_LT(took, absl::Milliseconds(1500));
  ASSERT_TRUE(Eventually([&] { return subscriber->subscribed(); }, absl::Seconds(5)));
  ASSERT_TRUE(PublishHeard(recorder, channel, "after"));
  EXPECT_EQ(recorder.Count("+"), 2);
}

}  // namespace
}  // namespace kurt
