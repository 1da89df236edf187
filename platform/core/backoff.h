// Delays between attempts to reconnect: `initial`, doubling with each failure up to `max`; Reset
// after a success. Not thread-safe (one connecting thread uses it).
#pragma once

#include <algorithm>

#include "absl/time/time.h"

namespace kurt::platform {

class ReconnectBackoff {
 public:
  ReconnectBackoff(absl::Duration initial, absl::Duration max) : initial_(initial), max_(max) {}
  // The delay before the next attempt.
  absl::Duration Next() {
    next_ = next_ == absl::ZeroDuration() ? initial_ : std::min(next_ * 2, max_);
    return next_;
  }
  void Reset() { next_ = absl::ZeroDuration(); }

 private:
  const absl::Duration initial_;
  const absl::Duration max_;
  absl::Duration next_ = absl::ZeroDuration();
};

}  // namespace kurt::platform
