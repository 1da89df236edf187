#include "platform/grpc/server.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>

#include "absl/container/flat_hash_map.h"
#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/support/server_interceptor.h"
#include "platform/core/config.h"
#include "platform/core/log.h"
#include "platform/grpc/edge_trust.h"

ABSL_FLAG(int, grpc_port, 0, "gRPC port (the binary sets its own default)");
ABSL_FLAG(absl::Duration, grpc_max_connection_age, absl::Minutes(2),
          "A gRPC server ends each client connection after about this long (calls in flight "
          "finish), so that clients resolve again and spread over new replicas (0: never)");

ABSL_FLAG(int, h2_port, -1,
          "Port of Kurt's own HTTP/2 server for the service's hottest methods (kurt-links' "
          "Resolve), beside the gRPC port, with its TLS, edge trust and metrics; -1: none");

namespace kurt::platform {
namespace {

using grpc::experimental::InterceptionHookPoints;

const char* CodeName(grpc::StatusCode code) {
  static const char* const kNames[] = {"OK",
                                       "CANCELLED",
                                       "UNKNOWN",
                                       "INVALID_ARGUMENT",
                                       "DEADLINE_EXCEEDED",
                                       "NOT_FOUND",
                                       "ALREADY_EXISTS",
                                       "PERMISSION_DENIED",
                                       "RESOURCE_EXHAUSTED",
                                       "FAILED_PRECONDITION",
                                       "ABORTED",
                                       "OUT_OF_RANGE",
                                       "UNIMPLEMENTED",
                                       "INTERNAL",
                                       "UNAVAILABLE",
                                       "DATA_LOSS",
                                       "UNAUTHENTICATED"};
  int i = static_cast<int>(code);
  return i >= 0 && i <= 16 ? kNames[i] : "UNKNOWN";
}

struct RpcMetrics {
  metrics::Family<metrics::Counter>* requests;
  metrics::Family<metrics::Histogram>* latency;
};

// Counts every RPC by method and status code and observes its latency; lives for one call.
class MetricsInterceptor : public grpc::experimental::Interceptor {
 public:
  MetricsInterceptor(grpc::experimental::ServerRpcInfo* info, const RpcMetrics* metrics)
      : metrics_(metrics), start_(absl::Now()) {
    // "/package.Service/Method"
    std::vector<absl::string_view> parts = absl::StrSplit(info->method(), '/');
    if (parts.size() == 3) {
      service_ = std::string(parts[1]);
      method_ = std::string(parts[2]);
    } else {
      method_ = info->method();
    }
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      grpc::Status status = methods->GetSendStatus();
      metrics_->requests->WithLabels({service_, method_, CodeName(status.error_code())})
          .Increment();
      metrics_->latency->WithLabels({service_, method_}).ObserveDuration(absl::Now() - start_);
    }
    methods->Proceed();
  }

 private:
  const RpcMetrics* metrics_;
  absl::Time start_;
  std::string service_;
  std::string method_;
};

class MetricsInterceptorFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit MetricsInterceptorFactory(RpcMetrics metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new MetricsInterceptor(info, &metrics_);
  }

 private:
  RpcMetrics metrics_;
};

}  // namespace

GrpcServerOptions GrpcServerOptions::FromFlags(std::string name) {
  GrpcServerOptions o;
  o.name = std::move(name);
  o.host = absl::GetFlag(FLAGS_listen_host);
  o.grpc_port = absl::GetFlag(FLAGS_grpc_port);
  o.metrics_port = absl::GetFlag(FLAGS_metrics_port);
  o.shutdown_grace = absl::GetFlag(FLAGS_shutdown_grace);
  o.max_connection_age = absl::GetFlag(FLAGS_grpc_max_connection_age);
  o.h2_port = absl::GetFlag(FLAGS_h2_port);
  o.edge_secret = absl::GetFlag(FLAGS_edge_secret);
  o.tls = TlsFiles::FromFlags();
  return o;
}

GrpcServer::GrpcServer(GrpcServerOptions options, metrics::Registry* registry)
    : options_(std::move(options)), registry_(registry) {}

GrpcServer::~GrpcServer() { Shutdown(); }

void GrpcServer::AddService(grpc::Service* service) { services_.push_back(service); }

void GrpcServer::AddAsyncMethod(AsyncMethod* method) { async_methods_.push_back(method); }

void GrpcServer::AddH2Method(std::string path, H2Handler handler) {
  h2_methods_.emplace_back(std::move(path), std::move(handler));
}

void GrpcServer::OnShutdown(std::function<void()> hook) {
  shutdown_hooks_.push_back(std::move(hook));
}

absl::Status GrpcServer::Start() {
  // Ours (platform/grpc/health.h), not gRPC's on its callback API.
  grpc::EnableDefaultHealthCheckService(false);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  grpc::ServerBuilder builder;
  std::string address = absl::StrCat(options_.host.find(':') != std::string::npos
                                         ? absl::StrCat("[", options_.host, "]")
                                         : options_.host,
                                     ":", options_.grpc_port);
  absl::StatusOr<std::optional<TlsConfig>> tls = LoadTls(options_.tls);
  if (!tls.ok()) {
    return tls.status();
  }
  const std::optional<TlsConfig> tls_config = *tls;
  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials();
  metrics::Counter* refused = nullptr;
  if (!options_.edge_secret.empty() || tls->has_value()) {
    refused =
        &registry_
             ->AddCounter("kurt_grpc_server_untrusted_calls_total",
                          "Calls refused for carrying x-kurt-account-id without the edge's secret "
                          "or certificate")
             .Get();
    credentials = EdgeTrustingServerCredentials(options_.edge_secret, *std::move(tls),
                                                [refused] { refused->Increment(); });
  }
  builder.AddListeningPort(address, credentials, &grpc_port_);
  builder.RegisterService(&health_);
  for (grpc::Service* s : services_) {
    builder.RegisterService(s);
  }
  if (!async_methods_.empty()) {
    for (int i = 0; i < std::max(options_.async_queues, 1); ++i) {
      queues_.push_back(std::make_unique<ServerQueue>(builder.AddCompletionQueue()));
    }
  }
  // Handlers block on Redis and PostgreSQL: keep enough polling threads around that a burst
  // does not make gRPC create and destroy a thread per call (its defaults are 1 to 2 pollers).
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::NUM_CQS, options_.sync_cqs);
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MIN_POLLERS,
                              options_.sync_min_pollers);
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS,
                              options_.sync_max_pollers);
  // Keep-alive pings let clients notice a dead connection; generous limits for bursts.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // Clients re-resolve only when a connection ends: without an age, replicas added by the
  // autoscaler would get no calls from clients already connected (gRPC adds ±10 % jitter).
  if (options_.max_connection_age > absl::ZeroDuration()) {
    builder.AddChannelArgument(
        GRPC_ARG_MAX_CONNECTION_AGE_MS,
        static_cast<int>(
            std::min<int64_t>(absl::ToInt64Milliseconds(options_.max_connection_age), INT32_MAX)));
  }

  RpcMetrics rpc_metrics;
  rpc_metrics.requests = &registry_->AddCounter("kurt_grpc_server_requests_total",
                                                "RPCs handled, by method and status code",
                                                {"service", "method", "code"});
  rpc_metrics.latency = &registry_->AddHistogram("kurt_grpc_server_latency_seconds",
                                                 "Time from the start of an RPC to its status",
                                                 {"service", "method"});
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
  creators.push_back(std::make_unique<MetricsInterceptorFactory>(rpc_metrics));
  builder.experimental().SetInterceptorCreators(std::move(creators));

  server_ = builder.BuildAndStart();
  if (!server_ || grpc_port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen for gRPC on ", address));
  }
  for (const std::unique_ptr<ServerQueue>& queue : queues_) {
    for (AsyncMethod* method : async_methods_) {
      method->Serve(queue.get());
    }
    queue->Start();
  }
  if (options_.h2_port >= 0 && !h2_methods_.empty()) {
    if (absl::Status started =
            StartH2(tls_config, rpc_metrics.requests, rpc_metrics.latency, refused);
        !started.ok()) {
      return started;
    }
  }
  health_.SetServing(true);

  if (options_.metrics_port >= 0) {
    admin_ = std::make_unique<AdminHttpServer>(registry_, [this] { return serving_.load(); });
    absl::StatusOr<int> port = admin_->Start(options_.host, options_.metrics_port);
    if (!port.ok()) {
      return port.status();
    }
    metrics_port_ = *port;
  }
  serving_ = true;
  KURT_LOG(kInfo, "serving", {"grpc", absl::StrCat(options_.host, ":", grpc_port_)},
           {"h2", h2_ != nullptr ? absl::StrCat(options_.host, ":", h2_port_) : "none"},
           {"tls", options_.tls.enabled() ? "mutual" : "off"},
           {"http", absl::StrCat(options_.host, ":", metrics_port_)});
  return absl::OkStatus();
}

absl::Status GrpcServer::StartH2(const std::optional<TlsConfig>& tls,
                                 metrics::Family<metrics::Counter>* requests,
                                 metrics::Family<metrics::Histogram>* latency,
                                 metrics::Counter* refused) {
  H2ServerOptions h2;
  h2.host = options_.host;
  h2.port = options_.h2_port;
  h2.io_threads = options_.h2_io_threads;
  h2.tls = tls;
  h2.max_connection_age = options_.max_connection_age;
  // The series of each method served, found once (a code's the first time it is answered), not
  // per call: WithLabels builds its label vector and looks it up.
  struct MethodSeries {
    std::vector<std::string> labels;  // service, method
    std::array<std::atomic<metrics::Counter*>, 17> by_code{};
    metrics::Histogram* latency = nullptr;
  };
  auto series = std::make_shared<absl::flat_hash_map<std::string, std::unique_ptr<MethodSeries>>>();
  auto labels_of = [](absl::string_view path) {
    std::vector<std::string> parts = absl::StrSplit(path, '/');
    return parts.size() == 3 ? std::vector<std::string>{parts[1], parts[2]}
                             : std::vector<std::string>{"", std::string(path)};
  };
  for (const auto& [path, handler] : h2_methods_) {
    auto s = std::make_unique<MethodSeries>();
    s->labels = labels_of(path);
    s->latency = &latency->WithLabels(s->labels);
    (*series)[path] = std::move(s);
  }
  h2.observe = [series, labels_of, requests, latency](absl::string_view path, grpc::StatusCode code,
                                                      absl::Duration took) {
    const int c = static_cast<int>(code) >= 0 && static_cast<int>(code) <= 16
                      ? static_cast<int>(code)
                      : static_cast<int>(grpc::StatusCode::UNKNOWN);
    auto it = series->find(path);
    if (it == series->end()) {  // a method not served here (UNIMPLEMENTED)
      std::vector<std::string> labels = labels_of(path);
      latency->WithLabels(labels).ObserveDuration(took);
      labels.emplace_back(CodeName(code));
      requests->WithLabels(labels).Increment();
      return;
    }
    MethodSeries& s = *it->second;
    metrics::Counter* counter = s.by_code[c].load(std::memory_order_acquire);
    if (counter == nullptr) {
      std::vector<std::string> labels = s.labels;
      labels.emplace_back(CodeName(code));
      counter = &requests->WithLabels(labels);
      s.by_code[c].store(counter, std::memory_order_release);
    }
    counter->Increment();
    s.latency->ObserveDuration(took);
  };
  h2_ = std::make_unique<H2Server>(std::move(h2));
  auto rule = std::make_shared<const EdgeTrustRule>(options_.edge_secret, tls.has_value());
  for (auto& [path, handler] : h2_methods_) {
    // What EdgeTrustingServerCredentials does on the gRPC port, before the handler.
    h2_->AddMethod(path, [rule, refused, handler = std::move(handler)](H2Request&& request,
                                                                       H2Responder respond) {
      EdgeTrustHeaders headers;
      for (const auto& [name, value] : request.metadata) {
        headers.See(name, value);
      }
      const bool names_edge = request.peer_names != nullptr &&
                              std::find(request.peer_names->begin(), request.peer_names->end(),
                                        kEdgeIdentity) != request.peer_names->end();
      EdgeTrustVerdict verdict = rule->Judge(request.path, headers, names_edge);
      request.from_edge = verdict.from_edge;
      if (!verdict.status.ok()) {
        if (refused != nullptr) {
          refused->Increment();
        }
        respond(grpc::Status(static_cast<grpc::StatusCode>(verdict.status.code()),
                             std::string(verdict.status.message())));
        return;
      }
      if (verdict.drop_secrets) {
        std::erase_if(request.metadata,
                      [](const auto& entry) { return entry.first == kEdgeSecretMetadata; });
      }
      handler(std::move(request), std::move(respond));
    });
  }
  absl::StatusOr<int> port = h2_->Start();
  if (!port.ok()) {
    return port.status();
  }
  h2_port_ = *port;
  return absl::OkStatus();
}

void GrpcServer::Wait() {
  int sig = WaitForShutdownSignal();
  KURT_LOG(kInfo, "shutting down", {"signal", sig});
  Shutdown();
}

void GrpcServer::Shutdown() {
  if (shut_down_ || !server_) {
    return;
  }
  shut_down_ = true;
  serving_ = false;
  // NOT_SERVING, and every health Watch ends: they do not hold up the calls' grace period.
  health_.Shutdown();
  // Stops accepting calls; in-flight ones get the grace period, then are cancelled. The h2 port's
  // connections get their GOAWAY first, and the rest of the same grace period.
  const absl::Time grace_ends = absl::Now() + options_.shutdown_grace;
  if (h2_ != nullptr) {
    h2_->Drain();
  }
  server_->Shutdown(absl::ToChronoTime(grace_ends));
  if (h2_ != nullptr) {
    h2_->Shutdown(grace_ends - absl::Now());
  }
  // The synchronous calls have finished. An asynchronous one may still be served (its answer
  // comes later, from another thread): each queue serves until its calls have ended, then what
  // is left on it is requests the shutdown ended.
  for (const std::unique_ptr<ServerQueue>& queue : queues_) {
    queue->WaitForCalls();
    queue->Shutdown();
  }
  for (auto it = shutdown_hooks_.rbegin(); it != shutdown_hooks_.rend(); ++it) {
    (*it)();
  }
  if (admin_) {
    admin_->Stop();
  }
  KURT_LOG(kInfo, "stopped");
}

}  // namespace kurt::platform
