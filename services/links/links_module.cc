#include "services/links/links_module.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "platform/core/log.h"
#include "platform/grpc/h2_method.h"

namespace kurt::links {
namespace {

LinkCacheOptions CacheOptions(const LinksConfig& config) {
  LinkCacheOptions options;
  options.ttl = config.cache_ttl;
  options.miss_ttl = config.cache_miss_ttl;
  options.key_prefix = config.cache_key_prefix;
  options.changes_channel = config.redirect_changes_channel;
  options.record_secret = config.record_secret;
  return options;
}

// What a code changed by this process keeps away from the replica for: the lag bound, plus
// headroom for the lag measurement's own delay.
absl::Duration RecentWindow(const LinksConfig& config) {
  return config.max_replica_lag + absl::Seconds(5);
}

absl::Status Validate(const LinksConfig& config, const LinksDeps& deps) {
  if (deps.cluster == nullptr || deps.redis == nullptr || deps.producer == nullptr ||
      deps.registry == nullptr) {
    return absl::InvalidArgumentError("deps: cluster, redis, producer and registry are required");
  }
  if (config.short_url_base.empty()) {
    return absl::InvalidArgumentError("short_url_base: required");
  }
  if (config.clicks_topic.empty()) {
    return absl::InvalidArgumentError("clicks_topic: required");
  }
  if (config.click_ack_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "click_ack_timeout: must be positive (a redirect waits that long at most for its click)");
  }
  for (const auto& [name, value] : {std::pair{"cache_ttl", config.cache_ttl},
                                    std::pair{"cache_miss_ttl", config.cache_miss_ttl},
                                    std::pair{"max_replica_lag", config.max_replica_lag},
                                    std::pair{"click_flush_timeout", config.click_flush_timeout}}) {
    if (value < absl::ZeroDuration()) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": must not be negative"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<LinksModule>> LinksModule::Create(const LinksConfig& config,
                                                                 LinksDeps deps) {
  if (absl::Status s = Validate(config, deps); !s.ok()) {
    return s;
  }
  std::unique_ptr<CountryLookup> countries;
  if (!config.geoip_file.empty() || !config.geoip6_file.empty()) {
    absl::StatusOr<std::unique_ptr<CountryLookup>> loaded =
        CountryLookup::Load(config.geoip_file, config.geoip6_file);
    if (!loaded.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("geoip_file, geoip6_file: ", loaded.status().message()));
    }
    countries = *std::move(loaded);
    KURT_LOG(kInfo, "country tables loaded", {"ipv4_ranges", countries->ipv4_ranges()},
             {"ipv6_ranges", countries->ipv6_ranges()});
  }
  std::unique_ptr<user_agent::UapRegexes> agents;
  if (!config.uap_regexes_file.empty()) {
    absl::StatusOr<std::unique_ptr<user_agent::UapRegexes>> loaded =
        user_agent::UapRegexes::Load(config.uap_regexes_file);
    if (!loaded.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("uap_regexes_file: ", loaded.status().message()));
    }
    agents = *std::move(loaded);
    KURT_LOG(kInfo, "uap-core parsers loaded", {"device_parsers", agents->device_parsers()},
             {"os_parsers", agents->os_parsers()}, {"skipped", agents->skipped().size()});
  }
  return std::unique_ptr<LinksModule>(
      new LinksModule(config, deps, std::move(countries), std::move(agents)));
}

LinksModule::LinksModule(const LinksConfig& config, const LinksDeps& deps,
                         std::unique_ptr<CountryLookup> countries,
                         std::unique_ptr<user_agent::UapRegexes> agents)
    : producer_(deps.producer),
      unhurried_producer_(deps.unhurried_producer),
      click_flush_timeout_(config.click_flush_timeout),
      store_(deps.cluster, deps.registry),
      cache_(deps.redis, CacheOptions(config)),
      resolver_(&store_, &cache_, deps.registry, RecentWindow(config)),
      countries_(std::move(countries)),
      agents_(std::move(agents)),
      agent_classes_(agents_.get(), config.user_agent_cache_entries),
      clicks_(deps.producer, config.clicks_topic, config.click_hash_salt, deps.registry,
              countries_.get(), deps.unhurried_producer),
      passwords_(config.passwords),
      unlock_failures_(deps.redis, config.unlock_key_prefix),
      rpcs_(LinksRpcsOptions{.short_url_base = config.short_url_base,
                             .click_ack_timeout = config.click_ack_timeout,
                             .visitors = {&agent_classes_, countries_.get()},
                             .unlock_limits = config.unlock_limits},
            &store_, &resolver_, &clicks_, &passwords_, &unlock_failures_),
      service_(&rpcs_),
      resolve_(&service_, &LinksService::RequestResolve, &rpcs_, &LinksRpcs::ResolveAsync,
               platform::Access::kAnyCaller) {}

void LinksModule::AddTo(platform::GrpcServer* server) {
  server->AddService(&service_);
  server->AddAsyncMethod(&resolve_);
  // The same Resolve on the server's h2 port, when it has one (--h2_port).
  server->AddH2Method(
      absl::StrCat("/", v1::LinksService::service_full_name(), "/Resolve"),
      platform::H2UnaryHandler(&rpcs_, &LinksRpcs::ResolveAsync, platform::Access::kAnyCaller));
  server->OnShutdown([this] { FlushClicks(); });
}

void LinksModule::FlushClicks() {
  // One after the other within the one timeout: the second has had the first's wait to send.
  const absl::Time deadline = absl::Now() + click_flush_timeout_;
  for (kafka::KafkaProducer* producer : {producer_, unhurried_producer_}) {
    if (producer == nullptr) {
      continue;
    }
    if (absl::Status s = producer->Flush(std::max(deadline - absl::Now(), absl::ZeroDuration()));
        !s.ok()) {
      KURT_LOG(kWarn, "click events left unsent", {"error", s.ToString()});
    }
  }
}

}  // namespace kurt::links
