// An in-memory LinkCache for unit tests (resolver_test, links_rpcs_test): what Redis would hold,
// with a switch that makes it fail as Redis down does. Thread-safe; lives as long as the test.
#pragma once

#include <atomic>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "services/links/link_cache.h"

namespace kurt::links {

class FakeLinkCache : public LinkCache {
 public:
  absl::StatusOr<std::optional<CachedLink>> Get(const std::string& code) override {
    std::lock_guard<std::mutex> lock(mu);
    ++gets;
    if (down) {
      return absl::UnavailableError("redis down");
    }
    auto it = entries.find(code);
    if (it == entries.end()) {
      return std::optional<CachedLink>();
    }
    return std::optional<CachedLink>(it->second);
  }
  void Fill(const std::string& code, const CachedLink& link) override {
    std::lock_guard<std::mutex> lock(mu);
    if (!down) {
      entries.emplace(code, link);
    }
  }
  void Put(const std::string& code, const CachedLink& link, bool announce) override {
    std::lock_guard<std::mutex> lock(mu);
    if (!down) {
      entries[code] = link;
      if (announce) {
        announced.push_back(code);
      }
    }
  }

  std::mutex mu;
  std::map<std::string, CachedLink> entries;
  std::vector<std::string> announced;  // codes of updates and deletes, in order
  bool down = false;
  std::atomic<int> gets{0};
};

}  // namespace kurt::links
