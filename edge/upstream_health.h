// The edge's view of its upstreams' health: every `interval` (`recheck_interval` while one is
// down) a grpc.health.v1 check of each service (Upstreams::CheckHealth), kept for the request path,
// published as metrics (kurt_edge_upstream_serving{service}), and told in detail on the admin
// port's /readyz. The edge's own readiness does not depend on it: a service that is down takes down
// its routes only (they answer 503 at once), never the redirects of another.
//
// Created by the Edge after its Upstreams; runs one thread of its own until destroyed. Serving
// and Report are safe from any thread; Serving is one atomic load (the request path).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "edge/upstream.h"
#include "platform/core/metrics.h"

namespace kurt::edge {

struct UpstreamHealthOptions {
  absl::Duration interval = absl::Seconds(1);
  // While some service is found not serving, checks come this often instead, so that its routes
  // serve again soon after it is back (bounded below by the channel's reconnect backoff).
  absl::Duration recheck_interval = absl::Milliseconds(200);
  absl::Duration timeout = absl::Seconds(1);
};

class UpstreamHealth {
 public:
  UpstreamHealth(Upstreams* upstreams, metrics::Registry* registry, UpstreamHealthOptions options);
  ~UpstreamHealth();

  // The index of a service for Serving, or -1 when it has no upstream.
  int Index(absl::string_view service) const;
  // False once a check found the service not serving (it answered NOT_SERVING, or no connection
  // reached it), until one finds it serving again. Not yet checked, or a check that only timed
  // out: the last state (serving at first), so that a slow check alone never refuses calls.
  bool Serving(int index) const {
    return index < 0 || states_[static_cast<size_t>(index)].serving.load(std::memory_order_relaxed);
  }
  // One line per service: its name, its target and what the last check found.
  std::string Report() const;
  // Runs one round of checks now and returns when it is done (tests). A round's findings are
  // applied only if no round that started after it has been applied already: a slow check's
  // stale answer never overwrites a newer one.
  void CheckNow();

 private:
  struct State {
    std::atomic<bool> serving{true};
    metrics::Gauge* gauge = nullptr;
  };
  void Run();
  // How long until the next round: the recheck interval while a service is not serving.
  absl::Duration NextWait() const;
  void Apply(uint64_t round, const std::vector<Upstreams::Health>& results);

  Upstreams* upstreams_;
  const UpstreamHealthOptions options_;
  std::vector<std::string> services_;  // the order of upstreams_->targets()
  std::unique_ptr<State[]> states_;
  metrics::Counter* checks_failed_ = nullptr;

  mutable std::mutex mu_;
  std::vector<std::string> report_;  // guarded by mu_: the last finding per service
  std::condition_variable cv_;
  bool stop_ = false;            // guarded by mu_
  bool down_found_ = false;      // guarded by mu_: a round found a service newly not serving
  uint64_t rounds_started_ = 0;  // guarded by mu_
  uint64_t round_applied_ = 0;   // guarded by mu_: the latest round whose findings hold
  std::thread thread_;
};

}  // namespace kurt::edge
