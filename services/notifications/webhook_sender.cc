#include "services/notifications/webhook_sender.h"

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "platform/core/log.h"

namespace kurt::notifications {

WebhookSender::WebhookSender(WebhookSenderOptions options, NotificationStore* store,
                             HttpPoster* poster, metrics::Registry* registry)
    : options_(options),
      store_(store),
      poster_(poster),
      attempts_(&registry->AddCounter("kurt_notifications_webhook_attempts_total",
                                      "Webhook POSTs, by outcome", {"outcome"})) {}

WebhookSender::~WebhookSender() { Stop(); }

void WebhookSender::Start() {
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
  for (;;) {
    int n = SendDue();
    std::unique_lock<std::mutex> lock(mu_);
    if (stop_) {
      return;
    }
    if (n >= options_.batch) {
      continue;
    }
    cv_.wait_for(lock, absl::ToChronoMilliseconds(options_.poll_interval),
                 [&] { return woken_ || stop_; });
    woken_ = false;
    if (stop_) {
      return;
    }
  }
}

int WebhookSender::SendDue() {
  absl::StatusOr<std::vector<Delivery>> due =
      store_->ClaimDeliveries(options_.batch, options_.lease);
  if (!due.ok()) {
    KURT_LOG(kWarn, "cannot claim webhook deliveries", {"error", due.status().ToString()});
    return 0;
  }
  for (const Delivery& d : *due) {
    Deliver(d);
  }
  return static_cast<int>(due->size());
}

void WebhookSender::Deliver(const Delivery& d) {
  int status = 0;
  std::string error;
  absl::StatusOr<WebhookUrl> url = ParseWebhookUrl(d.url);
  absl::StatusOr<std::vector<boost::asio::ip::tcp::endpoint>> endpoints =
      url.ok() ? ResolveWebhook(*url, options_.allow_internal) : url.status();
  if (!endpoints.ok()) {
    error = std::string(endpoints.status().message());
  } else {
    v1::Notification n;
    ToProto(d.notification, &n);
    std::string body;
    (void)google::protobuf::util::MessageToJsonString(n, &body);
    absl::StatusOr<HttpResponse> res =
        poster_->Post(*url, *endpoints,
                      {{"kurt-notification-id", n.id()},
                       {"kurt-event-type", n.type()},
                       {"kurt-delivery-attempt", absl::StrCat(d.attempts)}},
                      body, options_.timeout);
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
    s = store_->MarkDelivered(d.id, status);
  } else if (d.attempts >= options_.max_attempts) {
    attempts_->WithLabels({"failed"}).Increment();
    KURT_LOG(kWarn, "webhook delivery failed for good", {"delivery", d.id},
             {"attempts", d.attempts}, {"error", error});
    s = store_->MarkAttemptFailed(d.id, status, error, std::nullopt);
  } else {
    attempts_->WithLabels({"retry"}).Increment();
    s = store_->MarkAttemptFailed(d.id, status, error, Backoff(d.attempts));
  }
  // If recording fails the lease runs out and the delivery is tried again: at least once.
  if (!s.ok()) {
    KURT_LOG(kWarn, "cannot record a webhook attempt", {"error", s.ToString()});
  }
}

}  // namespace kurt::notifications
