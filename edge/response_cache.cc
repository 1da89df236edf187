#include "edge/response_cache.h"

#include <algorithm>

#include "absl/hash/hash.h"

namespace kurt::edge {

ResponseCache::ResponseCache(size_t max_entries, size_t max_bytes, int shards) {
  if (max_entries == 0 || max_bytes == 0) {
    per_shard_ = 0;
    return;
  }
  size_t n = static_cast<size_t>(std::max(1, shards));
  if (n > max_entries) {
    n = max_entries;
  }
  per_shard_ = (max_entries + n - 1) / n;
  bytes_per_shard_ = std::max<size_t>(1, max_bytes / n);
  for (size_t i = 0; i < n; ++i) {
    shards_.push_back(std::make_unique<Shard>());
  }
}

size_t ResponseCache::EntryBytes(absl::string_view key, const CachedResponse& response) {
  // Two copies of the key (the entry's and the index's), the strings, and ~256 bytes of
  // allocations around them.
  size_t n =
      2 * key.size() + response.body.size() + response.request.size() + response.head.size() + 256;
  for (const auto& [name, value] : response.headers) {
    n += name.size() + value.size() + 64;
  }
  return n;
}

ResponseCache::Shard& ResponseCache::ShardFor(absl::string_view key) {
  return *shards_[absl::HashOf(key) % shards_.size()];
}

void ResponseCache::Erase(Shard& shard, std::list<Entry>::iterator it) {
  shard.bytes -= it->bytes;
  shard.index.erase(it->key);
  shard.lru.erase(it);
}

std::shared_ptr<const CachedResponse> ResponseCache::Get(absl::string_view key, absl::Time now) {
  if (per_shard_ == 0) {
    return nullptr;
  }
  Shard& shard = ShardFor(key);
  std::lock_guard<std::mutex> lock(shard.mu);
  auto it = shard.index.find(key);
  if (it == shard.index.end()) {
    return nullptr;
  }
  if (it->second->expires <= now) {
    Erase(shard, it->second);
    return nullptr;
  }
  shard.lru.splice(shard.lru.begin(), shard.lru, it->second);
  return it->second->response;
}

void ResponseCache::Put(const std::string& key, std::shared_ptr<const CachedResponse> response,
                        absl::Time expires, std::optional<uint64_t> since) {
  if (per_shard_ == 0) {
    return;
  }
  size_t bytes = EntryBytes(key, *response);
  Shard& shard = ShardFor(key);
  std::lock_guard<std::mutex> lock(shard.mu);
  // Erase bumps the generation under the same shard's lock, Clear before it takes any: a drop
  // of this key either shows here or comes after this entry is in.
  if (since && *since != generation()) {
    return;
  }
  if (auto it = shard.index.find(key); it != shard.index.end()) {
    Erase(shard, it->second);
  }
  if (bytes > bytes_per_shard_) {
    return;  // would push out everything else
  }
  shard.lru.push_front(Entry{key, std::move(response), expires, bytes});
  shard.index.emplace(key, shard.lru.begin());
  shard.bytes += bytes;
  while (shard.lru.size() > per_shard_ || shard.bytes > bytes_per_shard_) {
    Erase(shard, std::prev(shard.lru.end()));
  }
}

bool ResponseCache::Erase(absl::string_view key) {
  if (per_shard_ == 0) {
    return false;
  }
  Shard& shard = ShardFor(key);
  std::lock_guard<std::mutex> lock(shard.mu);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  auto it = shard.index.find(key);
  if (it == shard.index.end()) {
    return false;
  }
  Erase(shard, it->second);
  return true;
}

void ResponseCache::Clear() {
  generation_.fetch_add(1, std::memory_order_acq_rel);
  for (auto& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard->mu);
    shard->index.clear();
    shard->lru.clear();
    shard->bytes = 0;
  }
}

size_t ResponseCache::size() const {
  size_t n = 0;
  for (const auto& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard->mu);
    n += shard->lru.size();
  }
  return n;
}

size_t ResponseCache::bytes() const {
  size_t n = 0;
  for (const auto& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard->mu);
    n += shard->bytes;
  }
  return n;
}

}  // namespace kurt::edge
