// Live delivery to the streams of this replica: one dedicated connection LISTENs on the primary's
// `notifications` channel, to which every replica's consumer NOTIFYs (with the account id) when
// it commits new notifications. The hub wakes the subscribed streams of that account, which then
// read what is new from the table. So a client gets its events whichever replica it is connected
// to and whichever replica consumed them, and only committed rows are ever sent.
//
// A NOTIFY is only a wake-up: streams also look at the table every `fallback_poll`, and the hub
// wakes every stream after (re)connecting, so a lost connection delays events but loses none.
//
// Lives in main; Start/Stop from one thread, Subscribe and Wake from any.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "absl/time/time.h"
#include "platform/core/metrics.h"

namespace kurt::notifications {

class NotificationHub {
 public:
  // A stream's registration; unsubscribes when destroyed.
  class Subscription {
   public:
    ~Subscription();
    enum WaitResult { kWoken, kTimedOut, kStopping };
    // Waits until a wake-up for the account (since the last Wait), `timeout`, or Stop.
    WaitResult Wait(absl::Duration timeout);

   private:
    friend class NotificationHub;
    Subscription(NotificationHub* hub, std::string account) : hub_(hub), account_(std::move(account)) {}
    NotificationHub* hub_;
    const std::string account_;
    bool woken_ = false;  // guarded by hub_->mu_
  };

  // `listen_url`: the primary (empty: no LISTEN; streams rely on polling).
  NotificationHub(std::string listen_url, metrics::Registry* registry);
  ~NotificationHub();

  void Start();
  // Wakes every stream, which then ends.
  void Stop();

  std::unique_ptr<Subscription> Subscribe(const std::string& account_id);
  // Wakes the account's streams ("" wakes all).
  void Wake(const std::string& account_id);
  bool stopping() const { return stopping_; }
  int subscribers() const;

 private:
  void Loop();

  const std::string listen_url_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::multimap<std::string, Subscription*> subscriptions_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  metrics::Gauge* streams_;
  metrics::Counter* wakeups_;
};

}  // namespace kurt::notifications
