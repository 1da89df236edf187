#include "platform/redis/redis.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <set>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "platform/redis/fake_resp_server.h"

namespace kurt::redis {
namespace {

using testing::Bulk;
using testing::BulkArray;
using testing::Error;
using testing::FakeRespServer;
using testing::MasterRole;
using testing::NilArray;
using testing::NilBulk;
using testing::Ok;
using testing::ReplicaRole;

TEST(RedisOptionsTest, ParsesUrls) {
  auto o = Options::FromUrl("redis://10.1.2.3:16379/2");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->host, "10.1.2.3");
  EXPECT_EQ(o->port, 16379);
  EXPECT_EQ(o->db, 2);
  EXPECT_EQ(o->password, "");
  EXPECT_EQ(Options::FromUrl("redis://cache")->port, 6379);
}

TEST(RedisOptionsTest, ParsesPasswordsInUrls) {
  auto o = Options::FromUrl("redis://:s3cret@cache:7000/1");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->username, "");
  EXPECT_EQ(o->password, "s3cret");
  EXPECT_EQ(o->host, "cache");
  EXPECT_EQ(o->port, 7000);
  EXPECT_EQ(o->db, 1);
  o = Options::FromUrl("redis://kurt:p%40ss%2Fw@cache");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->username, "kurt");
  EXPECT_EQ(o->password, "p@ss/w");
  EXPECT_EQ(o->host, "cache");
}

TEST(RedisOptionsTest, RejectsBadUrlsNamingThem) {
  auto o = Options::FromUrl("http://x:1");
  EXPECT_EQ(o.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(o.status().message().find("http://x:1"), std::string::npos);
  EXPECT_FALSE(Options::FromUrl("redis://x:99999").ok());
  EXPECT_FALSE(Options::FromUrl("redis://x:1/zero").ok());
  EXPECT_FALSE(Options::FromUrl("redis://onlyauser@x:1").ok());
}

TEST(RedisOptionsTest, ErrorsNeverShowThePassword) {
  auto o = Options::FromUrl("redis://:hunter2@x:99999");
  ASSERT_FALSE(o.ok());
  EXPECT_EQ(o.status().message().find("hunter2"), std::string::npos) << o.status();
  EXPECT_NE(o.status().message().find("redis://:****@x:99999"), std::string::npos) << o.status();
  EXPECT_EQ(RedactUrl("redis://u:pw@h:1/0"), "redis://u:****@h:1/0");
  EXPECT_EQ(RedactUrl("redis://h:1"), "redis://h:1");
}

TEST(RedisOptionsTest, ParsesSentinelLists) {
  auto e = ParseEndpoints("127.0.0.1:25110, 127.0.0.2:25111,sentinel-c:26379");
  ASSERT_TRUE(e.ok()) << e.status();
  ASSERT_EQ(e->size(), 3u);
  EXPECT_EQ((*e)[1], (Endpoint{"127.0.0.2", 25111}));
  EXPECT_EQ((*e)[2].ToString(), "sentinel-c:26379");
  auto bad = ParseEndpoints("127.0.0.1:25110,nohostport");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("'nohostport'"), std::string::npos) << bad.status();
  EXPECT_FALSE(ParseEndpoints("h:0").ok());
  EXPECT_FALSE(ParseEndpoints(" , ").ok());
}

TEST(RedisOptionsTest, FlagsNameWhatIsWrong) {
  absl::FlagSaver saver;
  absl::SetFlag(&FLAGS_redis_url, "redis://:from-url@127.0.0.1:7000");
  absl::SetFlag(&FLAGS_redis_sentinels, "127.0.0.1:1,127.0.0.1:2");
  absl::SetFlag(&FLAGS_redis_master_name, "cache");
  auto o = Options::FromFlags();
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->sentinels.size(), 2u);
  EXPECT_EQ(o->master_name, "cache");
  EXPECT_EQ(o->password, "from-url");
  absl::SetFlag(&FLAGS_redis_password, "from-flag");
  EXPECT_EQ(Options::FromFlags()->password, "from-flag");

  absl::SetFlag(&FLAGS_redis_sentinels, "127.0.0.1");
  EXPECT_NE(Options::FromFlags().status().message().find("--redis_sentinels"), std::string::npos);
  absl::SetFlag(&FLAGS_redis_sentinels, "127.0.0.1:1");
  absl::SetFlag(&FLAGS_redis_master_name, "");
  EXPECT_NE(Options::FromFlags().status().message().find("--redis_master_name"), std::string::npos);
  absl::SetFlag(&FLAGS_redis_url, "redis://:pw@x:1/zero");
  auto bad = Options::FromFlags();
  EXPECT_NE(bad.status().message().find("--redis_url"), std::string::npos) << bad.status();
  EXPECT_EQ(bad.status().message().find("pw@"), std::string::npos) << bad.status();
}

// A port on loopback that nothing listens on.
int ClosedPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

TEST(RedisClientTest, DownServerFailsFastWithUnavailable) {
  Options o;
  o.port = ClosedPort();
  RedisClient client(o);
  auto first = client.Get("k");
  EXPECT_EQ(first.status().code(), absl::StatusCode::kUnavailable);
  // The circuit is open now: the next calls do not even try to connect.
  absl::Time start = absl::Now();
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(client.Set("k", "v", absl::Seconds(1)).code(), absl::StatusCode::kUnavailable);
  }
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(50));
}

// A Redis server as far as the client can tell: GET/SET on a map, AUTH with a password, ROLE,
// and "demoted" (a replica now: writes answer -READONLY, ROLE says slave).
class FakeRedis {
 public:
  explicit FakeRedis(std::string password = "")
      : password_(std::move(password)),
        server_([this](int c, const std::vector<std::string>& argv) { return Handle(c, argv); }) {}

  int port() const { return server_.port(); }
  Endpoint endpoint() const { return {"127.0.0.1", port()}; }
  void Demote() { demoted_ = true; }
  void Kill() { server_.Stop(); }
  std::optional<std::string> Value(const std::string& key) {
    absl::MutexLock lock(&mu_);
    auto it = data_.find(key);
    return it == data_.end() ? std::nullopt : std::optional<std::string>(it->second);
  }
  std::vector<std::vector<std::string>> commands() { return server_.commands(); }

 private:
  std::string Handle(int connection, const std::vector<std::string>& argv) {
    absl::MutexLock lock(&mu_);
    const std::string& cmd = argv[0];
    if (cmd == "AUTH") {
      if (password_.empty()) {
        return Error(
            "ERR AUTH <password> called without any password configured for the default user. "
            "Are you sure your configuration is correct?");
      }
      if (argv.back() != password_) {
        return Error("WRONGPASS invalid username-password pair or user is disabled.");
      }
      authenticated_.insert(connection);
      return Ok();
    }
    if (!password_.empty() && authenticated_.count(connection) == 0) {
      return Error("NOAUTH Authentication required.");
    }
    if (cmd == "PING") {
      return "+PONG\r\n";
    }
    if (cmd == "ROLE") {
      return demoted_ ? ReplicaRole(1) : MasterRole();
    }
    if (cmd == "GET") {
      auto it = data_.find(argv[1]);
      return it == data_.end() ? NilBulk() : Bulk(it->second);
    }
    if (cmd == "SET") {
      if (demoted_) {
        return Error("READONLY You can't write against a read only replica.");
      }
      data_[argv[1]] = argv[2];
      return Ok();
    }
    return Error("ERR unknown command");
  }

  const std::string password_;
  std::atomic<bool> demoted_{false};
  absl::Mutex mu_;
  std::map<std::string, std::string> data_;
  std::set<int> authenticated_;
  FakeRespServer server_;  // last: stopped (its threads joined) before the state above goes
};

// A Sentinel that names whichever master the test points it at (none: it knows no master).
class FakeSentinel {
 public:
  explicit FakeSentinel(std::string password = "")
      : password_(std::move(password)),
        server_([this](int, const std::vector<std::string>& argv) { return Handle(argv); }) {}

  void PointAt(std::optional<Endpoint> master) {
    absl::MutexLock lock(&mu_);
    master_ = std::move(master);
  }
  int port() const { return server_.port(); }
  Endpoint endpoint() const { return {"127.0.0.1", port()}; }
  std::vector<std::vector<std::string>> commands() { return server_.commands(); }

 private:
  std::string Handle(const std::vector<std::string>& argv) {
    absl::MutexLock lock(&mu_);
    if (argv[0] == "AUTH") {
      return argv.back() == password_ ? Ok() : Error("WRONGPASS invalid username-password pair");
    }
    if (argv.size() == 3 && argv[0] == "SENTINEL" && argv[1] == "get-master-addr-by-name") {
      if (argv[2] != "kurt" || !master_) {
        return NilArray();
      }
      return BulkArray({master_->host, absl::StrCat(master_->port)});
    }
    return Error("ERR unknown command");
  }

  const std::string password_;
  absl::Mutex mu_;
  std::optional<Endpoint> master_;
  FakeRespServer server_;
};

Options SentinelOptions(const std::vector<Endpoint>& sentinels, const std::string& password) {
  Options o;
  o.host = "127.0.0.1";
  o.port = ClosedPort();  // never used with Sentinels
  o.sentinels = sentinels;
  o.master_name = "kurt";
  o.password = password;
  o.open_circuit_for = absl::Milliseconds(50);
  o.connect_timeout = absl::Milliseconds(500);
  o.command_timeout = absl::Milliseconds(500);
  return o;
}

TEST(RedisSentinelTest, AsksEachSentinelInTurnAndAuthenticatesEverywhere) {
  FakeRedis master("s3cret");
  FakeSentinel sentinel("s3cret");
  sentinel.PointAt(master.endpoint());
  Endpoint down{"127.0.0.1", ClosedPort()};
  RedisClient client(SentinelOptions({down, sentinel.endpoint()}, "s3cret"));

  ASSERT_TRUE(client.Set("k", "v", absl::Seconds(10)).ok());
  EXPECT_EQ(master.Value("k"), "v");
  auto got = client.Get("k");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "v");
  EXPECT_EQ(*client.Master(), master.endpoint());

  auto asked = sentinel.commands();
  ASSERT_GE(asked.size(), 2u);
  EXPECT_EQ(asked[0], (std::vector<std::string>{"AUTH", "s3cret"}));
  EXPECT_EQ(asked[1], (std::vector<std::string>{"SENTINEL", "get-master-addr-by-name", "kurt"}));
  // The master: AUTH first, then ROLE (is it still the master?), then the command.
  auto seen = master.commands();
  ASSERT_GE(seen.size(), 3u);
  EXPECT_EQ(seen[0], (std::vector<std::string>{"AUTH", "s3cret"}));
  EXPECT_EQ(seen[1], (std::vector<std::string>{"ROLE"}));
  EXPECT_EQ(seen[2][0], "SET");
}

TEST(RedisSentinelTest, ADemotedMasterAnsweringReadOnlySendsTheClientToTheNewOne) {
  FakeRedis a;
  FakeRedis b;
  FakeSentinel sentinel;
  sentinel.PointAt(a.endpoint());
  RedisClient client(SentinelOptions({sentinel.endpoint()}, ""));
  ASSERT_TRUE(client.Set("k", "1", absl::Seconds(10)).ok());
  EXPECT_EQ(a.Value("k"), "1");

  // A failover: A is a replica now (the client's pooled connection still reaches it).
  a.Demote();
  sentinel.PointAt(b.endpoint());
  // Not even one failed call: READONLY means nothing was written, so the client asks again.
  absl::Status s = client.Set("k", "2", absl::Seconds(10));
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(b.Value("k"), "2");
  EXPECT_EQ(a.Value("k"), "1");
  EXPECT_EQ(*client.Master(), b.endpoint());
}

TEST(RedisSentinelTest, AfterTheMasterDiesTheClientAsksTheSentinelsAgain) {
  FakeRedis a;
  FakeRedis b;
  FakeSentinel sentinel;
  sentinel.PointAt(a.endpoint());
  RedisClient client(SentinelOptions({sentinel.endpoint()}, ""));
  ASSERT_TRUE(client.Set("k", "1", absl::Seconds(10)).ok());

  a.Kill();
  sentinel.PointAt(b.endpoint());
  // The pooled connection to A fails (the call is lost: Redis down is UNAVAILABLE), then the
  // circuit opens for 50 ms, then the client finds B.
  absl::Status first = client.Set("k", "2", absl::Seconds(10));
  EXPECT_EQ(first.code(), absl::StatusCode::kUnavailable) << first;
  absl::Time deadline = absl::Now() + absl::Seconds(2);
  absl::Status s;
  while (!(s = client.Set("k", "3", absl::Seconds(10))).ok() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(b.Value("k"), "3");
}

TEST(RedisSentinelTest, AServerThatIsNotTheMasterIsNotUsed) {
  // A Sentinel that has not seen the failover yet names a replica: ROLE says so.
  FakeRedis replica;
  replica.Demote();
  FakeRedis master;
  FakeSentinel sentinel;
  sentinel.PointAt(replica.endpoint());
  RedisClient client(SentinelOptions({sentinel.endpoint()}, ""));
  absl::Status s = client.Set("k", "v", absl::Seconds(10));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(s.message().find("not the master of 'kurt'"), std::string::npos) << s;

  sentinel.PointAt(master.endpoint());
  absl::SleepFor(absl::Milliseconds(60));  // the circuit
  s = client.Set("k", "v", absl::Seconds(10));
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(master.Value("k"), "v");
  for (const auto& argv : replica.commands()) {
    EXPECT_NE(argv[0], "SET");
  }
}

TEST(RedisSentinelTest, NoSentinelKnowingTheMasterIsUnavailableNamingIt) {
  FakeSentinel sentinel;
  RedisClient client(SentinelOptions({sentinel.endpoint()}, ""));
  absl::Status s = client.Probe();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(s.message().find("'kurt'"), std::string::npos) << s;
  EXPECT_NE(s.message().find(sentinel.endpoint().ToString()), std::string::npos) << s;
}

TEST(RedisAuthTest, AWrongPasswordIsUnauthenticatedNamingRedisAuthAtOnce) {
  FakeRedis server("right-one");
  Options o;
  o.port = server.port();
  o.password = "hunter2-wrong";
  RedisClient client(o);
  absl::Time start = absl::Now();
  absl::Status probe = client.Probe();
  EXPECT_EQ(probe.code(), absl::StatusCode::kUnauthenticated) << probe;
  EXPECT_NE(probe.message().find("redis authentication failed"), std::string::npos) << probe;
  EXPECT_NE(probe.message().find("--redis_password"), std::string::npos) << probe;
  EXPECT_EQ(probe.message().find("hunter2"), std::string::npos) << probe;
  EXPECT_EQ(client.Get("k").status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
}

TEST(RedisAuthTest, AMissingPasswordIsUnauthenticated) {
  FakeRedis server("right-one");
  Options o;
  o.port = server.port();
  RedisClient client(o);
  absl::Status probe = client.Probe();
  EXPECT_EQ(probe.code(), absl::StatusCode::kUnauthenticated) << probe;
  EXPECT_NE(probe.message().find("NOAUTH"), std::string::npos) << probe;
}

TEST(RedisAuthTest, ASentinelRefusingThePasswordIsUnauthenticated) {
  FakeRedis master("right-one");
  FakeSentinel sentinel("right-one");
  sentinel.PointAt(master.endpoint());
  RedisClient client(SentinelOptions({sentinel.endpoint()}, "hunter2-wrong"));
  absl::Status probe = client.Probe();
  EXPECT_EQ(probe.code(), absl::StatusCode::kUnauthenticated) << probe;
  EXPECT_NE(probe.message().find("Sentinel"), std::string::npos) << probe;
  EXPECT_EQ(probe.message().find("hunter2"), std::string::npos) << probe;
}

TEST(RedisAuthTest, APasswordForAServerWithoutOneIsHarmless) {
  FakeRedis server;
  Options o;
  o.port = server.port();
  o.password = "unneeded";
  RedisClient client(o);
  EXPECT_TRUE(client.Probe().ok());
  EXPECT_TRUE(client.Set("k", "v", absl::Seconds(1)).ok());
}

}  // namespace
}  // namespace kurt::redis
