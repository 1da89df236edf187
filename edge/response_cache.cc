#include "edge/response_cache.h"

#include "absl/hash/hash.h"

namespace kurt::edge {

ResponseCache::ResponseCache(size_t max_entries, int shards) {
  if (max_entries == 0) {
    per_shard_ = 0;
    return;
  }
  size_t n = static_cast<size_t>(std::max(1, shards));
  if (n > max_entries) {
    n = max_entries;
  }
  per_shard_ = (max_entries + n - 1) / n;
  for (size_t i = 0; i < n; ++i) {
    shards_.push_back(std::make_unique<Shard>());
  }
}

ResponseCache::Shard& ResponseCache::ShardFor(absl::string_view key) {
  return *shards_[absl::HashOf(key) % shards_.size()];
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
    shard.lru.erase(it->second);
    shard.index.erase(it);
    return nullptr;
  }
  shard.lru.splice(shard.lru.begin(), shard.lru, it->second);
  return it->second->response;
}

void ResponseCache::Put(const std::string& key, std::shared_ptr<const CachedResponse> response,
                        absl::Time expires) {
  if (per_shard_ == 0) {
    return;
  }
  Shard& shard = ShardFor(key);
  std::lock_guard<std::mutex> lock(shard.mu);
  if (auto it = shard.index.find(key); it != shard.index.end()) {
    it->second->response = std::move(response);
    it->second->expires = expires;
    shard.lru.splice(shard.lru.begin(), shard.lru, it->second);
    return;
  }
  shard.lru.push_front(Entry{key, std::move(response), expires});
  shard.index.emplace(key, shard.lru.begin());
  while (shard.lru.size() > per_shard_) {
    shard.index.erase(shard.lru.back().key);
    shard.lru.pop_back();
  }
}

void ResponseCache::Clear() {
  for (auto& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard->mu);
    shard->index.clear();
    shard->lru.clear();
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

}  // namespace kurt::edge
