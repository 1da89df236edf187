// A Kafka topic read by a test: from the beginning, with a consumer group of its own, in the
// background, so that a test can wait for the messages it expects and look at them.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "platform/kafka/kafka.h"

namespace kurt::testing {

class TopicReader {
 public:
  // The stack's brokers, as the flags say (plaintext by default), unless told otherwise.
  explicit TopicReader(const std::string& topic, const std::string& brokers = "",
                       std::optional<kafka::ClientSecurity> security = std::nullopt);
  ~TopicReader();
  std::vector<kafka::Message> Messages();
  // Waits until at least `n` messages arrived.
  bool WaitFor(size_t n, absl::Duration timeout);

 private:
  std::mutex mu_;
  std::vector<kafka::Message> messages_;
  std::unique_ptr<kafka::KafkaConsumer> consumer_;
  std::thread thread_;
};

}  // namespace kurt::testing
