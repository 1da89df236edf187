// A Redis client (hiredis) with a small connection pool, short timeouts and a circuit breaker:
// after a failure it answers UNAVAILABLE at once for a short while instead of waiting on a dead
// server, so that callers fall back to the database quickly while Redis is down.
//
// With Sentinels (Options::sentinels) the client asks them which server is the master of
// `master_name` (SENTINEL get-master-addr-by-name, each Sentinel in turn), checks with ROLE that
// it is, and asks again after a connection error or a -READONLY answer: a failover costs the
// callers the time Sentinel takes to promote a replica, not a restart. hiredis knows nothing of
// Sentinel; this is the protocol Redis documents for Sentinel clients.
//
// Lives as long as its users; every method is thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

ABSL_DECLARE_FLAG(std::string, redis_url);
ABSL_DECLARE_FLAG(std::string, redis_sentinels);
ABSL_DECLARE_FLAG(std::string, redis_master_name);
ABSL_DECLARE_FLAG(std::string, redis_password);

struct redisContext;

namespace kurt::redis {

struct Reply {
  enum class Type { kNil, kString, kInteger, kArray, kStatus, kError };
  Type type = Type::kNil;
  std::string str;  // kString, kStatus, kError
  int64_t integer = 0;
  std::vector<Reply> elements;
};

struct Endpoint {
  std::string host;
  int port = 0;
  std::string ToString() const;
  bool operator==(const Endpoint&) const = default;
};

// "host:port,host:port" (a Sentinel list); an error names the entry that is wrong.
absl::StatusOr<std::vector<Endpoint>> ParseEndpoints(absl::string_view list);

struct Options {
  std::string host = "127.0.0.1";
  int port = 6379;
  int db = 0;
  // AUTH after connecting, to the servers and to the Sentinels. Never logged. An empty username
  // is Redis's `default` user (requirepass).
  std::string username;
  std::string password;
  // When set, the master's address comes from these Sentinels and host/port are not used.
  std::vector<Endpoint> sentinels;
  std::string master_name = "kurt";
  int max_connections = 64;  // idle connections kept; more are opened under bursts
  absl::Duration connect_timeout = absl::Milliseconds(100);
  absl::Duration command_timeout = absl::Milliseconds(200);
  // After a connection failure, calls fail fast for this long.
  absl::Duration open_circuit_for = absl::Milliseconds(500);
  // Parses redis://[[username]:password@]host:port[/db]; unknown parts are an error naming the
  // URL (with its password masked).
  static absl::StatusOr<Options> FromUrl(absl::string_view url);
  // From --redis_url, --redis_sentinels, --redis_master_name and --redis_password (which wins
  // over a password in the URL); an error names the flag.
  static absl::StatusOr<Options> FromFlags();
};

// The URL with its password replaced by "****", for messages and logs.
std::string RedactUrl(absl::string_view url);

class RedisClient {
 public:
  explicit RedisClient(Options options);
  ~RedisClient();

  // A client from the flags (Options::FromFlags), checked once (Probe): bad flags and a
  // password Redis refuses are errors, so that a binary refuses to start; Redis or its Sentinels
  // not answering is only logged (Redis down means slower, never down).
  static absl::StatusOr<std::unique_ptr<RedisClient>> FromFlags();

  // One command; an error reply becomes INTERNAL with Redis's message; no connection
  // UNAVAILABLE; a refused password UNAUTHENTICATED.
  absl::StatusOr<Reply> Command(const std::vector<std::string>& argv);

  absl::StatusOr<std::optional<std::string>> Get(absl::string_view key);
  absl::Status Set(absl::string_view key, absl::string_view value, absl::Duration ttl);
  absl::Status Del(const std::vector<std::string>& keys);

  // Connects (through the Sentinels, if any), authenticates and PINGs now, whatever the circuit
  // breaker says. UNAUTHENTICATED when a server or a Sentinel refuses the password.
  absl::Status Probe();

  // The server the client sends commands to (asks the Sentinels if it does not know).
  absl::StatusOr<Endpoint> Master();

  const Options& options() const { return options_; }

  struct ContextDeleter {
    void operator()(redisContext* c) const;
  };
  using ContextPtr = std::unique_ptr<redisContext, ContextDeleter>;
  // A connection of the caller's own to the master (through the Sentinels, if any),
  // authenticated and checked as the pool's are: for a subscription, which keeps its connection
  // to itself (Subscriber). Not pooled; failing to open one does not trip the circuit breaker.
  struct Dedicated {
    ContextPtr ctx;
    Endpoint server;
  };
  absl::StatusOr<Dedicated> OpenDedicated();

 private:
  // A connection and the master generation it was opened in: after a failover, connections
  // of an earlier generation are not reused.
  struct Connection {
    ContextPtr ctx;
    Endpoint server;
    uint64_t generation = 0;
  };

  static absl::StatusOr<ContextPtr> Connect(const Endpoint& server, const Options& options);
  // The master to connect to and the generation it belongs to.
  absl::StatusOr<std::pair<Endpoint, uint64_t>> Target();
  absl::StatusOr<Connection> Acquire();
  // A new connection to the master, authenticated; does not look at or trip the circuit.
  absl::StatusOr<Connection> Open();
  absl::StatusOr<Endpoint> AskSentinels();
  absl::StatusOr<Reply> Run(Connection& conn, const std::vector<std::string>& argv);
  void Release(Connection conn);
  // The master of `generation` failed us: forget it (the next connection asks the Sentinels)
  // and drop the idle connections to it.
  void ForgetMaster(uint64_t generation);
  bool CircuitOpen() const;
  void TripCircuit();

  const Options options_;
  std::mutex mu_;  // guards idle_
  std::vector<Connection> idle_;
  std::mutex master_mu_;  // guards master_, first_sentinel_; held while asking the Sentinels
  std::optional<Endpoint> master_;
  std::optional<Endpoint> announced_;  // the master last logged
  size_t first_sentinel_ = 0;          // the one that answered last is asked first
  std::atomic<uint64_t> generation_{1};
  std::atomic<int64_t> circuit_open_until_ns_{0};
};

}  // namespace kurt::redis
