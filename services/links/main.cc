// kurt-links: the links gRPC service (short links and the redirect's Resolve).
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "platform/core/config.h"
#include "platform/core/log.h"
#include "platform/core/metrics.h"
#include "platform/grpc/server.h"
#include "platform/kafka/kafka.h"
#include "platform/pg/pg.h"
#include "platform/redis/record_seal.h"
#include "platform/redis/redis.h"
#include "services/common/mesh.h"
#include "services/links/links_module.h"

ABSL_FLAG(std::string, short_url_base, kurt::links::LinksConfig().short_url_base,
          "Prefix of the short URLs returned (the edge's public address)");
ABSL_FLAG(std::string, click_hash_salt, kurt::links::LinksConfig().click_hash_salt,
          "Secret mixed into client address hashes; the same on every replica");
ABSL_FLAG(std::string, clicks_topic, kurt::mesh::kClicksTopic, "Kafka topic of click events");
ABSL_FLAG(absl::Duration, click_linger, absl::ZeroDuration(),
          "How long the click producer waits to fill a batch (linger.ms): every redirect waits "
          "for its click's acknowledgement, so this adds to each one's latency; concurrent "
          "redirects share batches whatever it is (the clicks that come while a batch is on its "
          "way go together in the next)");
ABSL_FLAG(absl::Duration, unhurried_click_linger, absl::Milliseconds(10),
          "How long the second click producer, of the clicks no redirect waits for (the edge's "
          "cached redirects when it does not hold them), gathers them before it sends (its "
          "linger.ms): a batch of the edge's reports then goes to Kafka in a few large requests "
          "instead of many small ones");
ABSL_FLAG(absl::Duration, cache_ttl, kurt::links::LinksConfig().cache_ttl,
          "How long Redis keeps a resolved link (±20% jitter)");
ABSL_FLAG(absl::Duration, cache_miss_ttl, kurt::links::LinksConfig().cache_miss_ttl,
          "How long Redis keeps a confirmed unknown code");
ABSL_FLAG(std::string, redirect_changes_channel,
          kurt::links::LinksConfig().redirect_changes_channel,
          "Redis pub/sub channel on which updates and deletes of links are announced, so that "
          "the edges drop the old redirect from their caches (empty: they keep it until it "
          "expires)");
ABSL_FLAG(absl::Duration, max_replica_lag, kurt::links::LinksConfig().max_replica_lag,
          "A replica further behind is not read");
ABSL_FLAG(absl::Duration, click_ack_timeout, kurt::links::LinksConfig().click_ack_timeout,
          "How long a redirect waits at most for Kafka to have its click before it is refused "
          "(UNAVAILABLE)");
ABSL_FLAG(std::string, geoip_file, kurt::links::LinksConfig().geoip_file,
          "IPv4 country table (\"first,last,CC\" lines, Debian's tor-geoipdb) click events take "
          "their country from; with --geoip6_file empty too: no country");
ABSL_FLAG(std::string, geoip6_file, kurt::links::LinksConfig().geoip6_file,
          "IPv6 country table (as --geoip_file)");
ABSL_FLAG(std::string, uap_regexes_file, kurt::links::LinksConfig().uap_regexes_file,
          "uap-core's regexes.yaml, by which redirect rules' device and os conditions read the "
          "User-Agent (empty: those conditions never hold)");
ABSL_FLAG(int, pg_pool_size, 16, "Connections per database pool");

namespace {

kurt::links::LinksConfig ConfigFromFlags() {
  kurt::links::LinksConfig config;
  config.short_url_base = absl::GetFlag(FLAGS_short_url_base);
  config.click_hash_salt = absl::GetFlag(FLAGS_click_hash_salt);
  config.clicks_topic = absl::GetFlag(FLAGS_clicks_topic);
  config.cache_ttl = absl::GetFlag(FLAGS_cache_ttl);
  config.cache_miss_ttl = absl::GetFlag(FLAGS_cache_miss_ttl);
  config.redirect_changes_channel = absl::GetFlag(FLAGS_redirect_changes_channel);
  config.record_secret = kurt::redis::RecordSeal::SecretFromFlags();
  config.max_replica_lag = absl::GetFlag(FLAGS_max_replica_lag);
  config.click_ack_timeout = absl::GetFlag(FLAGS_click_ack_timeout);
  config.geoip_file = absl::GetFlag(FLAGS_geoip_file);
  config.geoip6_file = absl::GetFlag(FLAGS_geoip6_file);
  config.uap_regexes_file = absl::GetFlag(FLAGS_uap_regexes_file);
  return config;
}

}  // namespace

int main(int argc, char** argv) {
  kurt::platform::SetFlagDefault(&FLAGS_grpc_port, kurt::mesh::kLinks.grpc_port);
  kurt::platform::SetFlagDefault(&FLAGS_metrics_port, kurt::mesh::kLinks.metrics_port);
  kurt::platform::InitProcess(argc, argv, "links", "kurt-links: the links gRPC service");
  const kurt::links::LinksConfig config = ConfigFromFlags();

  // First: a wrong Redis password is a configuration error, found before anything slow.
  auto redis = kurt::redis::RedisClient::FromFlags();
  if (!redis.ok()) {
    KURT_LOG(kError, "cannot use Redis", {"error", redis.status().ToString()});
    return 2;
  }

  kurt::metrics::Registry registry;
  kurt::pg::ClusterOptions pg_options =
      kurt::pg::PgCluster::OptionsFromFlags(absl::GetFlag(FLAGS_pg_pool_size));
  pg_options.max_replica_lag = config.max_replica_lag;
  kurt::pg::PgCluster cluster(pg_options);

  kurt::kafka::ProducerOptions producer_options;
  producer_options.brokers = absl::GetFlag(FLAGS_kafka_brokers);
  producer_options.client_id = std::string{kurt::mesh::kLinks.binary};
  producer_options.linger = absl::GetFlag(FLAGS_click_linger);
  auto producer = kurt::kafka::KafkaProducer::Create(producer_options);
  if (!producer.ok()) {
    KURT_LOG(kError, "kafka producer", {"error", producer.status().ToString()});
    return 2;
  }

  producer_options.client_id = absl::StrCat(kurt::mesh::kLinks.binary, "-unhurried");
  producer_options.linger = absl::GetFlag(FLAGS_unhurried_click_linger);
  auto unhurried_producer = kurt::kafka::KafkaProducer::Create(producer_options);
  if (!unhurried_producer.ok()) {
    KURT_LOG(kError, "kafka producer", {"error", unhurried_producer.status().ToString()});
    return 2;
  }

  auto links =
      kurt::links::LinksModule::Create(config, {.cluster = &cluster,
                                                .redis = redis->get(),
                                                .producer = producer->get(),
                                                .registry = &registry,
                                                .unhurried_producer = unhurried_producer->get()});
  if (!links.ok()) {
    KURT_LOG(kError, "bad configuration", {"error", links.status().ToString()});
    return 2;
  }

  kurt::platform::GrpcServer server(kurt::platform::GrpcServerOptions::FromFlags("links"),
                                    &registry);
  (*links)->AddTo(&server);
  if (absl::Status s = server.Start(); !s.ok()) {
    KURT_LOG(kError, "cannot start", {"error", s.ToString()});
    return 1;
  }
  server.Wait();
  return 0;
}
