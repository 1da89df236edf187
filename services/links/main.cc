// kurt-links: the links gRPC service (short links and the redirect's Resolve).
#include "absl/flags/flag.h"
#include "platform/core/config.h"
#include "platform/grpc/server.h"
#include "platform/kafka/kafka.h"
#include "platform/core/log.h"
#include "platform/pg/pg.h"
#include "platform/redis/redis.h"
#include "services/links/click_publisher.h"
#include "services/links/link_cache.h"
#include "services/links/links_service.h"
#include "services/links/links_store.h"
#include "services/links/resolver.h"

ABSL_FLAG(std::string, short_url_base, "http://127.0.0.1:8080/",
          "Prefix of the short URLs returned (the edge's public address)");
ABSL_FLAG(std::string, click_hash_salt, "kurt-local-development-salt",
          "Secret mixed into client address hashes; the same on every replica");
ABSL_FLAG(std::string, clicks_topic, kurt::links::kClicksTopic, "Kafka topic of click events");
ABSL_FLAG(int, cache_ttl_seconds, 300, "How long Redis keeps a resolved link (±20% jitter)");
ABSL_FLAG(int, cache_miss_ttl_seconds, 10, "How long Redis keeps a confirmed unknown code");
ABSL_FLAG(int, max_replica_lag_ms, 2000, "A replica further behind is not read");
ABSL_FLAG(int, pg_pool_size, 16, "Connections per database pool");

int main(int argc, char** argv) {
  kurt::platform::SetFlagDefault(&FLAGS_grpc_port, 7101);
  kurt::platform::SetFlagDefault(&FLAGS_metrics_port, 9101);
  kurt::platform::InitProcess(argc, argv, "links", "kurt-links: the links gRPC service");

  kurt::metrics::Registry registry;
  kurt::pg::ClusterOptions pg_options =
      kurt::pg::PgCluster::OptionsFromFlags(absl::GetFlag(FLAGS_pg_pool_size));
  pg_options.max_replica_lag = absl::Milliseconds(absl::GetFlag(FLAGS_max_replica_lag_ms));
  kurt::pg::PgCluster cluster(pg_options);

  auto redis_options = kurt::redis::Options::FromUrl(absl::GetFlag(FLAGS_redis_url));
  if (!redis_options.ok()) {
    KURT_LOG(kError, "bad --redis_url", {"error", redis_options.status().ToString()});
    return 2;
  }
  kurt::redis::RedisClient redis(*redis_options);

  kurt::kafka::ProducerOptions producer_options;
  producer_options.brokers = absl::GetFlag(FLAGS_kafka_brokers);
  producer_options.client_id = "kurt-links";
  auto producer = kurt::kafka::KafkaProducer::Create(producer_options);
  if (!producer.ok()) {
    KURT_LOG(kError, "kafka producer", {"error", producer.status().ToString()});
    return 2;
  }

  kurt::links::PgLinksStore store(&cluster, &registry);
  kurt::links::LinkCacheOptions cache_options;
  cache_options.ttl = absl::Seconds(absl::GetFlag(FLAGS_cache_ttl_seconds));
  cache_options.miss_ttl = absl::Seconds(absl::GetFlag(FLAGS_cache_miss_ttl_seconds));
  kurt::links::RedisLinkCache cache(&redis, cache_options);
  kurt::links::Resolver resolver(&store, &cache, &registry,
                                 pg_options.max_replica_lag + absl::Seconds(5));
  kurt::links::KafkaClickSink clicks(producer->get(), absl::GetFlag(FLAGS_clicks_topic),
                                     absl::GetFlag(FLAGS_click_hash_salt), &registry);
  kurt::links::LinksServiceOptions options;
  options.short_url_base = absl::GetFlag(FLAGS_short_url_base);
  kurt::links::LinksService service(options, &store, &resolver, &clicks);

  kurt::platform::GrpcServer server(kurt::platform::GrpcServerOptions::FromFlags("links"),
                                    &registry);
  server.AddService(&service);
  server.OnShutdown([&] {
    absl::Status s = (*producer)->Flush(absl::Seconds(10));
    if (!s.ok()) KURT_LOG(kWarn, "click events left unsent", {"error", s.ToString()});
  });
  if (absl::Status s = server.Start(); !s.ok()) {
    KURT_LOG(kError, "cannot start", {"error", s.ToString()});
    return 1;
  }
  server.Wait();
  return 0;
}
