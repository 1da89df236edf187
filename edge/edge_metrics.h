// The edge's Prometheus metrics. Children are looked up once at start, so that recording a
// request touches only atomics. Lives as long as the Edge; thread-safe.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "platform/core/metrics.h"

namespace kurt::edge {

class RouteStats {
 public:
  RouteStats(metrics::Family<metrics::Counter>& requests,
             metrics::Family<metrics::Histogram>& latency, const std::string& route);
  void Record(unsigned http_status, absl::Duration latency);

 private:
  std::array<metrics::Counter*, 6> by_class_;  // 0: other, 1: 1xx ... 5: 5xx
  metrics::Histogram* latency_;
};

class EdgeMetrics {
 public:
  explicit EdgeMetrics(metrics::Registry* registry);

  // Created at start for each label ("kurt.links.v1.LinksService.GetLink", "healthz", ...).
  RouteStats* Route(const std::string& label);
  metrics::Counter& cache_hits() { return *cache_hits_; }
  metrics::Counter& cache_misses() { return *cache_misses_; }
  // Entries dropped because their redirect changed; whole-cache drops (changes maybe missed).
  metrics::Counter& cache_drops_changed() { return *cache_drops_changed_; }
  metrics::Counter& cache_clears() { return *cache_clears_; }
  metrics::Counter& UpstreamErrors(const std::string& service);

 private:
  metrics::Family<metrics::Counter>& requests_;
  metrics::Family<metrics::Histogram>& latency_;
  metrics::Family<metrics::Counter>& upstream_errors_;
  metrics::Counter* cache_hits_;
  metrics::Counter* cache_misses_;
  metrics::Counter* cache_drops_changed_;
  metrics::Counter* cache_clears_;
  absl::flat_hash_map<std::string, std::unique_ptr<RouteStats>> routes_;
  absl::flat_hash_map<std::string, metrics::Counter*> upstream_error_counters_;
};

}  // namespace kurt::edge
