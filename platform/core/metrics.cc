#include "platform/core/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "absl/strings/str_cat.h"

namespace kurt::metrics {
namespace {

void AtomicAdd(std::atomic<double>& a, double by) {
  double old = a.load(std::memory_order_relaxed);
  while (!a.compare_exchange_weak(old, old + by, std::memory_order_relaxed)) {
  }
}

std::string FormatValue(double v) {
  if (std::isinf(v)) {
    return v > 0 ? "+Inf" : "-Inf";
  }
  if (std::isnan(v)) {
    return "NaN";
  }
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    return absl::StrCat(static_cast<int64_t>(v));
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.9g", v);
  return buf;
}

void AppendEscapedLabel(std::string* out, absl::string_view v) {
  for (char c : v) {
    if (c == '\\') {
      out->append("\\\\");
    } else if (c == '"') {
      out->append("\\\"");
    } else if (c == '\n') {
      out->append("\\n");
    } else {
      out->push_back(c);
    }
  }
}

// {a="x",b="y"} plus an optional extra label (le for buckets).
std::string Labels(const std::vector<std::string>& names, const std::vector<std::string>& values,
                   absl::string_view extra_name = {}, absl::string_view extra_value = {}) {
  if (names.empty() && extra_name.empty()) {
    return "";
  }
  std::string out = "{";
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) {
      out.push_back(',');
    }
    absl::StrAppend(&out, names[i], "=\"");
    AppendEscapedLabel(&out, values[i]);
    out.push_back('"');
  }
  if (!extra_name.empty()) {
    if (!names.empty()) {
      out.push_back(',');
    }
    absl::StrAppend(&out, extra_name, "=\"", extra_value, "\"");
  }
  out.push_back('}');
  return out;
}

template <typename T>
std::unique_ptr<T> MakeChild(const std::vector<double>*) {
  return std::make_unique<T>();
}
template <>
std::unique_ptr<Histogram> MakeChild<Histogram>(const std::vector<double>* bounds) {
  return std::make_unique<Histogram>(bounds);
}

template <typename T>
const char* TypeName();
template <>
const char* TypeName<Counter>() {
  return "counter";
}
template <>
const char* TypeName<Gauge>() {
  return "gauge";
}
template <>
const char* TypeName<Histogram>() {
  return "histogram";
}

void RenderChild(std::string* out, const std::string& name, const std::vector<std::string>& names,
                 const std::vector<std::string>& values, const Counter& c,
                 const std::vector<double>&) {
  absl::StrAppend(out, name, Labels(names, values), " ", FormatValue(c.Value()), "\n");
}
void RenderChild(std::string* out, const std::string& name, const std::vector<std::string>& names,
                 const std::vector<std::string>& values, const Gauge& g,
                 const std::vector<double>&) {
  absl::StrAppend(out, name, Labels(names, values), " ", FormatValue(g.Value()), "\n");
}
void RenderChild(std::string* out, const std::string& name, const std::vector<std::string>& names,
                 const std::vector<std::string>& values, const Histogram& h,
                 const std::vector<double>& bounds) {
  std::vector<uint64_t> counts = h.CumulativeCounts();
  for (size_t i = 0; i < counts.size(); ++i) {
    std::string le = i < bounds.size() ? FormatValue(bounds[i]) : "+Inf";
    absl::StrAppend(out, name, "_bucket", Labels(names, values, "le", le), " ", counts[i], "\n");
  }
  absl::StrAppend(out, name, "_sum", Labels(names, values), " ", FormatValue(h.Sum()), "\n");
  absl::StrAppend(out, name, "_count", Labels(names, values), " ", counts.back(), "\n");
}

}  // namespace

void Counter::Increment(double by) { AtomicAdd(value_, by); }
void Gauge::Add(double by) { AtomicAdd(value_, by); }

Histogram::Histogram(const std::vector<double>* bounds)
    : bounds_(bounds), buckets_(new std::atomic<uint64_t>[bounds->size() + 1]) {
  for (size_t i = 0; i <= bounds_->size(); ++i) {
    buckets_[i] = 0;
  }
}

void Histogram::Observe(double value) {
  size_t i = std::lower_bound(bounds_->begin(), bounds_->end(), value) - bounds_->begin();
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  AtomicAdd(sum_, value);
  count_.fetch_add(1, std::memory_order_relaxed);
}

std::vector<uint64_t> Histogram::CumulativeCounts() const {
  std::vector<uint64_t> out(bounds_->size() + 1);
  uint64_t total = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    total += buckets_[i].load(std::memory_order_relaxed);
    out[i] = total;
  }
  return out;
}

const std::vector<double>& LatencyBuckets() {
  static const auto* buckets =
      new std::vector<double>{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                              0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
  return *buckets;
}

template <typename T>
Family<T>::Family(std::string name, std::string help, std::vector<std::string> label_names,
                  std::vector<double> bounds)
    : name_(std::move(name)),
      help_(std::move(help)),
      label_names_(std::move(label_names)),
      bounds_(std::move(bounds)) {}

template <typename T>
T& Family<T>::WithLabels(const std::vector<std::string>& values) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = children_.find(values);
  if (it == children_.end()) {
    if (values.size() != label_names_.size()) {
      std::fprintf(stderr, "metric %s: %zu label values for %zu labels\n", name_.c_str(),
                   values.size(), label_names_.size());
      std::abort();
    }
    it = children_.emplace(values, MakeChild<T>(&bounds_)).first;
  }
  return *it->second;
}

template <typename T>
void Family<T>::Render(std::string* out) const {
  absl::StrAppend(out, "# HELP ", name_, " ", help_, "\n# TYPE ", name_, " ", TypeName<T>(), "\n");
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [values, child] : children_) {
    RenderChild(out, name_, label_names_, values, *child, bounds_);
  }
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

Family<Counter>& Registry::AddCounter(std::string name, std::string help,
                                      std::vector<std::string> labels) {
  std::lock_guard<std::mutex> lock(mu_);
  counters_.push_back(
      std::make_unique<Family<Counter>>(std::move(name), std::move(help), std::move(labels)));
  return *counters_.back();
}

Family<Gauge>& Registry::AddGauge(std::string name, std::string help,
                                  std::vector<std::string> labels) {
  std::lock_guard<std::mutex> lock(mu_);
  gauges_.push_back(
      std::make_unique<Family<Gauge>>(std::move(name), std::move(help), std::move(labels)));
  return *gauges_.back();
}

Family<Histogram>& Registry::AddHistogram(std::string name, std::string help,
                                          std::vector<std::string> labels,
                                          std::vector<double> bounds) {
  std::sort(bounds.begin(), bounds.end());
  std::lock_guard<std::mutex> lock(mu_);
  histograms_.push_back(std::make_unique<Family<Histogram>>(std::move(name), std::move(help),
                                                            std::move(labels), std::move(bounds)));
  return *histograms_.back();
}

std::string Registry::Render() const {
  std::string out;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& f : counters_) {
    f->Render(&out);
  }
  for (const auto& f : gauges_) {
    f->Render(&out);
  }
  for (const auto& f : histograms_) {
    f->Render(&out);
  }
  return out;
}

}  // namespace kurt::metrics
