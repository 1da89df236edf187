// Publishes click events to the clicks topic (mesh::kClicksTopic; key: the code) and tells when
// Kafka has them (acks=all: every in-sync replica, at least min.insync.replicas of them). A
// resolve's click (PublishAsync) must be durable before its redirect goes out, since a process
// killed after answering would otherwise lose the clicks still in its producer's queue; the clicks
// of the edge's cached redirects (PublishAll) likewise, since the edge forgets them once this
// service has answered. Concurrent waiters share the producer's batches (linger.ms): the wait
// costs a redirect about one produce round trip, not one per click.
//
// Clicks go to the producer in waves: while some are on their way to Kafka, new ones wait here
// and go together once the last of those is acknowledged (at most 100,000 of them; more are
// refused like a full producer queue). librdkafka 2.0's idempotent producer sends nothing more
// on a partition while 5 messages are in flight on it, yet wakes its broker thread as though it
// could, which then spins polling until the acknowledgement arrives: with a linger shorter than a
// produce round trip, that spin was the largest part of a redirect's CPU. A lone click (no wave
// on its way) goes at once, so the wave costs nothing when idle; the clicks of one PublishAll
// stay together (all at once, or all in the next wave, but for any refused), so a batch costs
// one round trip.
//
// Clicks no redirect waits for (the edge's cached redirects when it does not hold them) may go
// through a second producer of their own that lingers (--unhurried_click_linger, 10 ms): without
// a linger, librdkafka's broker thread starts sending while a wave of thousands is still being
// handed over, in many small requests, and wakes for each; gathered, they cost kurt-links less
// than half as much per click, and the broker a third (docs/links.md, "Click events"). They go
// to it in waves of their own, as above: a linger shorter than a slow broker's round trip would
// otherwise bring back the spin.
//
// A sink lives as long as the service; PublishAll and PublishAsync are called from any thread.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "absl/types/span.h"
#include "platform/core/metrics.h"
#include "platform/kafka/kafka.h"
#include "services/links/country_lookup.h"

namespace kurt::links {

struct Click {
  std::string code;
  // The event id: the edge's click id (mesh::kClickIdMetadata); empty: a new one.
  std::string id;
  absl::Time time;
  std::string referrer;
  std::string user_agent;
  std::string client_ip;  // hashed before it leaves the process
  std::string traceparent;
  bool head = false;  // asked for with HEAD (mesh::kRequestMethodMetadata)
};

// Whether a redirect waits for the clicks PublishAll is given.
enum class ClickWait {
  kRedirectWaits,  // published at once: their wait is the redirect's
  kNothingWaits,   // may be gathered with others for a few milliseconds first
};

class ClickSink {
 public:
  virtual ~ClickSink() = default;
  // Publishes every click and returns once Kafka has all of them: OK only then. UNAVAILABLE when
  // one could not be queued, failed, or was not delivered by `deadline` (it may still arrive
  // later: librdkafka keeps retrying it); the caller may send them all again (with their ids,
  // those already delivered are counted once: analytics drops a second event of the same code
  // and id).
  virtual absl::Status PublishAll(const std::vector<Click>& clicks, absl::Time deadline,
                                  ClickWait wait) = 0;
  // Publishes one click without waiting: `done` is called once, OK when Kafka has it, else
  // UNAVAILABLE as above, from whichever thread learns it first (the producer's, the deadline's,
  // or this one), by `deadline` at the latest.
  virtual void PublishAsync(const Click& click, absl::Time deadline,
                            std::function<void(const absl::Status&)> done) = 0;
};

class ClickWaves;
struct ClickWaveEvent;
class ClickDeadlines;

class KafkaClickSink : public ClickSink {
 public:
  // `producer` outlives the sink. `salt` keeps client hashes from being reversed by hashing
  // every address; replicas must share it so one client hashes alike everywhere. `countries`
  // (may be null: no country in the events) outlives the sink. `unhurried` (may be null: then
  // `producer`) takes the clicks nothing waits for; it outlives the sink too.
  KafkaClickSink(kafka::KafkaProducer* producer, std::string topic, std::string salt,
                 metrics::Registry* registry, const CountryLookup* countries = nullptr,
                 kafka::KafkaProducer* unhurried = nullptr);
  ~KafkaClickSink() override;
  absl::Status PublishAll(const std::vector<Click>& clicks, absl::Time deadline,
                          ClickWait wait) override;
  // No thread waits for the click: its delivery report answers, or, past the deadline, the one
  // thread that keeps every pending click's deadline (ClickDeadlines), which sleeps until the
  // earliest of them. The delivery report takes the click from there, so a redirect costs no
  // timer and no thread hop of its own.
  void PublishAsync(const Click& click, absl::Time deadline,
                    std::function<void(const absl::Status&)> done) override;

  // Hex SHA-256 of salt + address.
  static std::string HashClient(absl::string_view salt, absl::string_view ip);

 private:
  // The click's event, serialised, for the producer's waves (ClickWaves).
  ClickWaveEvent EventOf(const Click& click, kafka::DeliveryCallback on_delivery);
  absl::Status PublishAndWait(ClickWaves& waves, absl::Span<const Click> clicks,
                              absl::Time deadline);

  kafka::KafkaProducer* producer_;
  const std::string topic_;
  const std::string salt_;
  const CountryLookup* countries_;
  metrics::Counter* queued_;
  metrics::Counter* dropped_;
  metrics::Counter* failed_;
  std::shared_ptr<ClickWaves> waves_;
  std::shared_ptr<ClickWaves> unhurried_waves_;  // waves_ when there is no unhurried producer
  std::shared_ptr<ClickDeadlines> deadlines_;
};

}  // namespace kurt::links
