// Delivers notifications to webhooks: claims due rows of webhook_deliveries (several replicas
// share the work; a claim is a lease, so a sender that dies mid-POST leaves the delivery to be
// retried), POSTs the notification as JSON, and records the outcome: DELIVERED on a 2xx, else
// another attempt after an exponential backoff, FAILED after the last one. Delivery is at least
// once: a crash between the POST and its record repeats it, and receivers drop the repeat by the
// Kurt-Notification-Id header.
//
// Lives in NotificationsModule; Start/Stop from one thread, Wake from any (the consumer wakes it).
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "absl/time/time.h"
#include "platform/core/metrics.h"
#include "services/notifications/http_client.h"
#include "services/notifications/notification_store.h"

namespace kurt::notifications {

struct WebhookSenderOptions {
  // Let webhooks reach private, loopback and link-local addresses (tests only).
  bool allow_internal = false;
  int max_attempts = 8;
  // Before the second attempt; doubled for each further one, up to max_backoff.
  absl::Duration backoff = absl::Seconds(1);
  absl::Duration max_backoff = absl::Hours(1);
  absl::Duration timeout = absl::Seconds(5);
  // How long a claimed delivery is kept from other senders (longer than timeout).
  absl::Duration lease = absl::Seconds(30);
  absl::Duration poll_interval = absl::Milliseconds(500);
  int batch = 20;
};

class WebhookSender {
 public:
  // Every pointer outlives the sender.
  WebhookSender(WebhookSenderOptions options, NotificationStore* store, HttpPoster* poster,
                metrics::Registry* registry);
  ~WebhookSender();

  void Start();
  void Stop();
  // Look for due deliveries now (new notifications were stored).
  void Wake();
  // One round; returns the deliveries attempted.
  int SendDue();
  absl::Duration Backoff(int attempts) const;

 private:
  void Loop();
  void Deliver(const Delivery& delivery);

  const WebhookSenderOptions options_;
  NotificationStore* store_;
  HttpPoster* poster_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool woken_ = false;
  bool stop_ = false;
  std::thread thread_;
  metrics::Family<metrics::Counter>* attempts_;
};

}  // namespace kurt::notifications
