// Reading Prometheus text pages (GET /metrics, metrics::Registry::Render) in tests. Header-only and
// without dependencies, so that unit tests can use it too.
#pragma once

#include <string>

namespace kurt::testing {

// The value of the sample line `series value` (series: `name` or `name{labels}` exactly as
// rendered) in a Prometheus text page, summed when it appears more than once; 0 when absent.
inline double MetricValue(const std::string& page, const std::string& series) {
  double total = 0;
  size_t at = 0;
  const std::string needle = series + " ";
  while ((at = page.find(needle, at)) != std::string::npos) {
    if (at == 0 || page[at - 1] == '\n') {
      total += std::stod(page.substr(at + needle.size()));
    }
    at += needle.size();
  }
  return total;
}

}  // namespace kurt::testing
