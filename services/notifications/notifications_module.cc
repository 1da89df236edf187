#include "services/notifications/notifications_module.h"

#include <utility>
#include <vector>

#include "platform/core/log.h"

namespace kurt::notifications {

NotificationsModule::NotificationsModule(const NotificationsConfig& config, NotificationsDeps deps)
    : own_poster_(deps.poster == nullptr ? std::make_unique<BeastHttpPoster>() : nullptr),
      store_(std::make_unique<PgNotificationStore>(deps.primary)),
      hub_(config.listen_url, deps.registry),
      sender_(config.webhook_sender, store_.get(),
              deps.poster != nullptr ? deps.poster : own_poster_.get(), deps.registry),
      handler_(store_.get(), &sender_, deps.registry),
      rpcs_(config.rpcs, store_.get(), &hub_, deps.registry),
      service_(&rpcs_) {}

absl::StatusOr<std::unique_ptr<NotificationsModule>> NotificationsModule::Create(
    const NotificationsConfig& config, NotificationsDeps deps) {
  std::unique_ptr<NotificationsModule> module(new NotificationsModule(config, deps));
  kafka::ConsumerOptions options;
  options.brokers = config.kafka_brokers;
  options.group_id = config.consumer_group;
  options.topics = {config.completed_topic};
  options.client_id = std::string{mesh::kNotifications.binary};
  options.assignment_strategy = "cooperative-sticky";
  CompletedConsumer* handler = &module->handler_;
  absl::StatusOr<std::unique_ptr<kafka::KafkaConsumer>> consumer = kafka::KafkaConsumer::Create(
      options,
      [handler](const std::vector<kafka::Message>& batch) { return handler->HandleBatch(batch); },
      module->assignment_.Handler());
  if (!consumer.ok()) {
    return consumer.status();
  }
  module->consumer_ = *std::move(consumer);
  return module;
}

NotificationsModule::~NotificationsModule() { Stop(); }

void NotificationsModule::Start() {
  started_ = true;
  hub_.Start();
  sender_.Start();
  kafka::KafkaConsumer* consumer = consumer_.get();
  consuming_ = std::thread([consumer] { consumer->Run(); });
}

void NotificationsModule::Stop() {
  if (consumer_ != nullptr) {
    // A consumer that never ran never gets an assignment: no use waiting for one.
    assignment_.StopAndClose(&consumer_, &consuming_,
                             started_ ? absl::Seconds(5) : absl::ZeroDuration());
  }
  sender_.Stop();
  hub_.Stop();
}

}  // namespace kurt::notifications
