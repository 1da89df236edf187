// The one place the links service is wired: LinksModule::Create builds its store, cache,
// resolver, click sink, RPCs and gRPC service from a LinksConfig and the clients its caller
// built. main.cc and every test harness that serves links call it.
//
// A module lives as long as the server it is added to (the clients in LinksDeps outlive it);
// Create and AddTo run on one thread before the server starts, the service then on gRPC's.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "platform/core/metrics.h"
#include "platform/grpc/async_method.h"
#include "platform/grpc/server.h"
#include "platform/kafka/kafka.h"
#include "platform/pg/pg.h"
#include "platform/redis/redis.h"
#include "services/common/mesh.h"
#include "services/common/user_agent.h"
#include "services/links/click_publisher.h"
#include "services/links/link_cache.h"
#include "services/links/links_rpcs.h"
#include "services/links/links_service.h"
#include "services/links/links_store.h"
#include "services/links/resolver.h"

namespace kurt::links {

// Everything kurt-links' own flags set (main.cc names each flag).
struct LinksConfig {
  // Prefix of the short URLs returned (the edge's public address).
  std::string short_url_base = LinksRpcsOptions().short_url_base;
  // Secret mixed into client address hashes; the same on every replica.
  std::string click_hash_salt = "kurt-local-development-salt";
  std::string clicks_topic = mesh::kClicksTopic;
  // How long Redis keeps a resolved link (± the cache's jitter) and a confirmed unknown code.
  absl::Duration cache_ttl = LinkCacheOptions().ttl;
  absl::Duration cache_miss_ttl = LinkCacheOptions().miss_ttl;
  // Namespaces the cache's keys (tests sharing one Redis give each their own).
  std::string cache_key_prefix = LinkCacheOptions().key_prefix;
  // Where updates and deletes are announced to the edges' caches (empty: not announced).
  std::string redirect_changes_channel = mesh::kRedirectChangesChannel;
  // Seals the cached links (--redis_record_secret; the same on every replica).
  std::string record_secret = redis::kDevelopmentRecordSecret;
  // The replica lag bound of the database cluster: a code this process changed is read from the
  // primary for this long plus 5 s, since a replica's copy may predate the change.
  absl::Duration max_replica_lag = absl::Seconds(2);
  // How long a redirect waits at most for Kafka to have its click (LinksRpcsOptions).
  absl::Duration click_ack_timeout = LinksRpcsOptions().click_ack_timeout;
  // How long a shutdown waits for queued click events to reach Kafka.
  absl::Duration click_flush_timeout = absl::Seconds(10);
  // The country tables click events take their country from (CountryLookup; Debian's
  // tor-geoipdb). Both empty: click events carry no country.
  std::string geoip_file = "/usr/share/tor/geoip";
  std::string geoip6_file = "/usr/share/tor/geoip6";
  // uap-core's regexes.yaml, by which redirect rules' device and os conditions read the
  // User-Agent (services/common/user_agent.h). Empty: those conditions never hold.
  std::string uap_regexes_file = "/usr/share/uap-core/regexes.yaml";
  // How many User-Agents' classifications are kept (ClassificationCache).
  size_t user_agent_cache_entries = 20000;
  // Wrong passwords allowed on a protected link (links_rpcs.h), counted in Redis under this
  // prefix (tests take one of their own), and the cost of hashing passwords.
  UnlockLimits unlock_limits;
  std::string unlock_key_prefix = "kurt:unlock:";
  PasswordHasherOptions passwords;
};

// The clients links uses, built by the caller; each outlives the module.
struct LinksDeps {
  pg::PgCluster* cluster = nullptr;
  redis::RedisClient* redis = nullptr;
  kafka::KafkaProducer* producer = nullptr;  // of the click events
  metrics::Registry* registry = nullptr;
  // Of the click events no redirect waits for (ClickWait::kNothingWaits), with a linger; null:
  // `producer` takes those too.
  kafka::KafkaProducer* unhurried_producer = nullptr;
};

class LinksModule {
 public:
  // INVALID_ARGUMENT naming the field when the config cannot work (a negative duration, no
  // topic, a table or regexes file that cannot be read) or a client is missing.
  static absl::StatusOr<std::unique_ptr<LinksModule>> Create(const LinksConfig& config,
                                                             LinksDeps deps);

  // Serves kurt.links.v1.LinksService on `server` (its Resolve on the server's completion
  // queues, and on its h2 port when it has one), and flushes click events when it shuts down.
  // Before server->Start().
  void AddTo(platform::GrpcServer* server);
  // Waits up to click_flush_timeout for the click events queued so far to reach Kafka; logs what
  // is left.
  void FlushClicks();

  LinksRpcs& rpcs() { return rpcs_; }
  // The redirect's cache (tests read and drop its keys).
  RedisLinkCache& cache() { return cache_; }

 private:
  LinksModule(const LinksConfig& config, const LinksDeps& deps,
              std::unique_ptr<CountryLookup> countries,
              std::unique_ptr<user_agent::UapRegexes> agents);

  kafka::KafkaProducer* producer_;
  kafka::KafkaProducer* unhurried_producer_;  // may be null
  const absl::Duration click_flush_timeout_;
  PgLinksStore store_;
  RedisLinkCache cache_;
  Resolver resolver_;
  std::unique_ptr<CountryLookup> countries_;        // null: no country tables
  std::unique_ptr<user_agent::UapRegexes> agents_;  // null: no uap-core regexes
  user_agent::ClassificationCache agent_classes_;
  KafkaClickSink clicks_;
  PasswordHasher passwords_;
  RedisFailureThrottle unlock_failures_;
  LinksRpcs rpcs_;
  LinksService service_;
  platform::AsyncUnaryMethod<LinksService, v1::ResolveRequest, v1::ResolveResponse, LinksRpcs>
      resolve_;
};

}  // namespace kurt::links
