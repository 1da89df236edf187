#include "services/report-worker/worker_module.h"

#include <unistd.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "services/reports/report_job.h"

namespace kurt::report_worker {
namespace {

std::string DefaultWorkerId() {
  char host[256] = {0};
  if (gethostname(host, sizeof(host) - 1) != 0) {
    host[0] = '\0';
  }
  return absl::StrCat(host[0] != '\0' ? host : "worker", "-", getpid());
}

PgJobStoreOptions StoreOptions(const WorkerConfig& config) {
  PgJobStoreOptions options;
  options.worker_id = config.worker_id.empty() ? DefaultWorkerId() : config.worker_id;
  options.lease = config.lease;
  options.max_attempts = config.max_attempts;
  options.requested_topic = config.requested_topic;
  options.completed_topic = config.completed_topic;
  options.dead_letter_topic = config.dead_letter_topic;
  return options;
}

PgReportSourceOptions SourceOptions(const WorkerConfig& config) {
  PgReportSourceOptions options;
  options.chunk_rows = std::max<int64_t>(1, config.scan_chunk_rows);
  options.max_rows_per_second = config.scan_max_rows_per_second;
  options.statement_timeout = config.scan_statement_timeout;
  return options;
}

RunnerOptions RunnerOptionsOf(const WorkerConfig& config) {
  RunnerOptions options;
  options.max_attempts = config.max_attempts;
  options.retry_backoff = config.retry_backoff;
  return options;
}

WorkerOptions WorkerOptionsOf(const WorkerConfig& config) {
  WorkerOptions options;
  options.max_concurrent_jobs = std::max(1, config.max_concurrent_jobs);
  options.heartbeat_interval = config.heartbeat_interval;
  options.lease_scan_interval = config.lease_scan_interval;
  return options;
}

JanitorOptions JanitorOptionsOf(const WorkerConfig& config) {
  JanitorOptions options;
  options.interval = config.janitor_interval;
  options.temp_min_age = config.temp_sweep_age;
  options.retention = config.report_retention;
  return options;
}

}  // namespace

absl::StatusOr<std::unique_ptr<WorkerModule>> WorkerModule::Create(const WorkerConfig& config,
                                                                   WorkerDeps deps) {
  auto storage = reports::OpenArtifactStorage(config.artifacts);
  if (!storage.ok()) {
    return storage.status();
  }
  std::unique_ptr<WorkerModule> module(new WorkerModule(config, deps, *std::move(storage)));
  kafka::ConsumerOptions options;
  options.brokers = config.kafka_brokers;
  options.group_id = config.consumer_group;
  options.topics = {config.requested_topic};
  options.client_id = module->worker_id();
  options.max_batch = 50;
  options.assignment_strategy = "cooperative-sticky";
  Worker* worker = &module->worker_;
  auto consumer = kafka::KafkaConsumer::Create(
      options,
      [worker](const std::vector<kafka::Message>& batch) { return worker->HandleBatch(batch); },
      module->first_assignment_.Handler());
  if (!consumer.ok()) {
    return consumer.status();
  }
  module->consumer_ = *std::move(consumer);
  return module;
}

WorkerModule::WorkerModule(const WorkerConfig& config, WorkerDeps deps,
                           std::unique_ptr<reports::ArtifactStorage> storage)
    : storage_(std::move(storage)),
      store_(StoreOptions(config), &deps.cluster->primary()),
      source_(SourceOptions(config), deps.cluster),
      runner_(RunnerOptionsOf(config), &store_, &source_, storage_.get(), deps.registry),
      worker_(WorkerOptionsOf(config), &store_, &runner_, deps.registry),
      janitor_store_(&deps.cluster->primary()),
      janitor_(JanitorOptionsOf(config), &janitor_store_, storage_.get(), deps.registry) {
  if (config.outbox_relay) {
    publisher_ = std::make_unique<outbox::KafkaPublisher>(deps.producer);
    outbox::RelayOptions options;
    options.table = reports::kOutboxTable;
    options.listen_url = config.outbox_listen_url;
    relay_ = std::make_unique<outbox::OutboxRelay>(options, &deps.cluster->primary(),
                                                   publisher_.get(), deps.registry);
  }
}

WorkerModule::~WorkerModule() { Stop(); }

void WorkerModule::Start() {
  if (relay_ != nullptr) {
    relay_->Start();
  }
  worker_.Start();
  janitor_.Start();
  started_ = true;
  consuming_ = std::thread([this] { consumer_->Run(); });
}

void WorkerModule::Stop() {
  if (consumer_ != nullptr) {
    // A consumer that never ran has no assignment to wait for.
    first_assignment_.StopAndClose(&consumer_, &consuming_,
                                   started_ ? absl::Seconds(5) : absl::ZeroDuration());
  }
  worker_.Stop();
  janitor_.Stop();
  if (relay_ != nullptr) {
    relay_->Stop();
  }
}

}  // namespace kurt::report_worker
