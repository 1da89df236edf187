// A bounded in-memory cache of whole HTTP responses (the public redirects), least recently used
// out first, each entry with its own expiry. Bounded in entries and in bytes (what an entry holds,
// its key included, plus a fixed allowance for the containers), so that however large the keys
// and answers an attacker can make, the cache stays within its budget. Sharded so that the I/O
// threads rarely meet on a lock. Lives as long as the edge; thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
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
  // The status line and `headers` as sent (Exchange::RespondPrebuilt), made once for every hit;
  // empty: sent through a header map.
  std::string head;
  // The upstream request that produced it, when its route reports cached answers (HitReporter).
  std::string request;
};

class ResponseCache {
 public:
  // max_entries 0 disables the cache; max_bytes bounds the total size (an entry larger than a
  // shard's share of it is not kept).
  explicit ResponseCache(size_t max_entries, size_t max_bytes = size_t{64} << 20, int shards = 16);

  std::shared_ptr<const CachedResponse> Get(absl::string_view key, absl::Time now);
  // With `since` (a generation() read before the upstream was asked), keeps nothing if an entry
  // was dropped in between: the answer may predate the change that dropped it.
  void Put(const std::string& key, std::shared_ptr<const CachedResponse> response,
           absl::Time expires, std::optional<uint64_t> since = std::nullopt);
  // Drops one entry (its answer changed upstream); true if there was one.
  bool Erase(absl::string_view key);
  void Clear();
  // Counts the drops (Erase, Clear).
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

  bool enabled() const { return per_shard_ > 0; }
  size_t size() const;
  // The bytes the entries account for (EntryBytes of each).
  size_t bytes() const;

  // What an entry is counted as: its key, its response's strings, and a fixed allowance for the
  // list node, the index slot, the shared_ptr's control block and the CachedResponse itself.
  static size_t EntryBytes(absl::string_view key, const CachedResponse& response);

 private:
  struct Entry {
    std::string key;
    std::shared_ptr<const CachedResponse> response;
    absl::Time expires;
    size_t bytes = 0;
  };
  struct Shard {
    mutable std::mutex mu;
    std::list<Entry> lru;  // front: most recently used
    absl::flat_hash_map<std::string, std::list<Entry>::iterator> index;
    size_t bytes = 0;
  };
  Shard& ShardFor(absl::string_view key);
  static void Erase(Shard& shard, std::list<Entry>::iterator it);

  size_t per_shard_;
  size_t bytes_per_shard_ = 0;
  std::atomic<uint64_t> generation_{0};
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace kurt::edge
