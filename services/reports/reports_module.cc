#include "services/reports/reports_module.h"

#include <utility>

namespace kurt::reports {
namespace {

PgReportsStoreOptions StoreOptions(const ReportsConfig& config) {
  PgReportsStoreOptions options;
  options.requested_topic = config.requested_topic;
  options.pending_grace = config.pending_grace;
  options.quota = config.quota;
  return options;
}

std::unique_ptr<outbox::KafkaPublisher> PublisherFor(const ReportsConfig& config,
                                                     ReportsDeps deps) {
  if (!config.outbox_relay) {
    return nullptr;
  }
  return std::make_unique<outbox::KafkaPublisher>(deps.producer);
}

std::unique_ptr<outbox::OutboxRelay> RelayFor(const ReportsConfig& config, ReportsDeps deps,
                                              outbox::Publisher* publisher) {
  if (publisher == nullptr) {
    return nullptr;
  }
  outbox::RelayOptions options;
  options.table = kOutboxTable;
  options.listen_url = config.outbox_listen_url;
  return std::make_unique<outbox::OutboxRelay>(options, &deps.cluster->primary(), publisher,
                                               deps.registry);
}

ReportsRpcsOptions RpcsOptions(const ReportsConfig& config) {
  ReportsRpcsOptions options;
  options.max_range = config.max_range;
  options.stream_poll = config.stream_poll;
  options.max_streams_per_account = config.max_streams_per_account;
  return options;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ReportsModule>> ReportsModule::Create(const ReportsConfig& config,
                                                                     ReportsDeps deps) {
  auto storage = OpenArtifactStorage(config.artifacts);
  if (!storage.ok()) {
    return storage.status();
  }
  return std::unique_ptr<ReportsModule>(new ReportsModule(config, deps, *std::move(storage)));
}

ReportsModule::ReportsModule(const ReportsConfig& config, ReportsDeps deps,
                             std::unique_ptr<ArtifactStorage> storage)
    : storage_(std::move(storage)),
      store_(StoreOptions(config), deps.cluster),
      publisher_(PublisherFor(config, deps)),
      relay_(RelayFor(config, deps, publisher_.get())),
      rpcs_(RpcsOptions(config), &store_, storage_.get(), relay_.get(), deps.registry),
      service_(&rpcs_) {}

ReportsModule::~ReportsModule() { Stop(); }

void ReportsModule::Start() {
  if (relay_ != nullptr) {
    relay_->Start();
  }
}

void ReportsModule::Stop() {
  if (relay_ != nullptr) {
    relay_->Stop();
  }
}

}  // namespace kurt::reports
