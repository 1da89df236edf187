#include "services/analytics/click_consumer.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "platform/core/log.h"

namespace kurt::analytics {

ClickConsumer::ClickConsumer(ClickConsumerOptions options, ClickStore* store,
                             ClickProcessor* processor, metrics::Registry* registry)
    : options_(std::move(options)), store_(store), processor_(processor) {
  lag_ = &registry->AddGauge("kurt_kafka_consumer_lag",
                             "Messages between the consumer's position and the end of each "
                             "assigned partition",
                             {"topic", "partition", "group"});
}

ClickConsumer::~ClickConsumer() { Stop(); }

absl::Status ClickConsumer::OnAssign(std::vector<kafka::TopicPartition>* partitions) {
  // A database blip must not make the process abort (which the platform does when this fails):
  // retry for a while first.
  absl::StatusOr<OffsetMap> stored;
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  for (absl::Duration backoff = absl::Milliseconds(100);;
       backoff = std::min(backoff * 2, absl::Seconds(2))) {
    stored = store_->LoadOffsets(options_.group_id, options_.topic);
    if (stored.ok() || absl::Now() + backoff > give_up) {
      break;
    }
    KURT_LOG(kWarn, "cannot read stored offsets; retrying", {"error", stored.status().ToString()});
    absl::SleepFor(backoff);
  }
  if (!stored.ok()) {
    return stored.status();
  }
  for (kafka::TopicPartition& tp : *partitions) {
    auto it = stored->find({tp.topic, tp.partition});
    // No stored offset: Kafka's auto.offset.reset (earliest) decides.
    tp.offset = it == stored->end() ? -1 : it->second;
    KURT_LOG(kInfo, "partition assigned", {"topic", tp.topic}, {"partition", tp.partition},
             {"offset", tp.offset});
  }
  return absl::OkStatus();
}

absl::Status ClickConsumer::Start() {
  kafka::ConsumerOptions co;
  co.brokers = options_.brokers;
  co.group_id = options_.group_id;
  co.topics = {options_.topic};
  co.client_id = options_.client_id;
  co.max_batch = options_.max_batch;
  co.batch_wait = options_.batch_wait;
  co.commit_to_kafka = options_.mirror_offsets_to_kafka;
  // The next batch is fetched and converted while the database writes this one.
  co.pipelined = true;
  // Bounded prefetch: while the database is slow, librdkafka stops fetching instead of growing.
  co.extra["queued.max.messages.kbytes"] = "32768";
  auto consumer = kafka::KafkaConsumer::Create(
      co, [this](const std::vector<kafka::Message>& batch) { return processor_->Handle(batch); },
      [this](std::vector<kafka::TopicPartition>* partitions) { return OnAssign(partitions); });
  if (!consumer.ok()) {
    return consumer.status();
  }
  consumer_ = std::move(*consumer);
  consume_thread_ = std::thread([this] { consumer_->Run(); });
  maintenance_thread_ = std::thread([this] { MaintenanceLoop(); });
  KURT_LOG(kInfo, "consuming clicks", {"topic", options_.topic}, {"group", options_.group_id});
  return absl::OkStatus();
}

void ClickConsumer::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      return;
    }
    stopping_ = true;
  }
  cv_.notify_all();
  if (consumer_) {
    consumer_->Stop();
  }
  if (consume_thread_.joinable()) {
    consume_thread_.join();
  }
  if (maintenance_thread_.joinable()) {
    maintenance_thread_.join();
  }
  // Leaves the group (closing the consumer) so that the partitions move on at once.
  consumer_.reset();
  KURT_LOG(kInfo, "click consumer stopped");
}

void ClickConsumer::MaintenanceLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    lock.unlock();
    EnsurePartitions();
    RefreshLag();
    lock.lock();
    cv_.wait_for(lock, absl::ToChronoMilliseconds(options_.lag_refresh),
                 [this] { return stopping_; });
  }
}

void ClickConsumer::RefreshLag() {
  for (auto& [tp, seen] : lag_reported_) {
    seen = false;
  }
  for (const auto& [tp, lag] : consumer_->Lag()) {
    lag_->WithLabels({tp.topic, absl::StrCat(tp.partition), options_.group_id})
        .Set(static_cast<double>(lag));
    lag_reported_[{tp.topic, tp.partition}] = true;
  }
  // A partition no longer assigned here is another member's to report.
  for (auto& [tp, seen] : lag_reported_) {
    if (!seen) {
      lag_->WithLabels({tp.first, absl::StrCat(tp.second), options_.group_id}).Set(0);
    }
  }
}

void ClickConsumer::EnsurePartitions() {
  const absl::Time now = absl::Now();
  if (now < next_partition_check_) {
    return;
  }
  // From yesterday (late clicks; older ones land in the default partition) to
  // partition_days_ahead days ahead.
  absl::StatusOr<int> created =
      store_->EnsurePartitions(now - absl::Hours(24), options_.partition_days_ahead + 2);
  if (!created.ok()) {
    KURT_LOG(kWarn, "cannot create click partitions; will retry",
             {"error", created.status().ToString()});
    next_partition_check_ = now + absl::Minutes(1);
    return;
  }
  if (*created > 0) {
    KURT_LOG(kInfo, "click partitions created", {"count", *created});
  }
  absl::StatusOr<DayIndexing> indexed = store_->IndexEndedDays();
  if (!indexed.ok()) {
    // An interrupted build leaves an INVALID index, which the next pass drops and builds again.
    KURT_LOG(kWarn, "cannot build the index of an ended day of clicks; will retry",
             {"error", indexed.status().ToString()});
    next_partition_check_ = now + absl::Minutes(1);
    return;
  }
  for (const std::string& part : indexed->built) {
    KURT_LOG(kInfo, "click partition indexed", {"partition", part});
  }
  for (const std::string& part : indexed->repaired) {
    KURT_LOG(kWarn, "click partition had an INVALID index, rebuilt", {"partition", part});
  }
  next_partition_check_ = now + options_.partition_check;
}

}  // namespace kurt::analytics
