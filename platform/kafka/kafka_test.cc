#include "platform/kafka/kafka.h"

#include "gtest/gtest.h"

namespace kurt::kafka {
namespace {

TEST(KafkaProducerConfigTest, IsIdempotentWithAcksAll) {
  ProducerOptions o;
  o.brokers = "127.0.0.1:1";
  auto config = ProducerConfig(o);
  EXPECT_EQ(config["enable.idempotence"], "true");
  EXPECT_EQ(config["acks"], "all");
  EXPECT_EQ(config["bootstrap.servers"], "127.0.0.1:1");
}

TEST(KafkaProducerConfigTest, ExtraSettingsLayerOnTop) {
  ProducerOptions o;
  o.extra["linger.ms"] = "50";
  EXPECT_EQ(ProducerConfig(o)["linger.ms"], "50");
}

TEST(KafkaProducerConfigTest, TheLingerKeepsItsFractionOfAMillisecond) {
  ProducerOptions o;
  o.linger = absl::Microseconds(250);
  EXPECT_EQ(ProducerConfig(o)["linger.ms"], "0.25") << "a linger under 1 ms was sent as 0";
  o.linger = absl::ZeroDuration();
  EXPECT_EQ(ProducerConfig(o)["linger.ms"], "0");
  o.linger = absl::Milliseconds(5);
  EXPECT_EQ(ProducerConfig(o)["linger.ms"], "5");
}

TEST(KafkaProducerTest, AFractionalLingerIsTakenByLibrdkafka) {
  ProducerOptions o;
  o.brokers = "127.0.0.1:1";
  o.linger = absl::Microseconds(250);
  EXPECT_TRUE(KafkaProducer::Create(o).ok());
}

TEST(KafkaProducerTest, BadSettingIsAnErrorNamingIt) {
  ProducerOptions o;
  o.brokers = "127.0.0.1:1";
  o.extra["no.such.setting"] = "1";
  auto p = KafkaProducer::Create(o);
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(p.status().message().find("no.such.setting"), std::string::npos);
}

TEST(KafkaMessageTest, HeaderLookup) {
  Message m;
  m.headers = {{"event-id", "e1"}, {"traceparent", "t"}};
  EXPECT_EQ(m.Header("event-id").value(), "e1");
  EXPECT_FALSE(m.Header("missing").has_value());
}

}  // namespace
}  // namespace kurt::kafka
