#include "tests/support/stack_env.h"

#include <cstdlib>
#include <random>
#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tools/migrate/migrator.h"

namespace kurt::testing {
namespace {

std::string Env(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

void Check(const absl::Status& s, const std::string& what) {
  if (!s.ok()) {
    throw std::runtime_error(absl::StrCat(what, ": ", s.ToString()));
  }
}

}  // namespace

std::string PgPrimaryUrl() {
  return Env("KURT_PG_PRIMARY_URL", "postgresql://kurt@127.0.0.1:15432/kurt");
}
std::string PgReplicaUrl() {
  return Env("KURT_PG_REPLICA_URL", "postgresql://kurt@127.0.0.1:15433/kurt");
}
std::string RedisUrl() { return Env("KURT_REDIS_URL", "redis://127.0.0.1:16379"); }
std::string KafkaBrokers() { return Env("KURT_KAFKA_BROKERS", "127.0.0.1:19092"); }
std::string SourceDir() { return KURT_SOURCE_DIR; }

std::string RandomName(const std::string& prefix) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  const char* alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string out = prefix;
  for (int i = 0; i < 10; ++i) {
    out.push_back(alphabet[rng() % 36]);
  }
  return out;
}

std::string WithDatabase(const std::string& url, const std::string& database) {
  size_t scheme = url.find("://");
  size_t slash = url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  size_t query = url.find('?');
  std::string base = slash == std::string::npos ? url : url.substr(0, slash);
  std::string rest = query == std::string::npos ? "" : url.substr(query);
  return absl::StrCat(base, "/", database, rest);
}

std::string QueryText(pg::PgPool& pool, const std::string& sql) {
  std::string out;
  Check(pool.Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    pqxx::row r = tx.exec1(sql);
    out = r[0].is_null() ? "NULL" : r[0].as<std::string>();
  }),
        sql);
  return out;
}

std::string AllRowsAsText(const std::string& url) {
  pg::PoolOptions o;
  o.url = url;
  o.max_connections = 1;
  pg::PgPool pool(o);
  std::string all;
  Check(pool.Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    const pqxx::result tables = tx.exec(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', "
        "'information_schema')");
    for (const auto& t : tables) {
      const std::string q = absl::StrCat("SELECT t::text FROM ", c.quote_name(t[0].c_str()), ".",
                                         c.quote_name(t[1].c_str()), " t");
      for (const auto& row : tx.exec(q)) {
        absl::StrAppend(&all, row[0].c_str(), "\n");
      }
    }
  }),
        "reading every table");
  return all;
}

bool Stack(const std::string& verb, const std::string& server, const std::string& env) {
  // Its log goes to the test's stderr: what a failed restart said is in the test's output.
  const std::string cmd =
      absl::StrCat(env, " ", SourceDir(), "/tools/stack ", verb, " ", server, " >&2");
  return std::system(cmd.c_str()) == 0;
}

ScratchDatabase::ScratchDatabase(bool apply_migrations) : name_(RandomName("kurt_test_")) {
  pg::PoolOptions o;
  o.url = PgPrimaryUrl();
  o.max_connections = 1;
  pg::PgPool admin(o);
  Check(admin.Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    tx.exec(absl::StrCat("CREATE DATABASE ", name_));
  }),
        "creating the scratch database (is the stack up? tools/stack up)");
  if (!apply_migrations) {
    return;
  }
  auto migrations = migrate::LoadMigrations(SourceDir() + "/migrations");
  Check(migrations.status(), "reading migrations");
  pg::PoolOptions db;
  db.url = primary_url();
  db.max_connections = 1;
  pg::PgPool pool(db);
  Check(migrate::Apply(pool, *migrations).status(), "migrating the scratch database");
  WaitForReplica();
}

ScratchDatabase::~ScratchDatabase() {
  pg::PoolOptions o;
  o.url = PgPrimaryUrl();
  o.max_connections = 1;
  pg::PgPool admin(o);
  (void)admin.Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    tx.exec(absl::StrCat("DROP DATABASE IF EXISTS ", name_, " WITH (FORCE)"));
  });
}

std::string ScratchDatabase::primary_url() const { return WithDatabase(PgPrimaryUrl(), name_); }
std::string ScratchDatabase::replica_url() const { return WithDatabase(PgReplicaUrl(), name_); }

void ScratchDatabase::WaitForReplica() const {
  pg::PoolOptions p;
  p.url = PgPrimaryUrl();
  p.max_connections = 1;
  pg::PgPool primary(p);
  std::string lsn;
  Check(primary.Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    // The insert position: a commit with synchronous_commit = off may not be written yet.
    lsn = tx.exec1("SELECT pg_current_wal_insert_lsn()::text")[0].as<std::string>();
  }),
        "reading the primary's WAL position");
  pg::PoolOptions r;
  r.url = PgReplicaUrl();
  r.max_connections = 1;
  pg::PgPool replica(r);
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  for (;;) {
    bool caught_up = false;
    absl::Status s = replica.Run([&](pqxx::connection& c) {
      pqxx::nontransaction tx(c);
      caught_up = tx.exec1(absl::StrCat("SELECT pg_last_wal_replay_lsn() >= ", tx.quote(lsn),
                                        "::pg_lsn"))[0]
                      .as<bool>();
    });
    if (s.ok() && caught_up) {
      return;
    }
    if (absl::Now() > deadline) {
      throw std::runtime_error("the replica did not catch up within 30 s");
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
}

pg::ClusterOptions ScratchDatabase::ClusterOptions() const {
  pg::ClusterOptions options;
  options.primary.url = primary_url();
  pg::PoolOptions replica;
  replica.url = replica_url();
  replica.name = "replica0";
  options.replicas = {replica};
  return options;
}

absl::Status PauseReplicaReplay(bool paused) {
  pg::PoolOptions o;
  o.url = PgReplicaUrl();
  o.max_connections = 1;
  pg::PgPool replica(o);
  return replica.Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    tx.exec(paused ? "SELECT pg_wal_replay_pause()" : "SELECT pg_wal_replay_resume()");
  });
}

}  // namespace kurt::testing

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafkacpp.h>

namespace kurt::testing {

void CreateTopic(const std::string& name, int partitions) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", KafkaBrokers().c_str(), err, sizeof(err));
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
  if (!rk) {
    throw std::runtime_error(err);
  }
  // Replication factor -1: the broker's default (1 on the default stack, 3 on the --ha stack).
  rd_kafka_NewTopic_t* topic =
      rd_kafka_NewTopic_new(name.c_str(), partitions, -1, err, sizeof(err));
  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk);
  rd_kafka_CreateTopics(rk, &topic, 1, nullptr, queue);
  rd_kafka_event_t* ev = rd_kafka_queue_poll(queue, 30000);
  std::string error;
  if (!ev) {
    error = "no answer from the broker within 30 s";
  } else {
    const rd_kafka_CreateTopics_result_t* res = rd_kafka_event_CreateTopics_result(ev);
    size_t n = 0;
    const rd_kafka_topic_result_t** results = rd_kafka_CreateTopics_result_topics(res, &n);
    if (rd_kafka_event_error(ev)) {
      error = rd_kafka_event_error_string(ev);
    } else if (n == 1 && rd_kafka_topic_result_error(results[0]) &&
               rd_kafka_topic_result_error(results[0]) != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
      error = rd_kafka_topic_result_error_string(results[0]);
    }
    rd_kafka_event_destroy(ev);
  }
  rd_kafka_NewTopic_destroy(topic);
  rd_kafka_queue_destroy(queue);
  // Wait until the topic's partitions have leaders.
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (error.empty()) {
    rd_kafka_topic_t* t = rd_kafka_topic_new(rk, name.c_str(), nullptr);
    const rd_kafka_metadata_t* md = nullptr;
    bool ready = false;
    if (rd_kafka_metadata(rk, 0, t, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      ready = md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
              md->topics[0].partition_cnt == partitions;
      for (int i = 0; ready && i < md->topics[0].partition_cnt; ++i) {
        ready = md->topics[0].partitions[i].leader >= 0;
      }
      rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(t);
    if (ready) {
      break;
    }
    if (absl::Now() > deadline) {
      error = "topic not ready within 30 s";
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  rd_kafka_destroy(rk);
  if (!error.empty()) {
    throw std::runtime_error("creating topic " + name + ": " + error);
  }
}

std::vector<int64_t> CommittedOffsets(const std::string& group, const std::string& topic,
                                      int partitions) {
  std::string err;
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  conf->set("bootstrap.servers", KafkaBrokers(), err);
  conf->set("group.id", group, err);
  std::unique_ptr<RdKafka::KafkaConsumer> consumer(RdKafka::KafkaConsumer::create(conf.get(), err));
  if (!consumer) {
    throw std::runtime_error(err);
  }
  std::vector<RdKafka::TopicPartition*> parts;
  parts.reserve(partitions);
  for (int p = 0; p < partitions; ++p) {
    parts.push_back(RdKafka::TopicPartition::create(topic, p));
  }
  RdKafka::ErrorCode e = consumer->committed(parts, 10000);
  std::vector<int64_t> out;
  out.reserve(parts.size());
  for (auto* p : parts) {
    out.push_back(p->offset());
  }
  RdKafka::TopicPartition::destroy(parts);
  consumer->close();
  if (e != RdKafka::ERR_NO_ERROR) {
    throw std::runtime_error(RdKafka::err2str(e));
  }
  return out;
}

}  // namespace kurt::testing
