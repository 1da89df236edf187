#include "services/notifications/notification_hub.h"

#include "absl/time/clock.h"
#include "platform/core/log.h"
#include "pqxx/pqxx"
#include "services/notifications/notification_store.h"

namespace kurt::notifications {

NotificationHub::Subscription::~Subscription() {
  std::lock_guard<std::mutex> lock(hub_->mu_);
  auto range = hub_->subscriptions_.equal_range(account_);
  for (auto it = range.first; it != range.second; ++it) {
    if (it->second == this) {
      hub_->subscriptions_.erase(it);
      break;
    }
  }
  hub_->streams_->Set(static_cast<double>(hub_->subscriptions_.size()));
}

NotificationHub::Subscription::WaitResult NotificationHub::Subscription::Wait(
    absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(hub_->mu_);
  hub_->cv_.wait_for(lock, absl::ToChronoMilliseconds(timeout),
                     [&] { return woken_ || hub_->stopping_.load(); });
  if (hub_->stopping_) return kStopping;
  bool woken = woken_;
  woken_ = false;
  return woken ? kWoken : kTimedOut;
}

NotificationHub::NotificationHub(std::string listen_url, metrics::Registry* registry)
    : listen_url_(std::move(listen_url)),
      streams_(&registry
                    ->AddGauge("kurt_notifications_streams",
                               "Live notification streams open on this replica")
                    .Get()),
      wakeups_(&registry
                    ->AddCounter("kurt_notifications_wakeups_total",
                                 "NOTIFYs received from the primary")
                    .Get()) {}

NotificationHub::~NotificationHub() { Stop(); }

void NotificationHub::Start() {
  if (listen_url_.empty()) return;
  thread_ = std::thread([this] { Loop(); });
}

void NotificationHub::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::unique_ptr<NotificationHub::Subscription> NotificationHub::Subscribe(
    const std::string& account_id) {
  std::unique_ptr<Subscription> s(new Subscription(this, account_id));
  std::lock_guard<std::mutex> lock(mu_);
  subscriptions_.emplace(account_id, s.get());
  streams_->Set(static_cast<double>(subscriptions_.size()));
  return s;
}

void NotificationHub::Wake(const std::string& account_id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (account_id.empty()) {
      for (auto& [account, s] : subscriptions_) s->woken_ = true;
    } else {
      auto range = subscriptions_.equal_range(account_id);
      for (auto it = range.first; it != range.second; ++it) it->second->woken_ = true;
    }
  }
  cv_.notify_all();
}

int NotificationHub::subscribers() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(subscriptions_.size());
}

namespace {

class Receiver : public pqxx::notification_receiver {
 public:
  Receiver(pqxx::connection_base& c, NotificationHub* hub, metrics::Counter* wakeups)
      : pqxx::notification_receiver(c, kNotifyChannel), hub_(hub), wakeups_(wakeups) {}
  void operator()(const std::string& payload, int) override {
    wakeups_->Increment();
    hub_->Wake(payload);
  }

 private:
  NotificationHub* hub_;
  metrics::Counter* wakeups_;
};

}  // namespace

void NotificationHub::Loop() {
  absl::Duration backoff = absl::Milliseconds(200);
  while (!stopping_) {
    try {
      pqxx::connection conn(listen_url_);
      Receiver receiver(conn, this, wakeups_);
      KURT_LOG(kInfo, "listening for new notifications", {"channel", kNotifyChannel});
      backoff = absl::Milliseconds(200);
      // Anything committed while nobody listened is picked up by a look at the table.
      Wake("");
      while (!stopping_) conn.await_notification(0, 200000);
    } catch (const std::exception& e) {
      KURT_LOG(kWarn, "LISTEN connection lost; streams poll meanwhile", {"error", e.what()});
      Wake("");
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, absl::ToChronoMilliseconds(backoff), [&] { return stopping_.load(); });
      backoff = std::min(backoff * 2, absl::Seconds(5));
    }
  }
}

}  // namespace kurt::notifications
