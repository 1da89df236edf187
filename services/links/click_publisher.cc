#include "services/links/click_publisher.h"

#include <openssl/sha.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "kurt/events/v1/click.pb.h"
#include "platform/log.h"

namespace kurt::links {

KafkaClickSink::KafkaClickSink(kafka::KafkaProducer* producer, std::string topic,
                               std::string salt, metrics::Registry* registry)
    : producer_(producer), topic_(std::move(topic)), salt_(std::move(salt)) {
  auto& clicks = registry->AddCounter("kurt_links_click_events_total",
                                      "Click events, by what became of them", {"outcome"});
  queued_ = &clicks.WithLabels({"queued"});
  dropped_ = &clicks.WithLabels({"dropped"});
  failed_ = &clicks.WithLabels({"failed"});
}

std::string KafkaClickSink::HashClient(absl::string_view salt, absl::string_view ip) {
  std::string data = absl::StrCat(salt, ip);
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

void KafkaClickSink::Publish(const Click& click) {
  events::v1::ClickEvent event;
  std::string event_id = log::NewRequestId();
  event.set_event_id(event_id);
  event.set_code(click.code);
  int64_t micros = absl::ToUnixMicros(click.time);
  event.mutable_time()->set_seconds(micros / 1000000);
  event.mutable_time()->set_nanos(static_cast<int32_t>(micros % 1000000) * 1000);
  event.set_referrer(click.referrer.substr(0, 1024));
  event.set_user_agent(click.user_agent.substr(0, 512));
  if (!click.client_ip.empty()) event.set_client_hash(HashClient(salt_, click.client_ip));
  kafka::Headers headers = {{"event-id", event_id}};
  if (!click.traceparent.empty()) headers.emplace_back("traceparent", click.traceparent);
  absl::Status s = producer_->Produce(
      topic_, click.code, event.SerializeAsString(), headers,
      [failed = failed_](const absl::Status& delivered) {
        if (!delivered.ok()) failed->Increment();
      });
  if (s.ok()) {
    queued_->Increment();
  } else {
    dropped_->Increment();
    KURT_LOG(kWarn, "click event not queued", {"code", click.code}, {"error", s.ToString()});
  }
}

}  // namespace kurt::links
