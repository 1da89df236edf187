#include "services/notifications/webhook_sender.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/json_util.h"
#include "platform/core/log.h"
#include "services/notifications/webhook_signature.h"

namespace kurt::notifications {

WebhookSender::WebhookSender(WebhookSenderOptions options, NotificationStore* store,
                             HttpPoster* poster, metrics::Registry* registry)
    : options_(std::move(options)),
      store_(store),
      poster_(poster),
      attempts_(&registry->AddCounter("kurt_notifications_webhook_attempts_total",
                                      "Webhook POSTs, by outcome", {"outcome"})) {}

WebhookSender::~WebhookSender() { Stop(); }

void WebhookSender::Start() {
  for (int i = 0; i < std::max(1, options_.concurrency); ++i) {
    workers_.emplace_back([this] { Work(); });
  }
  thread_ = std::thread([this] { Loop(); });
}

void WebhookSender::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
  for (std::thread& w : workers_) {
    w.join();
  }
  workers_.clear();
}

void WebhookSender::Wake() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    woken_ = true;
  }
  cv_.notify_all();
}

absl::Duration WebhookSender::Backoff(int attempts) const {
  absl::Duration d = options_.backoff;
  for (int i = 1; i < attempts && d < options_.max_backoff; ++i) {
    d *= 2;
  }
  return std::min(d, options_.max_backoff);
}

void WebhookSender::Loop() {
  const int workers = std::max(1, options_.concurrency);
  for (;;) {
    std::vector<std::string> busy;
    int free = 0;
    {
      std::unique_lock<std::mutex> lock(mu_);
      // Claim only what a worker can start at once: a claimed delivery's lease is running.
      cv_.wait(lock, [&] { return stop_ || static_cast<int>(busy_.size()) < workers; });
      if (stop_) {
        return;
      }
      woken_ = false;
      busy.assign(busy_.begin(), busy_.end());
      free = workers - static_cast<int>(busy_.size());
    }
    const absl::Time lease_end = absl::Now() + options_.lease;
    absl::StatusOr<std::vector<Delivery>> due = store_->ClaimDeliveries(free, options_.lease, busy);
    if (!due.ok()) {
      KURT_LOG(kWarn, "cannot claim webhook deliveries", {"error", due.status().ToString()});
    }
    std::unique_lock<std::mutex> lock(mu_);
    if (due.ok()) {
      for (Delivery& d : *due) {
        busy_.insert(d.account_id);
        queue_.emplace_back(std::move(d), lease_end);
      }
    }
    cv_.notify_all();
    if (due.ok() && static_cast<int>(due->size()) == free) {
      continue;  // perhaps more is due
    }
    // A worker that finishes wakes the loop too (its account may have more due).
    cv_.wait_for(lock, absl::ToChronoMilliseconds(options_.poll_interval),
                 [&] { return woken_ || stop_; });
    if (stop_) {
      return;
    }
  }
}

void WebhookSender::Work() {
  for (;;) {
    std::pair<Delivery, absl::Time> next;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) {
        return;  // stopping
      }
      next = std::move(queue_.front());
      queue_.erase(queue_.begin());
    }
    Deliver(next.first, next.second);
    {
      std::lock_guard<std::mutex> lock(mu_);
      busy_.erase(next.first.account_id);
      woken_ = true;
    }
    cv_.notify_all();
  }
}

int WebhookSender::SendDue() {
  const absl::Time lease_end = absl::Now() + options_.lease;
  absl::StatusOr<std::vector<Delivery>> due =
      store_->ClaimDeliveries(options_.batch_for_tests, options_.lease, {});
  if (!due.ok()) {
    KURT_LOG(kWarn, "cannot claim webhook deliveries", {"error", due.status().ToString()});
    return 0;
  }
  for (const Delivery& d : *due) {
    Deliver(d, lease_end);
  }
  return static_cast<int>(due->size());
}

void WebhookSender::Deliver(const Delivery& d, absl::Time lease_end) {
  // Another sender may claim the delivery once the lease lapses: never POST what could still be
  // in flight then.
  if (absl::Now() + options_.resolve_timeout + options_.timeout > lease_end) {
    attempts_->WithLabels({"lease_lapsed"}).Increment();
    KURT_LOG(kWarn, "webhook delivery not sent: its lease would lapse first", {"delivery", d.id},
             {"attempt", d.attempts});
    return;
  }
  int status = 0;
  std::string error;
  absl::StatusOr<WebhookUrl> url = ParseWebhookUrl(d.url);
  absl::StatusOr<std::vector<boost::asio::ip::tcp::endpoint>> endpoints =
      url.ok()
          ? ResolveWebhook(*url, options_.allow_internal, options_.resolve_timeout, options_.lookup)
          : url.status();
  if (!endpoints.ok()) {
    error = std::string(endpoints.status().message());
  } else {
    v1::Notification n;
    ToProto(d.notification, &n);
    std::string body;
    (void)google::protobuf::util::MessageToJsonString(n, &body);
    std::vector<std::pair<std::string, std::string>> headers = {
        {"kurt-notification-id", n.id()},
        {"kurt-event-type", n.type()},
        {"kurt-delivery-attempt", absl::StrCat(d.attempts)}};
    if (!d.secret.empty()) {
      headers.emplace_back(kSignatureHeader, SignWebhook(d.secret, absl::Now(), body));
    }
    absl::StatusOr<HttpResponse> res =
        poster_->Post(*url, *endpoints, headers, body, options_.timeout);
    if (!res.ok()) {
      error = std::string(res.status().message());
    } else {
      status = res->status;
      if (status < 200 || status > 299) {
        error = absl::StrCat("HTTP ", status);
      }
    }
  }
  absl::Status s;
  if (error.empty()) {
    attempts_->WithLabels({"delivered"}).Increment();
    s = store_->MarkDelivered(d.id, d.attempts, status);
  } else if (d.attempts >= options_.max_attempts) {
    attempts_->WithLabels({"failed"}).Increment();
    KURT_LOG(kWarn, "webhook delivery failed for good", {"delivery", d.id},
             {"attempts", d.attempts}, {"error", error});
    s = store_->MarkAttemptFailed(d.id, d.attempts, status, error, std::nullopt);
  } else {
    attempts_->WithLabels({"retry"}).Increment();
    s = store_->MarkAttemptFailed(d.id, d.attempts, status, error, Backoff(d.attempts));
  }
  // If recording fails the lease runs out and the delivery is tried again: at least once. ABORTED:
  // another sender holds it now, whose outcome counts.
  if (absl::IsAborted(s)) {
    attempts_->WithLabels({"fenced"}).Increment();
    KURT_LOG(kWarn, "webhook attempt not recorded: its lease lapsed", {"error", s.ToString()});
  } else if (!s.ok()) {
    KURT_LOG(kWarn, "cannot record a webhook attempt", {"error", s.ToString()});
  }
}

}  // namespace kurt::notifications
