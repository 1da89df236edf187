#include "edge/upstream_health.h"

#include <algorithm>
#include <future>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "platform/core/log.h"

namespace kurt::edge {

UpstreamHealth::UpstreamHealth(Upstreams* upstreams, metrics::Registry* registry,
                               UpstreamHealthOptions options)
    : upstreams_(upstreams), options_(options) {
  for (const auto& [service, target] : upstreams_->targets()) {
    services_.push_back(service);
  }
  states_ = std::make_unique<State[]>(services_.size());
  auto& gauges = registry->AddGauge(
      "kurt_edge_upstream_serving",
      "1 while the service's last health check found it serving (its routes answer 503 while 0)",
      {"service"});
  for (size_t i = 0; i < services_.size(); ++i) {
    states_[i].gauge = &gauges.WithLabels({services_[i]});
    states_[i].gauge->Set(1);
  }
  checks_failed_ = &registry
                        ->AddCounter("kurt_edge_upstream_health_checks_failed_total",
                                     "Health checks of upstreams that found one not serving or "
                                     "got no answer in time")
                        .Get();
  report_.assign(services_.size(), "not checked yet");
  thread_ = std::thread([this] { Run(); });
}

UpstreamHealth::~UpstreamHealth() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

int UpstreamHealth::Index(absl::string_view service) const {
  for (size_t i = 0; i < services_.size(); ++i) {
    if (services_[i] == service) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

void UpstreamHealth::CheckNow() {
  uint64_t round = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    round = ++rounds_started_;
  }
  std::promise<std::vector<Upstreams::Health>> done;
  upstreams_->CheckHealth(options_.timeout, [&done](std::vector<Upstreams::Health> results) {
    done.set_value(std::move(results));
  });
  Apply(round, done.get_future().get());
}

void UpstreamHealth::Run() {
  for (;;) {
    CheckNow();
    std::unique_lock<std::mutex> lock(mu_);
    // A round that finds a service down (this one or a CheckNow of a test) cuts the wait short.
    do {
      down_found_ = false;
      cv_.wait_for(lock, absl::ToChronoNanoseconds(NextWait()),
                   [this] { return stop_ || down_found_; });
      if (stop_) {
        return;
      }
    } while (down_found_);
  }
}

absl::Duration UpstreamHealth::NextWait() const {
  for (size_t i = 0; i < services_.size(); ++i) {
    if (!states_[i].serving.load()) {
      return std::min(options_.interval, options_.recheck_interval);
    }
  }
  return options_.interval;
}

void UpstreamHealth::Apply(uint64_t round, const std::vector<Upstreams::Health>& results) {
  std::lock_guard<std::mutex> lock(mu_);
  if (round < round_applied_) {
    return;  // a newer round has spoken
  }
  round_applied_ = round;
  for (size_t i = 0; i < results.size() && i < services_.size(); ++i) {
    const Upstreams::Health& h = results[i];
    State& state = states_[i];
    bool was = state.serving.load();
    switch (h.state) {
      case Upstreams::Health::State::kServing:
        state.serving = true;
        report_[i] = "SERVING";
        break;
      case Upstreams::Health::State::kNotServing:
        state.serving = false;
        report_[i] = absl::StrCat("NOT SERVING: ", h.problem);
        checks_failed_->Increment();
        break;
      case Upstreams::Health::State::kUnknown:
        report_[i] =
            absl::StrCat(was ? "SERVING" : "NOT SERVING", " (last check: ", h.problem, ")");
        checks_failed_->Increment();
        break;
    }
    state.gauge->Set(state.serving ? 1 : 0);
    if (was && !state.serving) {
      down_found_ = true;
      cv_.notify_all();
      KURT_LOG(kWarn, "upstream not serving: its routes answer 503", {"service", services_[i]},
               {"state", report_[i]});
    } else if (!was && state.serving) {
      KURT_LOG(kInfo, "upstream serving again", {"service", services_[i]});
    }
  }
}

std::string UpstreamHealth::Report() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  const auto& targets = upstreams_->targets();
  for (size_t i = 0; i < services_.size(); ++i) {
    absl::StrAppend(&out, services_[i], " ", ChannelTarget(targets.at(services_[i])), " ",
                    report_[i], "\n");
  }
  return out;
}

}  // namespace kurt::edge
