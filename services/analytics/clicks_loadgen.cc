// kurt-clicks-loadgen: publishes synthetic kurt.events.v1.ClickEvent messages, as the links
// service would (key = code, header event-id), for links <code_prefix>1 … <code_prefix>N with a
// Zipf-like popularity. Used by tools/bench clicks. The events are built before producing starts
// (as ProducerPerformance builds its payload first), so that the producer's own speed is what is
// measured. Prints one JSON line when every message is acknowledged: {"produced": …,
// "start_unix": …, "seconds": …, "cpu_seconds": …, "value_bytes": …} (start_unix: when producing
// began; seconds: from then to the last acknowledgement; cpu_seconds: the CPU it used meanwhile;
// value_bytes: the mean size).
#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <random>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "kurt/events/v1/click.pb.h"
#include "platform/core/config.h"
#include "platform/core/log.h"
#include "platform/kafka/kafka.h"
#include "services/common/mesh.h"

ABSL_FLAG(std::string, topic, kurt::mesh::kClicksTopic, "Topic to publish to");
ABSL_FLAG(int64_t, count, 1000000, "Events to publish");
ABSL_FLAG(std::string, code_prefix, "bench", "Links are <code_prefix>1 … <code_prefix><codes>");
ABSL_FLAG(int, codes, 1000, "How many links the clicks go to");
ABSL_FLAG(int64_t, rate, 0, "Events per second (0: as fast as the producer goes)");
ABSL_FLAG(uint64_t, seed, 1, "Random seed");

namespace {

const char* const kReferrers[] = {
    "",
    "https://www.google.com/",
    "https://news.ycombinator.com/item?id=1",
    "https://t.co/abc",
    "https://www.facebook.com/",
    "https://www.reddit.com/r/cpp/",
    "https://mail.example.com/inbox",
    "android-app://com.slack/",
};
const char* const kAgents[] = {
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "curl/8.4.0",
};

}  // namespace

int main(int argc, char** argv) {
  kurt::platform::InitProcess(argc, argv, "clicks-loadgen",
                              "kurt-clicks-loadgen --topic=T --count=N: publishes click events");
  const int64_t count = absl::GetFlag(FLAGS_count);
  const int codes = std::max(1, absl::GetFlag(FLAGS_codes));
  const int64_t rate = absl::GetFlag(FLAGS_rate);
  const std::string topic = absl::GetFlag(FLAGS_topic);
  const std::string prefix = absl::GetFlag(FLAGS_code_prefix);

  kurt::kafka::ProducerOptions po;
  po.brokers = absl::GetFlag(FLAGS_kafka_brokers);
  po.client_id = "kurt-clicks-loadgen";
  auto producer = kurt::kafka::KafkaProducer::Create(po);
  if (!producer.ok()) {
    std::cerr << producer.status() << "\n";
    return 2;
  }

  // Popularity of link i proportional to 1/i.
  std::vector<double> cdf(codes);
  double sum = 0;
  for (int i = 0; i < codes; ++i) {
    cdf[i] = (sum += 1.0 / (i + 1));
  }
  std::mt19937_64 rng(absl::GetFlag(FLAGS_seed));
  std::uniform_real_distribution<double> uniform(0, sum);

  struct Event {
    std::string code, id, value;
  };
  std::vector<Event> events(count);
  kurt::events::v1::ClickEvent event;
  int64_t value_bytes = 0;
  for (int64_t i = 0; i < count; ++i) {
    Event& e = events[i];
    int index =
        static_cast<int>(std::lower_bound(cdf.begin(), cdf.end(), uniform(rng)) - cdf.begin());
    e.code = absl::StrCat(prefix, std::min(index, codes - 1) + 1);
    e.id = absl::StrCat(absl::Hex(rng(), absl::kZeroPad16), absl::Hex(i, absl::kZeroPad16));
    const int64_t micros = absl::ToUnixMicros(absl::Now());
    event.set_event_id(e.id);
    event.set_code(e.code);
    event.mutable_time()->set_seconds(micros / 1000000);
    event.mutable_time()->set_nanos(static_cast<int32_t>(micros % 1000000) * 1000);
    event.set_referrer(kReferrers[rng() % std::size(kReferrers)]);
    event.set_user_agent(kAgents[rng() % std::size(kAgents)]);
    event.set_client_hash(absl::StrCat(absl::Hex(rng(), absl::kZeroPad16)));
    event.SerializeToString(&e.value);
    value_bytes += static_cast<int64_t>(e.value.size());
  }

  auto failed = std::make_shared<std::atomic<int64_t>>(0);
  // CPU seconds this process has used (all threads: the producer's own included).
  auto cpu_seconds = [] {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
  };
  const double cpu_start = cpu_seconds();
  const absl::Time start = absl::Now();
  for (int64_t i = 0; i < count; ++i) {
    if (rate > 0 && i % 1000 == 0) {
      absl::Time due = start + absl::Seconds(static_cast<double>(i) / static_cast<double>(rate));
      if (due > absl::Now()) {
        absl::SleepFor(due - absl::Now());
      }
    }
    const Event& e = events[i];
    for (;;) {
      absl::Status s = (*producer)->Produce(topic, e.code, e.value, {{"event-id", e.id}},
                                            [failed](const absl::Status& st) {
                                              if (!st.ok()) {
                                                ++*failed;
                                              }
                                            });
      if (s.ok()) {
        break;
      }
      if (!absl::IsResourceExhausted(s)) {
        std::cerr << s << "\n";
        return 1;
      }
      absl::SleepFor(absl::Milliseconds(1));
    }
  }
  absl::Status flushed = (*producer)->Flush(absl::Minutes(2));
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  if (!flushed.ok() || *failed > 0) {
    std::cerr << "not every event was acknowledged: " << flushed << ", failed " << failed->load()
              << "\n";
    return 1;
  }
  std::cout << "{\"produced\": " << count << ", \"start_unix\": "
            << absl::StrFormat("%.6f", absl::ToDoubleSeconds(start - absl::UnixEpoch()))
            << ", \"seconds\": " << seconds << ", \"cpu_seconds\": " << cpu_seconds() - cpu_start
            << ", \"value_bytes\": " << (count > 0 ? value_bytes / count : 0) << "}" << std::endl;
  return 0;
}
