#include "tests/support/topic_reader.h"

#include <stdexcept>
#include <utility>

#include "absl/time/clock.h"
#include "tests/support/stack_env.h"

namespace kurt::testing {

TopicReader::TopicReader(const std::string& topic, const std::string& brokers,
                         std::optional<kafka::ClientSecurity> security) {
  kafka::ConsumerOptions o;
  o.brokers = brokers.empty() ? KafkaBrokers() : brokers;
  if (security) {
    o.security = *security;
  }
  o.group_id = RandomName("kurt-test-reader-");
  o.topics = {topic};
  o.auto_offset_reset = "earliest";
  auto c = kafka::KafkaConsumer::Create(o, [this](const std::vector<kafka::Message>& batch) {
    std::lock_guard<std::mutex> lock(mu_);
    messages_.insert(messages_.end(), batch.begin(), batch.end());
    return absl::OkStatus();
  });
  if (!c.ok()) {
    throw std::runtime_error(c.status().ToString());
  }
  consumer_ = std::move(*c);
  thread_ = std::thread([this] { consumer_->Run(); });
}

TopicReader::~TopicReader() {
  consumer_->Stop();
  thread_.join();
}

std::vector<kafka::Message> TopicReader::Messages() {
  std::lock_guard<std::mutex> lock(mu_);
  return messages_;
}

bool TopicReader::WaitFor(size_t n, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (messages_.size() >= n) {
        return true;
      }
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return false;
}

}  // namespace kurt::testing
