// Delivers notifications to webhooks: claims due rows of webhook_deliveries (several replicas
// share the work; a claim is a lease, so a sender that dies mid-POST leaves the delivery to be
// retried), POSTs the notification as JSON signed with the account's secret (Kurt-Signature,
// webhook_signature.h), and records the outcome: DELIVERED on a 2xx, else another attempt after
// an exponential backoff, FAILED after the last one. Delivery is at least once: a crash between
// the POST and its record repeats it, and receivers drop the repeat by the Kurt-Notification-Id
// header.
//
// Leases are fenced: a delivery is POSTed only if its resolve and POST can end within its lease,
// and its outcome is recorded only under the claim that sent it (the attempt number), so a
// sender whose lease lapsed neither sends (after the lapse) nor overwrites the newer claim.
//
// One account's slow endpoint delays no other account: the loop hands each claimed delivery to
// a pool of `concurrency` workers and claims at most one delivery per account at a time, so a
// hanging endpoint holds one worker for at most resolve_timeout + timeout.
//
// Lives in NotificationsModule; Start/Stop from one thread, Wake from any (the consumer wakes it).
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "platform/core/metrics.h"
#include "services/notifications/http_client.h"
#include "services/notifications/notification_store.h"
#include "services/notifications/webhook_target.h"

namespace kurt::notifications {

struct WebhookSenderOptions {
  // Let webhooks reach private, loopback and link-local addresses (tests only).
  bool allow_internal = false;
  int max_attempts = 8;
  // Before the second attempt; doubled for each further one, up to max_backoff.
  absl::Duration backoff = absl::Seconds(1);
  absl::Duration max_backoff = absl::Hours(1);
  // For one POST (connect, TLS, write, read).
  absl::Duration timeout = absl::Seconds(5);
  // For resolving the webhook's host before each POST.
  absl::Duration resolve_timeout = absl::Seconds(3);
  // How long a claimed delivery is kept from other senders (longer than resolve_timeout +
  // timeout, else nothing is ever sent).
  absl::Duration lease = absl::Seconds(30);
  absl::Duration poll_interval = absl::Milliseconds(500);
  // Deliveries in flight at once, each to a different account.
  int concurrency = 8;
  // Deliveries one SendDue claims.
  int batch_for_tests = 20;
  // How host names are resolved (tests give a slow one).
  HostLookup lookup = SystemLookup;
};

class WebhookSender {
 public:
  // Every pointer outlives the sender.
  WebhookSender(WebhookSenderOptions options, NotificationStore* store, HttpPoster* poster,
                metrics::Registry* registry);
  ~WebhookSender();

  // Starts the loop and its workers.
  void Start();
  // Ends the loop; the workers finish the POSTs in flight.
  void Stop();
  // Look for due deliveries now (new notifications were stored).
  void Wake();
  // One round on the calling thread (tests): claims what is due (one per account) and delivers
  // it; returns the deliveries claimed.
  int SendDue();
  absl::Duration Backoff(int attempts) const;

 private:
  void Loop();
  void Work();
  // `lease_end`: when the claim's lease lapses (by this host's clock, taken before the claim).
  void Deliver(const Delivery& delivery, absl::Time lease_end);

  const WebhookSenderOptions options_;
  NotificationStore* store_;
  HttpPoster* poster_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool woken_ = false;
  bool stop_ = false;
  // Claimed deliveries waiting for a worker, with their lease ends; guarded by mu_.
  std::vector<std::pair<Delivery, absl::Time>> queue_;
  // Accounts with a delivery queued or in flight; guarded by mu_.
  std::set<std::string> busy_;
  std::thread thread_;
  std::vector<std::thread> workers_;
  metrics::Family<metrics::Counter>* attempts_;
};

}  // namespace kurt::notifications
