#include "services/analytics/analytics_module.h"

#include "platform/core/log.h"

namespace kurt::analytics {
namespace {

ClickConsumerOptions ConsumerOptions(const AnalyticsConfig& config) {
  ClickConsumerOptions options;
  options.brokers = config.kafka_brokers;
  options.group_id = config.consumer_group;
  options.topic = config.clicks_topic;
  options.max_batch = config.batch_max_messages;
  options.batch_wait = config.batch_wait;
  options.lag_refresh = config.lag_refresh;
  options.partition_days_ahead = config.partition_days_ahead;
  options.mirror_offsets_to_kafka = config.mirror_offsets_to_kafka;
  return options;
}

std::unique_ptr<user_agent::UapRegexes> LoadSpiders(const std::string& path) {
  if (path.empty()) {
    return nullptr;
  }
  absl::StatusOr<std::unique_ptr<user_agent::UapRegexes>> rules =
      user_agent::UapRegexes::Load(path);
  if (!rules.ok()) {
    KURT_LOG(kError, "uap_regexes_file: cannot load uap-core's regexes",
             {"error", rules.status().ToString()});
    std::abort();
  }
  KURT_LOG(kInfo, "uap-core parsers loaded", {"device_parsers", (*rules)->device_parsers()},
           {"skipped", (*rules)->skipped().size()});
  return *std::move(rules);
}

}  // namespace

std::unique_ptr<AnalyticsModule> AnalyticsModule::Create(const AnalyticsConfig& config,
                                                         AnalyticsDeps deps) {
  return std::unique_ptr<AnalyticsModule>(new AnalyticsModule(config, deps));
}

AnalyticsModule::AnalyticsModule(const AnalyticsConfig& config, AnalyticsDeps deps)
    : consume_(config.consume),
      producer_(deps.producer),
      spiders_(LoadSpiders(config.uap_regexes_file)),
      click_store_(&deps.cluster->primary()),
      dead_letters_(deps.producer, config.dead_letter_topic),
      processor_(config.consumer_group, &click_store_, &dead_letters_, deps.registry,
                 config.write_parallelism, EventWindowOptions(), spiders_.get()),
      consumer_(ConsumerOptions(config), &click_store_, &processor_, deps.registry),
      stats_store_(deps.cluster),
      rpcs_(&stats_store_, config.now),
      service_(&rpcs_) {}

AnalyticsModule::~AnalyticsModule() { Stop(); }

absl::Status AnalyticsModule::Start() {
  if (!consume_) {
    return absl::OkStatus();
  }
  return consumer_.Start();
}

void AnalyticsModule::Stop() {
  if (stopped_) {
    return;
  }
  stopped_ = true;
  consumer_.Stop();
  if (absl::Status s = producer_->Flush(absl::Seconds(10)); !s.ok()) {
    KURT_LOG(kWarn, "dead letters left unsent", {"error", s.ToString()});
  }
}

}  // namespace kurt::analytics
