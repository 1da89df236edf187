// Many callers' GETs sent to Redis as one MGET, so that a busy service makes one round trip (and
// its few system calls) per batch rather than per key, and no caller's thread waits on Redis.
//
// A caller hands over a key and a callback and goes on. The batcher's one thread sends what was
// handed to it since its last MGET as the next one (at most max_batch keys), and calls each
// callback with its key's value from that thread. Under load a batch gathers while the one
// before is on its way; a lone GET goes at once. Failures are RedisClient::Command's, for the
// whole batch (UNAVAILABLE while Redis is down or its circuit is open).
//
// Lives as long as its callers; Get is called from any thread. Callbacks run on the batcher's
// thread, one after the other, and hold up the next batch while they run: slow work (a database
// read) belongs on a thread of its own.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "platform/redis/redis.h"

namespace kurt::redis {

class GetBatcher {
 public:
  // The value of the key (nullopt: none), or why Redis did not say.
  using Done = std::function<void(absl::StatusOr<std::optional<std::string>>)>;

  // `redis` outlives the batcher.
  explicit GetBatcher(RedisClient* redis, size_t max_batch = 512);
  // Answers what is still waiting (UNAVAILABLE) and stops the thread.
  ~GetBatcher();
  GetBatcher(const GetBatcher&) = delete;
  GetBatcher& operator=(const GetBatcher&) = delete;

  void Get(std::string key, Done done);

 private:
  struct Waiting {
    std::string key;
    Done done;
  };
  void Run();
  void Send(std::vector<Waiting>& batch);

  RedisClient* const redis_;
  const size_t max_batch_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::vector<Waiting> waiting_;
  bool sending_ = false;  // the thread is busy with a batch: it looks again before it sleeps
  bool stop_ = false;
  std::thread thread_;  // last: it reads the members above
};

}  // namespace kurt::redis
