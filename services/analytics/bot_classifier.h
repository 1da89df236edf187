// Tells the clicks of crawlers and link-preview fetchers from people's: a click is a bot's when
// its request was a HEAD, when its User-Agent names a known link-preview fetcher
// (user_agent::kPreviewAgents), or when uap-core's device parsers (services/common/user_agent.h)
// call its device a "Spider". Analytics classifies each click once, as it consumes it; the
// redirect never waits for this.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "services/common/user_agent.h"

namespace kurt::analytics {

// Whether a click is a bot's, remembering the answer of each User-Agent it saw last (a bounded
// LRU: the same few thousand agents make most of the traffic, and a uap-core miss costs a walk
// over hundreds of regexes). Lives as long as its owner; used by one thread at a time.
class BotClassifier {
 public:
  // `spiders` (null: uap-core is not consulted) outlives the classifier.
  explicit BotClassifier(const user_agent::UapRegexes* spiders, size_t max_entries = 20000);
  // A copy's index would point into the original's list; a move keeps the list's nodes.
  BotClassifier(const BotClassifier&) = delete;
  BotClassifier& operator=(const BotClassifier&) = delete;
  BotClassifier(BotClassifier&&) = default;
  BotClassifier& operator=(BotClassifier&&) = default;

  // A HEAD request is a bot's whatever its agent says.
  bool IsBot(absl::string_view user_agent, bool head);

  int64_t hits() const { return hits_; }
  int64_t misses() const { return misses_; }

 private:
  bool Classify(absl::string_view user_agent) const;

  const user_agent::UapRegexes* spiders_;
  const size_t max_entries_;
  // Most recently used first; index_'s keys point into these strings (list nodes do not move).
  std::list<std::pair<std::string, bool>> lru_;
  absl::flat_hash_map<absl::string_view, std::list<std::pair<std::string, bool>>::iterator> index_;
  int64_t hits_ = 0;
  int64_t misses_ = 0;
};

}  // namespace kurt::analytics
