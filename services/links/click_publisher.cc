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

// The waves of click events (see the header). Shared with the delivery callbacks, which may
// outlive the sink (the producer reports what is left when it is destroyed): they hold it, and
// it holds nothing of the sink's.
class ClickWaves : public std::enable_shared_from_this<ClickWaves> {
 public:
  // A click event ready for the producer; on_delivery is shared so that it can still be told
  // when the producer refuses the event.
  struct Event {
    std::string key;
    std::string value;
    kafka::Headers headers;
    std::shared_ptr<kafka::DeliveryCallback> on_delivery;
  };
  static constexpr size_t kMaxNextWave = 100000;  // librdkafka's own queue bound

  ClickWaves(kafka::KafkaProducer* producer, std::string topic, metrics::Counter* queued,
             metrics::Counter* dropped)
      : producer_(producer), topic_(std::move(topic)), queued_(queued), dropped_(dropped) {}

  // To the producer, or to the next wave when one is on its way. OK when either took it: then
  // on_delivery will be called.
  absl::Status Send(Event e) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (in_wave_ > 0) {
        if (next_wave_.size() >= kMaxNextWave) {
          dropped_->Increment();
          return absl::ResourceExhaustedError(
              absl::StrCat(kMaxNextWave, " click events already wait for Kafka"));
        }
        next_wave_.push_back(std::move(e));
        return absl::OkStatus();
      }
      ++in_wave_;
    }
    absl::Status s = Hand(e);
    if (!s.ok()) {
      Reported(1);
    }
    return s;
  }

 private:
  // Gives the event to the producer; its delivery report counts against the wave.
  absl::Status Hand(const Event& e) {
    absl::Status s = producer_->Produce(
        topic_, e.key, e.value, e.headers,
        [self = shared_from_this(), on_delivery = e.on_delivery](const absl::Status& delivered) {
          (*on_delivery)(delivered);
          self->Reported(1);
        });
    if (s.ok()) {
      queued_->Increment();
    } else {
      dropped_->Increment();
      KURT_LOG(kWarn, "click event not queued", {"code", e.key}, {"error", s.ToString()});
    }
    return s;
  }

  // `n` events of the wave on its way were reported on (or refused): when none is left, the
  // next wave goes.
  void Reported(size_t n) {
    std::vector<Event> wave;
    {
      std::lock_guard<std::mutex> lock(mu_);
      in_wave_ -= n;
      if (in_wave_ > 0 || next_wave_.empty()) {
        return;
      }
      wave.swap(next_wave_);
      in_wave_ = wave.size();
    }
    size_t refused = 0;
    for (const Event& e : wave) {
      if (absl::Status s = Hand(e); !s.ok()) {
        ++refused;
        (*e.on_delivery)(absl::UnavailableError(absl::StrCat("not queued: ", s.message())));
      }
    }
    if (refused > 0) {
      Reported(refused);
    }
  }

  kafka::KafkaProducer* const producer_;
  const std::string topic_;
  metrics::Counter* const queued_;
  metrics::Counter* const dropped_;
  std::mutex mu_;
  size_t in_wave_ = 0;  // events given to the producer and not yet reported on
  std::vector<Event> next_wave_;
};

KafkaClickSink::KafkaClickSink(kafka::KafkaProducer* producer, std::string topic, std::string salt,
                               metrics::Registry* registry, const CountryLookup* countries)
    : producer_(producer), topic_(std::move(topic)), salt_(std::move(salt)), countries_(countries) {
  auto& clicks = registry->AddCounter("kurt_links_click_events_total",
                                      "Click events, by what became of them", {"outcome"});
  queued_ = &clicks.WithLabels({"queued"});
  dropped_ = &clicks.WithLabels({"dropped"});
  failed_ = &clicks.WithLabels({"failed"});
  waves_ = std::make_shared<ClickWaves>(producer_, topic_, queued_, dropped_);
}

KafkaClickSink::~KafkaClickSink() = default;

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
  return waves_->Send(
      ClickWaves::Event{click.code, event.SerializeAsString(), std::move(headers),
                        std::make_shared<kafka::DeliveryCallback>(std::move(on_delivery))});
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
