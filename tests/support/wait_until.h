// Polling for a condition in tests that watch another thread or process make progress.
// Header-only; safe from any thread (it only calls `done` on the caller's).
#pragma once

#include <functional>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace kurt::testing {

// Calls `done` every 20 ms until it returns true or `timeout` has passed; whether it did. `done`
// is called once more at the deadline, so a condition met at the last moment counts.
inline bool WaitUntil(const std::function<bool()>& done, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (done()) {
      return true;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return done();
}

}  // namespace kurt::testing
