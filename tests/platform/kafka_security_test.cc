// The Kafka clients' security settings (--kafka_security_protocol, --kafka_sasl_*) against the
// local broker's SASL listener (tools/stack: KURT_KAFKA_SASL_BROKERS, PLAIN): a producer and a
// consumer with the right credentials get through, one with a wrong password gets nothing
// through, and settings that do not fit together are refused before any connection, naming the
// flag and never the password. Every producer and consumer takes its settings from the flags.
#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "platform/kafka/kafka.h"
#include "tests/support/stack_env.h"
#include "tests/support/topic_reader.h"

namespace kurt {
namespace {

using testing::RandomName;

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

kafka::ClientSecurity Sasl(const std::string& password) {
  kafka::ClientSecurity s;
  s.protocol = "sasl_plaintext";
  s.sasl_mechanism = "PLAIN";
  s.sasl_username = Env("KURT_KAFKA_SASL_TEST_USERNAME");
  s.sasl_password = password;
  return s;
}

class KafkaSecurityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    brokers_ = Env("KURT_KAFKA_SASL_BROKERS");
    password_ = Env("KURT_KAFKA_SASL_TEST_PASSWORD");
    ASSERT_FALSE(brokers_.empty() || password_.empty())
        << "KURT_KAFKA_SASL_BROKERS and KURT_KAFKA_SASL_TEST_PASSWORD: tools/stack up writes "
           "them to .kurt/stack.env";
    topic_ = RandomName("kurt.test.sasl.");
    testing::CreateTopic(topic_, 1);
  }
  // Produces one message; the delivery's outcome (given up on after 5 s).
  absl::Status ProduceOne(const kafka::ClientSecurity& security, const std::string& value) {
    kafka::ProducerOptions options;
    options.brokers = brokers_;
    options.security = security;
    options.extra["message.timeout.ms"] = "5000";
    auto producer = kafka::KafkaProducer::Create(options);
    if (!producer.ok()) {
      return producer.status();
    }
    absl::Status delivered = absl::DeadlineExceededError("no delivery report");
    absl::Notification done;
    absl::Status queued = (*producer)->Produce(topic_, "k", value, {}, [&](const absl::Status& s) {
      delivered = s;
      done.Notify();
    });
    if (!queued.ok()) {
      return queued;
    }
    done.WaitForNotificationWithTimeout(absl::Seconds(15));
    return delivered;
  }

  std::string brokers_, password_, topic_;
};

TEST_F(KafkaSecurityTest, TheRightCredentialsGetMessagesInAndOut) {
  ASSERT_TRUE(ProduceOne(Sasl(password_), "through-sasl").ok());
  testing::TopicReader reader(topic_, brokers_, Sasl(password_));
  ASSERT_TRUE(reader.WaitFor(1, absl::Seconds(20)));
  EXPECT_EQ(reader.Messages()[0].value, "through-sasl");
}

TEST_F(KafkaSecurityTest, AWrongPasswordGetsNothingThrough) {
  absl::Status s = ProduceOne(Sasl("not-" + password_), "forged");
  EXPECT_FALSE(s.ok());
  EXPECT_FALSE(absl::StrContains(s.message(), password_)) << s;
  // Nothing reached the topic (read through the plaintext listener, which the stack keeps).
  testing::TopicReader reader(topic_);
  EXPECT_FALSE(reader.WaitFor(1, absl::Seconds(3)));
}

// Without credentials a client does not even try: refused at creation, naming what is missing.
TEST(KafkaClientSecurityTest, SettingsThatDoNotFitAreRefusedNamingTheFlag) {
  std::map<std::string, std::string> config;
  kafka::ClientSecurity s;
  s.protocol = "sasl_ssl";
  s.sasl_username = "kurt-links";
  absl::Status missing = s.AddTo(&config);
  EXPECT_EQ(missing.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(missing.message(), "--kafka_sasl_password")) << missing;

  s.sasl_password = "s3cret-value";
  s.sasl_mechanism = "GSSAPI";
  absl::Status mechanism = s.AddTo(&config);
  EXPECT_TRUE(absl::StrContains(mechanism.message(), "--kafka_sasl_mechanism")) << mechanism;
  EXPECT_FALSE(absl::StrContains(mechanism.message(), "s3cret")) << mechanism;

  s.protocol = "tls";
  absl::Status protocol = s.AddTo(&config);
  EXPECT_TRUE(absl::StrContains(protocol.message(), "--kafka_security_protocol")) << protocol;

  kafka::ProducerOptions options;
  options.brokers = "127.0.0.1:1";
  options.security.protocol = "sasl_plaintext";
  auto producer = kafka::KafkaProducer::Create(options);
  EXPECT_EQ(producer.status().code(), absl::StatusCode::kInvalidArgument);

  // sasl_ssl verifies the brokers' certificates and names.
  s.protocol = "SASL_SSL";
  s.sasl_mechanism = "SCRAM-SHA-512";
  ASSERT_TRUE(s.AddTo(&config).ok());
  EXPECT_EQ(config["security.protocol"], "sasl_ssl");
  EXPECT_EQ(config["enable.ssl.certificate.verification"], "true");
  EXPECT_EQ(config["ssl.endpoint.identification.algorithm"], "https");
  EXPECT_EQ(config["sasl.mechanisms"], "SCRAM-SHA-512");
}

TEST(KafkaClientSecurityTest, EveryClientTakesItsSettingsFromTheFlags) {
  absl::FlagSaver saver;
  absl::SetFlag(&FLAGS_kafka_security_protocol, "sasl_ssl");
  absl::SetFlag(&FLAGS_kafka_sasl_username, "kurt-analytics");
  absl::SetFlag(&FLAGS_kafka_sasl_password, "from-the-secret");
  absl::SetFlag(&FLAGS_kafka_ssl_ca_location, "/etc/kurt/kafka-ca.pem");
  for (const kafka::ClientSecurity& s :
       {kafka::ProducerOptions().security, kafka::ConsumerOptions().security}) {
    EXPECT_EQ(s.protocol, "sasl_ssl");
    EXPECT_EQ(s.sasl_mechanism, "SCRAM-SHA-512");
    EXPECT_EQ(s.sasl_username, "kurt-analytics");
    EXPECT_EQ(s.sasl_password, "from-the-secret");
    EXPECT_EQ(s.ssl_ca_location, "/etc/kurt/kafka-ca.pem");
  }
}

}  // namespace
}  // namespace kurt
