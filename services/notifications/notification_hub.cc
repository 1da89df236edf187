#include "services/notifications/notification_hub.h"

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
  if (hub_->stopping_) {
    return kStopping;
  }
  bool woken = woken_;
  woken_ = false;
  return woken ? kWoken : kTimedOut;
}

NotificationHub::NotificationHub(std::string listen_url, metrics::Registry* registry)
    : streams_(&registry
                    ->AddGauge("kurt_notifications_streams",
                               "Live notification streams open on this replica")
                    .Get()),
      wakeups_(
          &registry
               ->AddCounter("kurt_notifications_wakeups_total", "NOTIFYs received from the primary")
               .Get()) {
  if (listen_url.empty()) {
    return;
  }
  pg::ListenerOptions options;
  options.url = std::move(listen_url);
  options.channels = {kNotifyChannel};
  options.name = "notifications";
  listener_ = std::make_unique<pg::Listener>(
      options,
      [this](absl::string_view, absl::string_view account) {
        wakeups_->Increment();
        Wake(std::string{account});
      },
      // Anything committed while nobody listened is picked up by a look at the table.
      [this] { Wake(""); }, registry);
}

NotificationHub::~NotificationHub() { Stop(); }

void NotificationHub::Start() {
  if (listener_) {
    listener_->Start();
  }
}

void NotificationHub::Stop() {
  if (listener_) {
    listener_->Stop();
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
}

std::unique_ptr<NotificationHub::Subscription> NotificationHub::Subscribe(
    const std::string& account_id, int max_per_account) {
  std::unique_ptr<Subscription> s(new Subscription(this, account_id));
  std::lock_guard<std::mutex> lock(mu_);
  if (max_per_account > 0 &&
      subscriptions_.count(account_id) >= static_cast<size_t>(max_per_account)) {
    return nullptr;
  }
  subscriptions_.emplace(account_id, s.get());
  streams_->Set(static_cast<double>(subscriptions_.size()));
  return s;
}

void NotificationHub::Wake(const std::string& account_id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (account_id.empty()) {
      for (auto& [account, s] : subscriptions_) {
        s->woken_ = true;
      }
    } else {
      auto range = subscriptions_.equal_range(account_id);
      for (auto it = range.first; it != range.second; ++it) {
        it->second->woken_ = true;
      }
    }
  }
  cv_.notify_all();
}

int NotificationHub::subscribers() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(subscriptions_.size());
}

}  // namespace kurt::notifications
