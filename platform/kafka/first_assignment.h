// Works around librdkafka < 2.3 aborting (rd_kafka_sticky_assignor_state_destroy: Assertion
// `assignor_state' failed; confluentinc/librdkafka#4312) when a cooperative-sticky consumer is
// destroyed before its first group assignment: the consumer's AssignHandler records the first
// assignment, and shutdown waits for it (bounded) before closing the consumer; a consumer that
// never got one is left unclosed (the process is exiting; the broker drops it after its session
// timeout).
#pragma once

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "platform/core/log.h"
#include "platform/kafka/kafka.h"

namespace kurt::kafka {

class FirstAssignment {
 public:
  // To be passed as (or called from) the consumer's AssignHandler.
  kafka::AssignHandler Handler() {
    return [this](std::vector<kafka::TopicPartition>*) {
      assigned_ = true;
      return absl::OkStatus();
    };
  }

  bool assigned() const { return assigned_; }

  bool Wait(absl::Duration timeout) const {
    const absl::Time deadline = absl::Now() + timeout;
    while (!assigned_ && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(20));
    }
    return assigned_;
  }

  // Stops `consumer` (whose Run is on `thread`) and closes it, or leaves it unclosed when it
  // never got an assignment within `wait` (see above).
  void StopAndClose(std::unique_ptr<kafka::KafkaConsumer>* consumer, std::thread* thread,
                    absl::Duration wait = absl::Seconds(5)) {
    bool ok = Wait(wait);
    (*consumer)->Stop();
    if (thread->joinable()) {
      thread->join();
    }
    if (ok) {
      consumer->reset();  // commits and leaves the group
    } else {
      KURT_LOG(kWarn, "consumer never joined its group; not closing it (librdkafka#4312)");
      (void)consumer->release();
    }
  }

 private:
  std::atomic<bool> assigned_{false};
};

}  // namespace kurt::kafka
