#include "edge/edge_metrics.h"

namespace kurt::edge {

RouteStats::RouteStats(metrics::Family<metrics::Counter>& requests,
                       metrics::Family<metrics::Histogram>& latency, const std::string& route) {
  static const char* kClasses[] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
  for (int i = 0; i < 6; ++i) {
    by_class_[i] = &requests.WithLabels({route, kClasses[i]});
  }
  latency_ = &latency.WithLabels({route});
}

void RouteStats::Record(unsigned http_status, absl::Duration latency) {
  unsigned c = http_status / 100;
  by_class_[c >= 1 && c <= 5 ? c : 0]->Increment();
  latency_->ObserveDuration(latency);
}

EdgeMetrics::EdgeMetrics(metrics::Registry* registry)
    : requests_(registry->AddCounter("kurt_edge_requests_total",
                                     "HTTP requests answered, by route and status class",
                                     {"route", "status_class"})),
      latency_(registry->AddHistogram("kurt_edge_request_latency_seconds",
                                      "Time from a request's last byte to its response",
                                      {"route"})),
      upstream_errors_(registry->AddCounter(
          "kurt_edge_upstream_errors_total",
          "Upstream calls that failed with a server-side status (HTTP 5xx)", {"service"})),
      cache_hits_(&registry
                       ->AddCounter("kurt_edge_cache_hits_total",
                                    "Requests answered from the edge's response cache")
                       .Get()),
      cache_misses_(&registry
                         ->AddCounter("kurt_edge_cache_misses_total",
                                      "Cacheable requests that went to the upstream")
                         .Get()) {
  auto& drops = registry->AddCounter(
      "kurt_edge_cache_drops_total",
      "Drops from the redirect cache before expiry: entries whose redirect changed (reason "
      "changed), and clears of the whole cache when changes may have been missed (reason all)",
      {"reason"});
  cache_drops_changed_ = &drops.WithLabels({"changed"});
  cache_clears_ = &drops.WithLabels({"all"});
}

RouteStats* EdgeMetrics::Route(const std::string& label) {
  auto& slot = routes_[label];
  if (!slot) {
    slot = std::make_unique<RouteStats>(requests_, latency_, label);
  }
  return slot.get();
}

metrics::Counter& EdgeMetrics::UpstreamErrors(const std::string& service) {
  auto& slot = upstream_error_counters_[service];
  if (slot == nullptr) {
    slot = &upstream_errors_.WithLabels({service});
  }
  return *slot;
}

}  // namespace kurt::edge
