// The bootstrap every gRPC service binary uses: health checking (grpc.health.v1,
// platform/grpc/health.h), reflection, metrics for every RPC (kurt_grpc_server_*), mutual TLS when
// configured (--tls_cert, --tls_key, --tls_ca; platform/grpc/tls.h), trust in x-kurt-account-id
// only from the edge (--edge_secret or its certificate, platform/grpc/edge_trust.h), the admin
// HTTP server (plaintext), and a graceful SIGTERM: mark NOT_SERVING (health watches end), stop
// accepting, let in-flight calls finish within the grace period,
// then run the shutdown hooks (flush producers, commit offsets) in reverse order of registration.
//
// Methods served on the asynchronous API (platform/grpc/async_method.h) run on completion queues
// the server owns, each read by a thread of its own; they keep being read while a shutdown waits
// for the calls in flight, and stop after it.
//
// The hottest methods may also be served on a second port by Kurt's own HTTP/2 server
// (platform/grpc/h2_server.h, platform/grpc/h2_method.h; --h2_port), with the same TLS, the same
// trust in the edge and the same metrics; it drains and stops with the gRPC port.
//
// Lives in main for the whole process; AddService, AddAsyncMethod and OnShutdown before Start,
// from one thread.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "platform/core/metrics.h"
#include "platform/grpc/async_method.h"
#include "platform/grpc/h2_server.h"
#include "platform/grpc/health.h"
#include "platform/grpc/tls.h"
#include "platform/http/admin_http.h"

ABSL_DECLARE_FLAG(int, grpc_port);
ABSL_DECLARE_FLAG(absl::Duration, grpc_max_connection_age);
ABSL_DECLARE_FLAG(int, h2_port);

namespace kurt::platform {

struct GrpcServerOptions {
  std::string name;  // e.g. "links": the log component and a metric label
  std::string host = "127.0.0.1";
  int grpc_port = 0;     // 0 picks a free port (tests)
  int metrics_port = 0;  // 0 picks a free port (tests); -1 disables the admin server
  absl::Duration shutdown_grace = absl::Seconds(10);
  // Non-empty: calls carrying x-kurt-account-id without this x-kurt-edge-secret are refused
  // (UNAUTHENTICATED) before any handler runs; see platform/grpc/edge_trust.h.
  std::string edge_secret;
  // Set: the gRPC port is mutual TLS (a client certificate signed by the CA is required); Start
  // fails naming what is wrong when the files are incomplete or unreadable. Empty: plaintext.
  TlsFiles tls;
  // Each client connection is ended (GOAWAY; calls in flight finish) after about this long, so
  // that clients resolve the service again and reach replicas added since. Zero: never.
  absl::Duration max_connection_age = absl::Minutes(2);
  // Threads of the synchronous server: completion queues, and pollers per queue.
  int sync_cqs = 2;
  int sync_min_pollers = 8;
  int sync_max_pollers = 64;
  // Completion queues, one thread each, of the methods served on the asynchronous API. One
  // thread reads, and writes, every call of theirs: no hop between threads inside gRPC.
  int async_queues = 1;
  // The port of the methods added with AddH2Method (-1: none served; 0 picks a free port), and the
  // I/O threads that serve it.
  int h2_port = -1;
  int h2_io_threads = 1;
  // Fills host, ports, grace, connection age, the edge secret and TLS from the standard flags.
  static GrpcServerOptions FromFlags(std::string name);
};

class GrpcServer {
 public:
  GrpcServer(GrpcServerOptions options, metrics::Registry* registry);
  ~GrpcServer();

  void AddService(grpc::Service* service);
  // Serves `method` on the server's completion queues; its service is added with AddService.
  // `method` outlives the server.
  void AddAsyncMethod(AsyncMethod* method);
  // Serves `path` on the h2 port too (when there is one), with `handler`
  // (platform::H2UnaryHandler): a call naming an account without the edge's proof is refused
  // there as on the gRPC port, and a secret that proves nothing is removed before the handler.
  void AddH2Method(std::string path, H2Handler handler);
  void OnShutdown(std::function<void()> hook);

  absl::Status Start();
  int grpc_port() const { return grpc_port_; }
  // 0 when no h2 port is served.
  int h2_port() const { return h2_port_; }
  int metrics_port() const { return metrics_port_; }

  // Blocks until SIGTERM/SIGINT, then shuts down gracefully.
  void Wait();
  // Graceful shutdown without a signal (tests).
  void Shutdown();

 private:
  absl::Status StartH2(const std::optional<TlsConfig>& tls,
                       metrics::Family<metrics::Counter>* requests,
                       metrics::Family<metrics::Histogram>* latency, metrics::Counter* refused);

  GrpcServerOptions options_;
  metrics::Registry* registry_;
  std::vector<grpc::Service*> services_;
  HealthService health_;
  std::vector<AsyncMethod*> async_methods_;
  std::vector<std::function<void()>> shutdown_hooks_;
  std::vector<std::unique_ptr<ServerQueue>> queues_;  // of async_methods_
  std::vector<std::pair<std::string, H2Handler>> h2_methods_;
  std::unique_ptr<grpc::Server> server_;  // after queues_: destroyed before them
  std::unique_ptr<H2Server> h2_;
  std::unique_ptr<AdminHttpServer> admin_;
  std::atomic<bool> serving_{false};
  bool shut_down_ = false;
  int grpc_port_ = 0;
  int h2_port_ = 0;
  int metrics_port_ = 0;
};

}  // namespace kurt::platform
