#include "services/analytics/bot_classifier.h"

#include <algorithm>

namespace kurt::analytics {

BotClassifier::BotClassifier(const user_agent::UapRegexes* spiders, size_t max_entries)
    : spiders_(spiders), max_entries_(std::max<size_t>(1, max_entries)) {}

bool BotClassifier::Classify(absl::string_view user_agent) const {
  return user_agent::IsPreviewAgent(user_agent) ||
         (spiders_ != nullptr && spiders_->IsSpider(user_agent));
}

bool BotClassifier::IsBot(absl::string_view user_agent, bool head) {
  if (head) {
    return true;
  }
  if (auto it = index_.find(user_agent); it != index_.end()) {
    ++hits_;
    lru_.splice(lru_.begin(), lru_, it->second);
    return it->second->second;
  }
  ++misses_;
  const bool bot = Classify(user_agent);
  if (lru_.size() >= max_entries_) {
    index_.erase(lru_.back().first);
    lru_.pop_back();
  }
  lru_.emplace_front(std::string(user_agent), bot);
  index_.emplace(lru_.front().first, lru_.begin());
  return bot;
}

}  // namespace kurt::analytics
