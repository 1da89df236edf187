#include "services/links/click_publisher.h"

#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "absl/container/btree_map.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "kurt/events/v1/click.pb.h"
#include "platform/core/log.h"
#include "platform/core/sha256.h"

namespace kurt::links {

// A click event ready for the producer; on_delivery is shared so that it can still be told when
// the producer refuses the event.
struct ClickWaveEvent {
  std::string key;
  std::string value;
  kafka::Headers headers;
  std::shared_ptr<kafka::DeliveryCallback> on_delivery;
};

// The waves of click events (see the header). Shared with the delivery callbacks, which may
// outlive the sink (the producer reports what is left when it is destroyed): they hold it, and
// it holds nothing of the sink's.
class ClickWaves : public std::enable_shared_from_this<ClickWaves> {
 public:
  using Event = ClickWaveEvent;
  static constexpr size_t kMaxNextWave = 100000;  // librdkafka's own queue bound

  ClickWaves(kafka::KafkaProducer* producer, std::string topic, metrics::Counter* queued,
             metrics::Counter* dropped)
      : producer_(producer), topic_(std::move(topic)), queued_(queued), dropped_(dropped) {}

  // The events of SendAll that were not taken, and why the first was not: their on_delivery
  // is not called.
  struct Refused {
    size_t count = 0;
    absl::Status first_error;
  };

  // To the producer, or to the next wave when one is on its way. OK when either took it: then
  // on_delivery will be called.
  absl::Status Send(Event e) { return SendAll(absl::MakeSpan(&e, 1)).first_error; }

  // The same for several events at once, which stay together: all go to the producer now (no
  // wave on its way), or all join the next wave, but for those the producer (or a full next
  // wave) refuses. One at a time, the first of a batch would go alone and the rest wait for its
  // acknowledgement: two round trips to Kafka instead of one.
  Refused SendAll(absl::Span<Event> events) {
    Refused refused;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (in_wave_ > 0) {
        const size_t room = kMaxNextWave - std::min(kMaxNextWave, next_wave_.size());
        for (size_t i = 0; i < events.size(); ++i) {
          if (i >= room) {
            dropped_->Increment();
            ++refused.count;
            continue;
          }
          next_wave_.push_back(std::move(events[i]));
        }
        if (refused.count > 0) {
          refused.first_error = absl::ResourceExhaustedError(
              absl::StrCat(kMaxNextWave, " click events already wait for Kafka"));
        }
        return refused;
      }
      in_wave_ += events.size();
    }
    for (const Event& e : events) {
      if (absl::Status s = Hand(e); !s.ok()) {
        if (refused.first_error.ok()) {
          refused.first_error = s;
        }
        ++refused.count;
      }
    }
    if (refused.count > 0) {
      Reported(refused.count);
    }
    return refused;
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

// The deadlines of the clicks PublishAsync was given: each click's `done` waits here until its
// delivery report takes it (Take) or its deadline passes, whichever comes first, so that it is
// called exactly once. One thread for all of them sleeps until the earliest deadline, and is
// woken only by a click due before that: under load the deadlines come in order, so it sleeps
// through them while the delivery reports take the clicks away.
//
// Shared with the delivery callbacks, which may outlive the sink; the thread stops with the sink
// (Stop), after which only delivery reports answer.
class ClickDeadlines {
 public:
  using Done = std::function<void(const absl::Status&)>;
  // Names one watched click.
  struct Ticket {
    absl::Time deadline;
    uint64_t seq = 0;
  };

  ClickDeadlines() : thread_([this] { Run(); }) {}
  ~ClickDeadlines() { Stop(); }
  ClickDeadlines(const ClickDeadlines&) = delete;
  ClickDeadlines& operator=(const ClickDeadlines&) = delete;

  // Keeps `done` until Take(ticket) or `deadline`, when it is called with UNAVAILABLE.
  Ticket Watch(absl::Time deadline, Done done) {
    bool sooner = false;
    Ticket ticket{deadline, 0};
    {
      std::lock_guard<std::mutex> lock(mu_);
      ticket.seq = next_seq_++;
      waiting_.emplace(std::make_pair(deadline, ticket.seq), std::move(done));
      sooner = deadline < sleeping_until_;
      if (sooner) {
        sleeping_until_ = deadline;
      }
    }
    if (sooner) {
      wake_.notify_one();
    }
    return ticket;
  }

  // The click's `done`, unless its deadline has called it already (then an empty one).
  Done Take(const Ticket& ticket) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = waiting_.find(std::make_pair(ticket.deadline, ticket.seq));
    if (it == waiting_.end()) {
      return nullptr;
    }
    Done done = std::move(it->second);
    waiting_.erase(it);
    return done;
  }

  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    wake_.notify_one();
    if (thread_.joinable()) {
      thread_.join();
    }
  }

 private:
  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      const absl::Time now = absl::Now();
      std::vector<Done> expired;
      while (!waiting_.empty() && waiting_.begin()->first.first <= now) {
        expired.push_back(std::move(waiting_.begin()->second));
        waiting_.erase(waiting_.begin());
      }
      if (!expired.empty()) {
        lock.unlock();
        for (Done& done : expired) {
          done(absl::UnavailableError("1 of 1 clicks not yet in Kafka"));
        }
        lock.lock();
        continue;
      }
      if (waiting_.empty()) {
        sleeping_until_ = absl::InfiniteFuture();
        wake_.wait(lock);
      } else {
        // A click taken meanwhile leaves this wake-up early: it finds nothing due, and sleeps
        // until the next one.
        sleeping_until_ = waiting_.begin()->first.first;
        wake_.wait_until(lock, absl::ToChronoTime(sleeping_until_));
      }
    }
  }

  std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;
  uint64_t next_seq_ = 0;
  absl::btree_map<std::pair<absl::Time, uint64_t>, Done> waiting_;  // by deadline
  absl::Time sleeping_until_ = absl::InfiniteFuture();              // when the thread wakes next
  std::thread thread_;  // last: it reads the members above
};

KafkaClickSink::KafkaClickSink(kafka::KafkaProducer* producer, std::string topic, std::string salt,
                               metrics::Registry* registry, const CountryLookup* countries,
                               kafka::KafkaProducer* unhurried)
    : producer_(producer), topic_(std::move(topic)), salt_(std::move(salt)), countries_(countries) {
  auto& clicks = registry->AddCounter("kurt_links_click_events_total",
                                      "Click events, by what became of them", {"outcome"});
  queued_ = &clicks.WithLabels({"queued"});
  dropped_ = &clicks.WithLabels({"dropped"});
  failed_ = &clicks.WithLabels({"failed"});
  waves_ = std::make_shared<ClickWaves>(producer_, topic_, queued_, dropped_);
  unhurried_waves_ = unhurried == nullptr
                         ? waves_
                         : std::make_shared<ClickWaves>(unhurried, topic_, queued_, dropped_);
  deadlines_ = std::make_shared<ClickDeadlines>();
}

KafkaClickSink::~KafkaClickSink() { deadlines_->Stop(); }

std::string KafkaClickSink::HashClient(absl::string_view salt, absl::string_view ip) {
  return platform::Sha256Hex(absl::StrCat(salt, ip));
}

ClickWaveEvent KafkaClickSink::EventOf(const Click& click, kafka::DeliveryCallback on_delivery) {
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
  return ClickWaveEvent{click.code, event.SerializeAsString(), std::move(headers),
                        std::make_shared<kafka::DeliveryCallback>(std::move(on_delivery))};
}

void KafkaClickSink::PublishAsync(const Click& click, absl::Time deadline,
                                  std::function<void(const absl::Status&)> done) {
  // Watched before the click is queued: its delivery report may come at once.
  const ClickDeadlines::Ticket ticket = deadlines_->Watch(deadline, std::move(done));
  absl::Status queued = waves_->Send(EventOf(
      click, [deadlines = deadlines_, ticket, failed = failed_](const absl::Status& delivered) {
        if (!delivered.ok()) {
          failed->Increment();
        }
        if (ClickDeadlines::Done answer = deadlines->Take(ticket)) {
          answer(delivered.ok() ? absl::OkStatus()
                                : absl::UnavailableError(
                                      absl::StrCat("not delivered: ", delivered.message())));
        }
      }));
  if (!queued.ok()) {
    if (ClickDeadlines::Done answer = deadlines_->Take(ticket)) {
      answer(absl::UnavailableError(absl::StrCat("not queued: ", queued.message())));
    }
  }
}

absl::Status KafkaClickSink::PublishAll(const std::vector<Click>& clicks, absl::Time deadline,
                                        ClickWait wait) {
  return PublishAndWait(wait == ClickWait::kNothingWaits ? *unhurried_waves_ : *waves_, clicks,
                        deadline);
}

absl::Status KafkaClickSink::PublishAndWait(ClickWaves& waves, absl::Span<const Click> clicks,
                                            absl::Time deadline) {
  // Shared with the delivery callbacks, which may run after this returns (a timeout).
  struct Wait {
    std::mutex mu;
    std::condition_variable done;
    size_t pending = 0;
    absl::Status first_error;
  };
  auto wait = std::make_shared<Wait>();
  wait->pending = clicks.size();
  std::vector<ClickWaveEvent> events;
  events.reserve(clicks.size());
  for (const Click& click : clicks) {
    events.push_back(EventOf(click, [wait, failed = failed_](const absl::Status& delivered) {
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
    }));
  }
  // Together: in one wave, so that the batch costs one round trip to Kafka.
  const ClickWaves::Refused refused = waves.SendAll(absl::MakeSpan(events));
  const absl::Status& not_queued = refused.first_error;
  std::unique_lock<std::mutex> lock(wait->mu);
  wait->pending -= refused.count;
  bool all =
      wait->done.wait_until(lock, absl::ToChronoTime(deadline), [&] { return wait->pending == 0; });
  if (!not_queued.ok()) {
    return absl::UnavailableError(absl::StrCat("not queued: ", not_queued.message()));
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
