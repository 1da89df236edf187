// A bounded in-memory cache of whole HTTP responses (the public redirects), least recently used
// out first, each entry with its own expiry. Sharded so that the I/O threads rarely meet on a
// lock. Lives as long as the edge; thread-safe.
#pragma once

#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace kurt::edge {

struct CachedResponse {
  unsigned status = 200;
  int route_id = -1;  // for metrics
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // The upstream request that produced it, when its route reports cached answers (HitReporter).
  std::string request;
};

class ResponseCache {
 public:
  // max_entries 0 disables the cache.
  explicit ResponseCache(size_t max_entries, int shards = 16);

  std::shared_ptr<const CachedResponse> Get(absl::string_view key, absl::Time now);
  void Put(const std::string& key, std::shared_ptr<const CachedResponse> response,
           absl::Time expires);
  void Clear();

  bool enabled() const { return per_shard_ > 0; }
  size_t size() const;

 private:
  struct Entry {
    std::string key;
    std::shared_ptr<const CachedResponse> response;
    absl::Time expires;
  };
  struct Shard {
    mutable std::mutex mu;
    std::list<Entry> lru;  // front: most recently used
    absl::flat_hash_map<std::string, std::list<Entry>::iterator> index;
  };
  Shard& ShardFor(absl::string_view key);

  size_t per_shard_;
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace kurt::edge
