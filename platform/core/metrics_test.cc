#include "platform/core/metrics.h"

#include "gtest/gtest.h"

namespace kurt::metrics {
namespace {

TEST(MetricsTest, RendersCountersWithLabelsInTextFormat) {
  Registry r;
  auto& requests = r.AddCounter("kurt_test_requests_total", "Requests.", {"method", "code"});
  requests.WithLabels({"Get", "OK"}).Increment();
  requests.WithLabels({"Get", "OK"}).Increment(2);
  requests.WithLabels({"Get", "NOT_FOUND"}).Increment();
  std::string text = r.Render();
  EXPECT_NE(text.find("# TYPE kurt_test_requests_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("kurt_test_requests_total{method=\"Get\",code=\"OK\"} 3\n"),
            std::string::npos);
  EXPECT_NE(text.find("kurt_test_requests_total{method=\"Get\",code=\"NOT_FOUND\"} 1\n"),
            std::string::npos);
}

TEST(MetricsTest, HistogramBucketsAreCumulative) {
  Registry r;
  auto& h = r.AddHistogram("kurt_test_latency_seconds", "Latency.", {}, {0.1, 1});
  h.Get().Observe(0.05);
  h.Get().Observe(0.5);
  h.Get().Observe(0.5);
  h.Get().Observe(5);
  std::string text = r.Render();
  EXPECT_NE(text.find("kurt_test_latency_seconds_bucket{le=\"0.1\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("kurt_test_latency_seconds_bucket{le=\"1\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("kurt_test_latency_seconds_bucket{le=\"+Inf\"} 4\n"), std::string::npos);
  EXPECT_NE(text.find("kurt_test_latency_seconds_count 4\n"), std::string::npos);
  EXPECT_NE(text.find("kurt_test_latency_seconds_sum 6.05\n"), std::string::npos);
}

TEST(MetricsTest, LabelValuesAreEscaped) {
  Registry r;
  r.AddGauge("kurt_test_gauge", "G.", {"v"}).WithLabels({"a\"b\\c"}).Set(1.5);
  EXPECT_NE(r.Render().find(R"(kurt_test_gauge{v="a\"b\\c"} 1.5)"), std::string::npos);
}

}  // namespace
}  // namespace kurt::metrics
