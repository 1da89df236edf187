// Live delivery to the streams of this replica: a pg::Listener LISTENs on the primary's
// `notifications` channel, to which every replica's consumer NOTIFYs (with the account id) when
// it commits new notifications. The hub wakes the subscribed streams of that account, which then
// read what is new from the table. So a client gets its events whichever replica it is connected
// to and whichever replica consumed them, and only committed rows are ever sent.
//
// A NOTIFY is only a wake-up: streams also look at the table every `stream_poll`, and the hub
// wakes every stream after each (re)connection of its listener, so a lost connection delays
// events but loses none.
//
// Lives as long as the service that streams from it; Start/Stop from one thread, Subscribe and
// Wake from any (the listener's thread wakes).
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "absl/time/time.h"
#include "platform/core/metrics.h"
#include "platform/pg/listener.h"

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
    Subscription(NotificationHub* hub, std::string account)
        : hub_(hub), account_(std::move(account)) {}
    NotificationHub* hub_;
    const std::string account_;
    bool woken_ = false;  // guarded by hub_->mu_
  };

  // `listen_url`: the primary, directly (pg::ListenUrlFromFlags(); empty: no LISTEN, streams rely
  // on polling).
  NotificationHub(std::string listen_url, metrics::Registry* registry);
  ~NotificationHub();

  // Starts listening.
  void Start();
  // Stops listening and wakes every stream, which then ends.
  void Stop();

  // Null when the account already has `max_per_account` subscriptions (0: no limit).
  std::unique_ptr<Subscription> Subscribe(const std::string& account_id, int max_per_account = 0);
  // Wakes the account's streams ("" wakes all).
  void Wake(const std::string& account_id);
  bool stopping() const { return stopping_; }
  int subscribers() const;

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::multimap<std::string, Subscription*> subscriptions_;
  std::atomic<bool> stopping_{false};
  metrics::Gauge* streams_;
  metrics::Counter* wakeups_;
  std::unique_ptr<pg::Listener> listener_;  // null without a listen_url
};

}  // namespace kurt::notifications
