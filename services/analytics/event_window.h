// The ids of the clicks a consumer stored lately in one partition, so that a second event of the
// same click (links sent it again: the edge's retry on another replica, a proxy's retry through
// another edge, a batch of cached hits reported again) counts once without a lookup per click.
//
// A click is known by its code and event id (the edge's click id). The window holds every stored
// click of the partition whose time is at or after its floor, which follows the newest click by
// `span`. A click older than the floor plus `margin` (the most two events of one click differ in
// time: a retried resolve stamps its own) is not decided here: the caller looks it up in the
// database. Such clicks are rare (cached hits held while links was down).
//
// The window is exact only while this consumer alone writes the partition: it is seeded from the
// database when the consumer takes the partition, and again whenever the partition's stored
// offset is not the one its last commit left (another consumer wrote it in between, or a commit
// whose outcome was unknown). Used by one thread at a time.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/numeric/int128.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace kurt::analytics {

// A stored click, as the window is seeded with and the database is asked about.
struct ClickKey {
  std::string code;
  std::string event_id;
  absl::Time time;
};

struct EventWindowOptions {
  absl::Duration span = absl::Minutes(2);
  absl::Duration margin = absl::Minutes(1);
};

class EventWindow {
 public:
  // 128 bits of the code and the event id: no two clicks of a partition's window share one.
  using Key = absl::uint128;
  static Key KeyOf(absl::string_view code, absl::string_view event_id);

  explicit EventWindow(EventWindowOptions options = {}) : options_(options) {}

  // Whether the window is seeded and the partition's stored offset is the one its last commit
  // left.
  bool Fresh(int64_t stored_offset) const { return seeded_ && stored_offset == next_offset_; }
  // Starts over from the partition's stored clicks at or after `floor`, its stored offset being
  // `stored_offset`.
  void Seed(absl::Time floor, const std::vector<ClickKey>& stored, int64_t stored_offset);
  // Whether a click at `time` is decided by Contains (false: look it up in the database).
  bool Covers(absl::Time time) const { return seeded_ && time >= floor_ + options_.margin; }
  bool Contains(Key key) const { return ids_.contains(key); }
  // After a commit: the clicks it stored and the partition's next offset.
  void Commit(const std::vector<std::pair<Key, absl::Time>>& stored, int64_t next_offset);

  size_t size() const { return ids_.size(); }
  absl::Time floor() const { return floor_; }

 private:
  void Add(Key key, absl::Time time);
  void Advance(absl::Time newest);

  const EventWindowOptions options_;
  bool seeded_ = false;
  int64_t next_offset_ = -1;
  absl::Time floor_ = absl::InfinitePast();
  absl::Time newest_ = absl::InfinitePast();
  absl::flat_hash_set<Key> ids_;
  // In the order added; those before the floor leave from the front.
  std::deque<std::pair<absl::Time, Key>> order_;
};

}  // namespace kurt::analytics
