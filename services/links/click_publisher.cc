#include "services/links/click_publisher.h"

#include <openssl/sha.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/alarm.h"
#include "kurt/events/v1/click.pb.h"
#include "platform/core/log.h"

namespace kurt::links {

KafkaClickSink::KafkaClickSink(kafka::KafkaProducer* producer, std::string topic, std::string salt,
                               metrics::Registry* registry, const CountryLookup* countries)
    : producer_(producer), topic_(std::move(topic)), salt_(std::move(salt)), countries_(countries) {
  auto& clicks = registry->AddCounter("kurt_links_click_events_total",
                                      "Click events, by what became of them", {"outcome"});
  queued_ = &clicks.WithLabels({"queued"});
  dropped_ = &clicks.WithLabels({"dropped"});
  failed_ = &clicks.WithLabels({"failed"});
}

std::string KafkaClickSink::HashClient(absl::string_view salt, absl::string_view ip) {
  std::string data = absl::StrCat(salt, ip);
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

absl::Status KafkaClickSink::Produce(const Click& click, kafka::DeliveryCallback on_delivery) {
  events::v1::ClickEvent event;
  std::string event_id = click.id.empty() ? log::NewRequestId() : click.id;
  event.set_event_id(event_id);
  event.set_code(click.code);
  int64_t micros = absl::ToUnixMicros(click.time);
  event.mutable_time()->set_seconds(micros / 1000000);
  event.mutable_time()->set_nanos(static_cast<int32_t>(micros % 1000000) * 1000);
  event.set_referrer(click.referrer.substr(0, 1024));
  event.set_user_agent(click.user_agent.substr(0, 512));
  if (!click.client_ip.empty()) {
    event.set_client_hash(HashClient(salt_, click.client_ip));
    if (countries_ != nullptr) {
      // The address is known only here: the event carries its hash, never the address.
      absl::string_view country = countries_->Lookup(click.client_ip);
      event.set_country(country.data(), country.size());
    }
  }
  event.set_head(click.head);
  kafka::Headers headers = {{"event-id", event_id}};
  if (!click.traceparent.empty()) {
    headers.emplace_back("traceparent", click.traceparent);
  }
  absl::Status s = producer_->Produce(topic_, click.code, event.SerializeAsString(), headers,
                                      std::move(on_delivery));
  if (s.ok()) {
    queued_->Increment();
  } else {
    dropped_->Increment();
    KURT_LOG(kWarn, "click event not queued", {"code", click.code}, {"error", s.ToString()});
  }
  return s;
}

absl::Status KafkaClickSink::Publish(const Click& click, absl::Time deadline) {
  return PublishAndWait(absl::MakeConstSpan(&click, 1), deadline);
}

void KafkaClickSink::PublishAsync(const Click& click, absl::Time deadline,
                                  std::function<void(const absl::Status&)> done) {
  // Kept alive by the delivery callback, which librdkafka always makes (delivered, failed or
  // timed out), so that the alarm can be cancelled from there. The alarm's callback holds it
  // weakly: the alarm belongs to it and must not outlive it from inside its own callback.
  struct Pending {
    std::atomic<bool> answered{false};
    std::function<void(const absl::Status&)> done;
    grpc::Alarm alarm;

    void Answer(const absl::Status& s) {
      if (!answered.exchange(true, std::memory_order_acq_rel)) {
        done(s);
        done = nullptr;
      }
    }
  };
  auto pending = std::make_shared<Pending>();
  pending->done = std::move(done);
  // Set before the click is queued: the delivery callback may cancel it at once.
  pending->alarm.Set(absl::ToChronoTime(deadline),
                     [weak = std::weak_ptr<Pending>(pending)](bool expired) {
                       std::shared_ptr<Pending> p = weak.lock();
                       if (expired && p != nullptr) {
                         p->Answer(absl::UnavailableError("1 of 1 clicks not yet in Kafka"));
                       }
                     });
  absl::Status queued = Produce(click, [pending, failed = failed_](const absl::Status& delivered) {
    if (!delivered.ok()) {
      failed->Increment();
      pending->Answer(absl::UnavailableError(absl::StrCat("not delivered: ", delivered.message())));
    } else {
      pending->Answer(absl::OkStatus());
    }
    pending->alarm.Cancel();
  });
  if (!queued.ok()) {
    pending->alarm.Cancel();
    pending->Answer(absl::UnavailableError(absl::StrCat("not queued: ", queued.message())));
  }
}

absl::Status KafkaClickSink::PublishAll(const std::vector<Click>& clicks, absl::Time deadline) {
  return PublishAndWait(clicks, deadline);
}

absl::Status KafkaClickSink::PublishAndWait(absl::Span<const Click> clicks, absl::Time deadline) {
  // Shared with the delivery callbacks, which may run after this returns (a timeout).
  struct Wait {
    std::mutex mu;
    std::condition_variable done;
    size_t pending = 0;
    absl::Status first_error;
  };
  auto wait = std::make_shared<Wait>();
  wait->pending = clicks.size();
  absl::Status queued;
  for (const Click& click : clicks) {
    absl::Status s = Produce(click, [wait, failed = failed_](const absl::Status& delivered) {
      if (!delivered.ok()) {
        failed->Increment();
      }
      std::lock_guard<std::mutex> lock(wait->mu);
      if (!delivered.ok() && wait->first_error.ok()) {
        wait->first_error = delivered;
      }
      if (--wait->pending == 0) {
        wait->done.notify_all();
      }
    });
    if (!s.ok()) {
      std::lock_guard<std::mutex> lock(wait->mu);
      --wait->pending;
      if (queued.ok()) {
        queued = s;
      }
    }
  }
  std::unique_lock<std::mutex> lock(wait->mu);
  bool all =
      wait->done.wait_until(lock, absl::ToChronoTime(deadline), [&] { return wait->pending == 0; });
  if (!queued.ok()) {
    return absl::UnavailableError(absl::StrCat("not queued: ", queued.message()));
  }
  if (!all) {
    return absl::UnavailableError(
        absl::StrCat(wait->pending, " of ", clicks.size(), " clicks not yet in Kafka"));
  }
  if (!wait->first_error.ok()) {
    return absl::UnavailableError(absl::StrCat("not delivered: ", wait->first_error.message()));
  }
  return absl::OkStatus();
}

}  // namespace kurt::links
