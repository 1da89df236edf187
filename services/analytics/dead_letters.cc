#include "services/analytics/dead_letters.h"

#include <condition_variable>
#include <memory>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace kurt::analytics {
namespace {

// Shared with the delivery callbacks, which may outlive a Publish that timed out.
struct Acks {
  std::mutex mu;
  std::condition_variable cv;
  size_t pending = 0;
  absl::Status first_error;

  void Done(const absl::Status& s) {
    std::lock_guard<std::mutex> lock(mu);
    if (!s.ok() && first_error.ok()) {
      first_error = s;
    }
    --pending;
    cv.notify_all();
  }
};

}  // namespace

KafkaDeadLetterSink::KafkaDeadLetterSink(kafka::KafkaProducer* producer, std::string topic,
                                         absl::Duration ack_timeout)
    : producer_(producer), topic_(std::move(topic)), ack_timeout_(ack_timeout) {}

kafka::Headers KafkaDeadLetterSink::HeadersFor(const DeadLetter& letter) {
  const kafka::Message& m = *letter.message;
  kafka::Headers headers = m.headers;
  headers.emplace_back("dlq-reason", std::string(RejectReasonName(letter.reason)));
  headers.emplace_back("dlq-detail", letter.detail);
  headers.emplace_back("dlq-topic", m.topic);
  headers.emplace_back("dlq-partition", absl::StrCat(m.partition));
  headers.emplace_back("dlq-offset", absl::StrCat(m.offset));
  return headers;
}

absl::Status KafkaDeadLetterSink::Publish(const std::vector<DeadLetter>& letters) {
  if (letters.empty()) {
    return absl::OkStatus();
  }
  auto acks = std::make_shared<Acks>();
  const absl::Time deadline = absl::Now() + ack_timeout_;
  for (const DeadLetter& letter : letters) {
    {
      std::lock_guard<std::mutex> lock(acks->mu);
      ++acks->pending;
    }
    for (;;) {
      absl::Status s =
          producer_->Produce(topic_, letter.message->key, letter.message->value, HeadersFor(letter),
                             [acks](const absl::Status& st) { acks->Done(st); });
      if (s.ok()) {
        break;
      }
      if (!absl::IsResourceExhausted(s) || absl::Now() > deadline) {
        acks->Done(s);
        break;
      }
      absl::SleepFor(absl::Milliseconds(5));  // the local queue is full: let it drain
    }
  }
  std::unique_lock<std::mutex> lock(acks->mu);
  if (!acks->cv.wait_until(lock, absl::ToChronoTime(deadline),
                           [&] { return acks->pending == 0; })) {
    return absl::UnavailableError(absl::StrCat("dead-letter topic ", topic_, ": ", acks->pending,
                                               " messages not acknowledged within ",
                                               absl::FormatDuration(ack_timeout_)));
  }
  if (!acks->first_error.ok()) {
    return absl::UnavailableError(
        absl::StrCat("dead-letter topic ", topic_, ": ", acks->first_error.message()));
  }
  return absl::OkStatus();
}

}  // namespace kurt::analytics
