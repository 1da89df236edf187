// Test helper: what a call costs, for tests that print the figures of a path (and bound it only
// against the pathological, never as a benchmark would).
#pragma once

#include <chrono>
#include <functional>

namespace kurt::timing_testing {

// The mean wall time of `calls` calls of f(i), i from 0, in nanoseconds.
inline double NanosPerCall(int calls, const std::function<void(int)>& f) {
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < calls; ++i) {
    f(i);
  }
  return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start)
             .count() /
         calls;
}

}  // namespace kurt::timing_testing
