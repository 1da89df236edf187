// Fault test 1 of the --ha stack at the database's level: the leader's node is lost (its Patroni
// and its PostgreSQL SIGKILLed together, so Patroni cannot restart PostgreSQL in place) under a
// steady stream of link creates to a real links service (LinksModule, as kurt-links wires it)
// whose database is reached through PgBouncer and HAProxy. A replica is promoted; every create
// answered OK, before, during or after, exists afterwards; creates fail only as UNAVAILABLE
// meanwhile. Prints the window in seconds. The killed member is restarted and rejoins as a
// replica, so the stack is left healthy.
#include <dirent.h>
#include <signal.h>

#include <atomic>
#include <cinttypes>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "kurt/links/v1/links.grpc.pb.h"
#include "platform/grpc/edge_trust.h"
#include "platform/grpc/server.h"
#include "platform/kafka/kafka.h"
#include "platform/pg/pg.h"
#include "platform/redis/redis.h"
#include "services/common/mesh.h"
#include "services/links/links_module.h"
#include "tests/ha/ha_env.h"
#include "tests/support/stack_env.h"

namespace kurt::testing {
namespace {

namespace v1 = kurt::links::v1;

constexpr int kWriters = 4;

struct Attempt {
  absl::Time start;
  absl::Time end;
  grpc::StatusCode code;
  std::string message;
  std::string link_code;  // when OK
};

// The first line of a pid file, or 0.
pid_t PidFrom(const std::string& path) {
  std::ifstream in(path);
  int64_t pid = 0;
  in >> pid;
  return static_cast<pid_t>(pid);
}

// The processes whose parent is `parent` (a postmaster's backends and helpers).
std::vector<pid_t> ChildrenOf(pid_t parent) {
  std::vector<pid_t> out;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) {
    return out;
  }
  while (dirent* e = readdir(proc)) {
    const pid_t pid = static_cast<pid_t>(std::atol(e->d_name));
    if (pid <= 0) {
      continue;
    }
    std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
    std::string line;
    std::getline(stat, line);
    // pid (comm) state ppid ...: comm may hold spaces, so read after the last ')'.
    size_t paren = line.rfind(')');
    if (paren == std::string::npos) {
      continue;
    }
    char state = 0;
    int64_t ppid = 0;
    if (std::sscanf(line.c_str() + paren + 1, " %c %" SCNd64, &state, &ppid) == 2 &&
        ppid == parent) {
      out.push_back(pid);
    }
  }
  closedir(proc);
  return out;
}

absl::StatusOr<PatroniMember> Leader() {
  auto members = PatroniCluster();
  if (!members.ok()) {
    return members.status();
  }
  for (const PatroniMember& m : *members) {
    if (m.role == "leader" && m.state == "running") {
      return m;
    }
  }
  return absl::UnavailableError("no running leader");
}

// Every member running, one leader, one sync standby.
bool ClusterHealthy() {
  auto members = PatroniCluster();
  if (!members.ok() || members->size() != 3) {
    return false;
  }
  int leaders = 0, syncs = 0;
  for (const PatroniMember& m : *members) {
    if (m.state != "running" && m.state != "streaming") {
      return false;
    }
    leaders += m.role == "leader";
    syncs += m.role == "sync_standby";
  }
  return leaders == 1 && syncs == 1;
}

// The links service's cache: the --ha stack's Redis, through its Sentinels, as the binaries build
// theirs.
std::unique_ptr<redis::RedisClient> RedisForLinks() {
  absl::SetFlag(&FLAGS_redis_sentinels, HaEnv("KURT_REDIS_SENTINELS"));
  absl::SetFlag(&FLAGS_redis_master_name, HaEnv("KURT_REDIS_MASTER_NAME"));
  absl::SetFlag(&FLAGS_redis_password, HaEnv("KURT_REDIS_PASSWORD"));
  auto client = redis::RedisClient::FromFlags();
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? *std::move(client) : nullptr;
}

class HaPgFailoverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(ClusterHealthy()) << "the --ha stack's PostgreSQL is not healthy (tools/stack "
                                     "status --ha)";
    db_ = std::make_unique<HaScratchDatabase>();
    pg::ClusterOptions po;
    po.primary.url = db_->pooled_url();
    po.primary.max_connections = 8;
    cluster_ = std::make_unique<pg::PgCluster>(po);
    redis_ = RedisForLinks();
    ASSERT_NE(redis_, nullptr);
    kafka::ProducerOptions ko;
    ko.brokers = KafkaBrokers();
    producer_ = std::move(*kafka::KafkaProducer::Create(ko));

    links::LinksConfig config;
    config.short_url_base = "http://kurt.test/";
    config.cache_key_prefix = RandomName("kurt:test:ha:link:") + ":";
    auto links = links::LinksModule::Create(config, {.cluster = cluster_.get(),
                                                     .redis = redis_.get(),
                                                     .producer = producer_.get(),
                                                     .registry = &registry_});
    ASSERT_TRUE(links.ok()) << links.status();
    links_ = *std::move(links);
    platform::GrpcServerOptions go;
    go.name = "links";
    go.metrics_port = -1;
    server_ = std::make_unique<platform::GrpcServer>(go, &registry_);
    links_->AddTo(server_.get());
    ASSERT_TRUE(server_->Start().ok());
    stub_ = v1::LinksService::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", server_->grpc_port()), grpc::InsecureChannelCredentials()));
  }

  void TearDown() override {
    if (server_) {
      server_->Shutdown();
    }
    // Whatever happened above, the killed member comes back (a no-op when it runs).
    if (!killed_.empty()) {
      EXPECT_TRUE(Stack("start", absl::StrCat("--ha ", killed_)));
    }
  }

  Attempt CreateOne(int writer, int i) {
    grpc::ClientContext ctx;
    ctx.AddMetadata(std::string{platform::kAccountIdMetadata}, account_);
    ctx.AddMetadata(mesh::kClientIpMetadata, "203.0.113.7");
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    v1::CreateLinkRequest req;
    req.set_target_url(absl::StrCat("https://example.com/ha/", writer, "/", i));
    v1::Link link;
    Attempt a;
    a.start = absl::Now();
    grpc::Status s = stub_->CreateLink(&ctx, req, &link);
    a.end = absl::Now();
    a.code = s.error_code();
    a.message = s.error_message();
    if (s.ok()) {
      a.link_code = link.code();
    }
    return a;
  }

  // SIGKILLs the member's Patroni, its postmaster and the postmaster's children at once: the node
  // is gone, as far as the cluster can tell.
  void KillNode(const std::string& member) {
    const std::string run = absl::StrCat(HaStateDir(), "/run/", member, ".pid");
    const std::string pm = absl::StrCat(HaStateDir(), "/pg/", member, "/data/postmaster.pid");
    const pid_t patroni = PidFrom(run), postmaster = PidFrom(pm);
    ASSERT_GT(patroni, 0) << run;
    ASSERT_GT(postmaster, 0) << pm;
    std::vector<pid_t> victims = ChildrenOf(postmaster);
    victims.insert(victims.begin(), {patroni, postmaster});
    for (pid_t pid : victims) {
      kill(pid, SIGKILL);
    }
    killed_ = member;
  }

  std::unique_ptr<HaScratchDatabase> db_;
  metrics::Registry registry_;
  std::unique_ptr<pg::PgCluster> cluster_;
  std::unique_ptr<redis::RedisClient> redis_;
  std::unique_ptr<kafka::KafkaProducer> producer_;
  std::unique_ptr<links::LinksModule> links_;
  std::unique_ptr<platform::GrpcServer> server_;
  std::unique_ptr<v1::LinksService::Stub> stub_;
  const std::string account_ = RandomName("acct-ha-");
  std::string killed_;
};

TEST_F(HaPgFailoverTest, LosingTheLeaderLosesNoAcknowledgedCreate) {
  auto old_leader = Leader();
  ASSERT_TRUE(old_leader.ok()) << old_leader.status();

  std::mutex mu;
  std::vector<Attempt> attempts;
  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  writers.reserve(kWriters);
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; !stop; ++i) {
        Attempt a = CreateOne(w, i);
        std::lock_guard<std::mutex> lock(mu);
        attempts.push_back(std::move(a));
      }
    });
  }
  auto acknowledged_since = [&](absl::Time t) {
    std::lock_guard<std::mutex> lock(mu);
    for (const Attempt& a : attempts) {
      if (a.code == grpc::StatusCode::OK && a.start > t) {
        return true;
      }
    }
    return false;
  };

  absl::SleepFor(absl::Seconds(3));
  ASSERT_TRUE(acknowledged_since(absl::InfinitePast())) << "no create succeeded before the fault";
  KillNode(old_leader->name);
  // After the kill: a create that started while the pid files were being read may have been
  // answered OK by the old leader, and would pass for one the new leader served.
  const absl::Time killed_at = absl::Now();

  // Until a create issued after the kill is acknowledged (the new leader serves), then 3 s more.
  const absl::Time give_up = killed_at + absl::Seconds(90);
  while (!acknowledged_since(killed_at) && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  absl::SleepFor(absl::Seconds(3));
  stop = true;
  for (auto& t : writers) {
    t.join();
  }

  auto new_leader = Leader();
  ASSERT_TRUE(new_leader.ok()) << new_leader.status();
  EXPECT_NE(new_leader->name, old_leader->name) << "no replica was promoted";

  // The window: from the kill to the end of the first create issued after it that was answered OK.
  absl::Time recovered = absl::InfiniteFuture();
  std::map<grpc::StatusCode, int> failures;
  std::set<std::string> acknowledged;
  for (const Attempt& a : attempts) {
    if (a.code == grpc::StatusCode::OK) {
      acknowledged.insert(a.link_code);
      if (a.start > killed_at && a.end < recovered) {
        recovered = a.end;
      }
      continue;
    }
    if (failures[a.code]++ == 0) {
      std::printf("first failure with status %d: %s\n", static_cast<int>(a.code),
                  a.message.c_str());
    }
    EXPECT_EQ(a.code, grpc::StatusCode::UNAVAILABLE)
        << "a create failed with status " << a.code << " during the failover: " << a.message;
  }
  ASSERT_NE(recovered, absl::InfiniteFuture()) << "creates did not succeed again within 90 s";
  const double window = absl::ToDoubleSeconds(recovered - killed_at);

  // Every acknowledged create is on the new leader.
  std::set<std::string> stored;
  pg::PoolOptions vo;
  vo.url = db_->direct_url();
  vo.max_connections = 1;
  pg::PgPool verify(vo);
  ASSERT_TRUE(verify
                  .Run([&](pqxx::connection& c) {
                    pqxx::nontransaction tx(c);
                    for (const auto& row :
                         tx.exec_params("SELECT code FROM links WHERE account_id = $1", account_)) {
                      stored.insert(row[0].as<std::string>());
                    }
                  })
                  .ok());
  int lost = 0;
  for (const std::string& code : acknowledged) {
    if (stored.count(code) == 0) {
      ++lost;
      ADD_FAILURE() << "create of " << code << " was acknowledged but is not stored";
    }
  }
  int failed = 0;
  for (const auto& [code, n] : failures) {
    failed += n;
  }
  std::printf(
      "failover: %s SIGKILLed (Patroni + PostgreSQL), %s promoted; window %.1f s; creates: %zu "
      "attempted, %zu acknowledged, %zu verified stored, %d lost; %d failed (all UNAVAILABLE: "
      "%s); %zu stored without an answer\n",
      old_leader->name.c_str(), new_leader->name.c_str(), window, attempts.size(),
      acknowledged.size(), acknowledged.size() - lost, lost, failed,
      failures.size() <= 1 && failures.count(grpc::StatusCode::UNAVAILABLE) == failures.size()
          ? "yes"
          : "no",
      stored.size() - (acknowledged.size() - lost));
  EXPECT_EQ(lost, 0);
  EXPECT_LT(window, 30.0) << "the failover took too long";

  // Back to a healthy cluster: the lost member rejoins as a replica.
  ASSERT_TRUE(Stack("start", absl::StrCat("--ha ", old_leader->name)));
  killed_.clear();
  EXPECT_TRUE(ClusterHealthy());
  auto members = PatroniCluster();
  ASSERT_TRUE(members.ok());
  for (const PatroniMember& m : *members) {
    if (m.name == old_leader->name) {
      EXPECT_NE(m.role, "leader");
    }
  }
}

}  // namespace
}  // namespace kurt::testing
