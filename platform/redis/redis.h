// A Redis client (hiredis) with a small connection pool, short timeouts and a circuit breaker:
// after a failure it answers UNAVAILABLE at once for a short while instead of waiting on a dead
// server, so that callers fall back to the database quickly while Redis is down.
//
// Lives as long as its users; every method is thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

ABSL_DECLARE_FLAG(std::string, redis_url);

struct redisContext;

namespace kurt::redis {

struct Reply {
  enum class Type { kNil, kString, kInteger, kArray, kStatus, kError };
  Type type = Type::kNil;
  std::string str;  // kString, kStatus, kError
  int64_t integer = 0;
  std::vector<Reply> elements;
};

struct Options {
  std::string host = "127.0.0.1";
  int port = 6379;
  int db = 0;
  int max_connections = 64;  // idle connections kept; more are opened under bursts
  absl::Duration connect_timeout = absl::Milliseconds(100);
  absl::Duration command_timeout = absl::Milliseconds(200);
  // After a connection failure, calls fail fast for this long.
  absl::Duration open_circuit_for = absl::Milliseconds(500);
  // Parses redis://host:port[/db]; unknown parts are an error naming the URL.
  static absl::StatusOr<Options> FromUrl(absl::string_view url);
};

class RedisClient {
 public:
  explicit RedisClient(Options options);
  ~RedisClient();

  // One command; an error reply becomes INTERNAL with Redis's message; no connection
  // UNAVAILABLE.
  absl::StatusOr<Reply> Command(const std::vector<std::string>& argv);

  absl::StatusOr<std::optional<std::string>> Get(absl::string_view key);
  absl::Status Set(absl::string_view key, absl::string_view value, absl::Duration ttl);
  absl::Status Del(const std::vector<std::string>& keys);

  const Options& options() const { return options_; }

 private:
  struct ContextDeleter {
    void operator()(redisContext* c) const;
  };
  using ContextPtr = std::unique_ptr<redisContext, ContextDeleter>;

  absl::StatusOr<ContextPtr> Acquire();
  void Release(ContextPtr ctx);
  bool CircuitOpen() const;
  void TripCircuit();

  const Options options_;
  std::mutex mu_;
  std::vector<ContextPtr> idle_;
  std::atomic<int64_t> circuit_open_until_ns_{0};
};

}  // namespace kurt::redis
