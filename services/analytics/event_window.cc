#include "services/analytics/event_window.h"

#include <algorithm>

#include "absl/hash/hash.h"

namespace kurt::analytics {

EventWindow::Key EventWindow::KeyOf(absl::string_view code, absl::string_view event_id) {
  // Two independent 64-bit hashes of the pair (absl's, seeded differently).
  const uint64_t high = absl::HashOf(code, event_id);
  const uint64_t low = absl::HashOf(event_id, code, uint64_t{0x9e3779b97f4a7c15});
  return absl::MakeUint128(high, low);
}

void EventWindow::Seed(absl::Time floor, const std::vector<ClickKey>& stored,
                       int64_t stored_offset) {
  ids_.clear();
  order_.clear();
  seeded_ = true;
  next_offset_ = stored_offset;
  floor_ = floor;
  newest_ = floor + options_.span;
  for (const ClickKey& c : stored) {
    Add(KeyOf(c.code, c.event_id), c.time);
  }
}

void EventWindow::Commit(const std::vector<std::pair<Key, absl::Time>>& stored,
                         int64_t next_offset) {
  next_offset_ = next_offset;
  absl::Time newest = newest_;
  for (const auto& [key, time] : stored) {
    if (time >= floor_) {
      Add(key, time);
      newest = std::max(newest, time);
    }
  }
  Advance(newest);
}

void EventWindow::Add(Key key, absl::Time time) {
  if (ids_.insert(key).second) {
    order_.emplace_back(time, key);
  }
}

void EventWindow::Advance(absl::Time newest) {
  newest_ = newest;
  floor_ = std::max(floor_, newest_ - options_.span);
  // Only from the front: a click at or after the floor never leaves (one added out of time order
  // may stay a little longer than it must).
  while (!order_.empty() && order_.front().first < floor_) {
    ids_.erase(order_.front().second);
    order_.pop_front();
  }
}

}  // namespace kurt::analytics
