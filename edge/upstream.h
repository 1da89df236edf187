// The gRPC side of the edge: one set of channels per upstream service (client-side round-robin
// over every address of its target), generic calls with raw protobuf bytes, and health checks.
//
// Upstreams is created in main and outlives every call. Call callbacks run on gRPC's threads.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "edge/h2_upstream.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "platform/grpc/tls.h"

namespace kurt::edge {

// Parses "Service=target[,Service2=target2]" entries; a comma-separated item without '=' is one
// more address of the previous service ("S=10.0.0.1:7101,10.0.0.2:7101"). Returns service ->
// comma-separated addresses. A key "Service/Method" names where one method's calls go instead
// of its service's (kurt-links' Resolve on its h2 port: platform/grpc/h2_server.h); only the h2
// transport takes it, and the service's health still decides whether the method is served.
absl::StatusOr<std::map<std::string, std::string>> ParseUpstreams(
    const std::vector<std::string>& entries);

// The entries of `targets` that name a service, not one of its methods.
std::map<std::string, std::string> ServiceTargets(
    const std::map<std::string, std::string>& targets);

// The gRPC target for a list of addresses: "ipv4:a:1,b:2" for IP literals (round-robin over
// them), "dns:///host:port" for a name (round-robin over what it resolves to); a target that
// already has a scheme is kept.
std::string ChannelTarget(absl::string_view addresses);

// The identity (certificate name) of the Kurt service serving `service` (kurt.links.* ->
// kurt-links); "" for a service that is not one of Kurt's.
std::string ServiceIdentity(absl::string_view service);

// With mTLS, a list of IP addresses (`target` in ChannelTarget's form) has no one name to check the
// servers' certificates against, so each replica of Kurt's `service` must prove to be the service
// (its certificate names kurt-links, whatever its address): that identity, or "" when the name
// dialled is checked as usual (a DNS target, or a service that is not one of Kurt's).
std::string ServerIdentityToCheck(absl::string_view target, absl::string_view service);
// Channel arguments for that (SslTargetNameOverride), as the h2 transport's tls_server_names.
void CheckServersAsService(absl::string_view target, absl::string_view service,
                           grpc::ChannelArguments* args);

// The local default address of a Kurt service by its package (kurt.links.* -> 127.0.0.1:7101,
// ...; the ports of docs/development.md); "" for a service that is not one of Kurt's.
std::string DefaultUpstreamAddress(absl::string_view service, absl::string_view host);

struct UpstreamOptions {
  // Threads that wait on completion queues for unary calls.
  int completion_threads = 1;
  // Connections per service (each its own HTTP/2 connection per address).
  int channels_per_service = 1;
  // How long a connection attempt may take before the channel reports failure.
  absl::Duration connect_timeout = absl::Seconds(1);
  // The longest wait between attempts to reach an upstream that is down: how late at most the
  // edge finds it back (a connection attempt a second per channel costs nothing).
  absl::Duration max_reconnect_backoff = absl::Seconds(1);
  // Per service, the methods whose calls may be sent again to another replica when one fails
  // UNAVAILABLE (once, with a little backoff, throttled when many fail): the redirects, whose
  // calls carry a click id that makes a second one count once.
  std::map<std::string, std::vector<std::string>> retried_methods;
  // Mutual TLS to every upstream (platform/grpc/tls.h), on the channels and on the h2 transport
  // alike; none: plaintext.
  std::optional<platform::TlsConfig> tls;
  // How unary calls go: kH2, on the I/O threads' own HTTP/2 connections (H2Upstreams), or kGrpc,
  // through the channels. Server streams, health checks, API-key checks and the
  // reports of cached redirects always go through the channels.
  enum class Transport { kH2, kGrpc };
  Transport transport = Transport::kH2;
};

// The service config of an upstream's channels: round robin over its replicas that serve
// (client-side health checking), and one retry of the health check and `retried_methods`
// (UpstreamOptions) that fail UNAVAILABLE.
std::string UpstreamServiceConfig(absl::string_view service,
                                  const std::vector<std::string>& retried_methods);

class Upstreams {
 public:
  // `targets`: service full name -> addresses (ParseUpstreams).
  Upstreams(const std::map<std::string, std::string>& targets, const UpstreamOptions& options);
  ~Upstreams();

  // The stub for a service, round-robin over its channels; nullptr when none is configured.
  grpc::GenericStub* Stub(absl::string_view service);
  bool Has(absl::string_view service) const { return upstreams_.contains(service); }

  // Something waiting on one of the completion queues: Proceed runs on that queue's thread.
  class Tag {
   public:
    virtual void Proceed(bool ok) = 0;

   protected:
    ~Tag() = default;
  };

  // A streaming call on one of the completion queues, not started (StartCall, then operations
  // whose tags are Tags). Streams share the unary calls' completion threads for the same reason
  // (AsyncUnary): one use of the callback API starts gRPC's own polling threads, which then read
  // the unary calls' responses off the connections and wake a completion thread for each.
  // `context` and `method` must outlive the call; the reader must go before the context.
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> PrepareStream(grpc::GenericStub* stub,
                                                                      grpc::ClientContext* context,
                                                                      const std::string& method);

  // Starts a unary call; `done` runs on one of the completion threads. `context`, `request`,
  // `response` and `method` must live until then. Unary calls go through completion queues, not
  // the callback API: the thread waiting on a queue also polls the connection, so a response is
  // handled where it is read, without one more wake-up of another gRPC thread per call.
  void AsyncUnary(grpc::GenericStub* stub, grpc::ClientContext* context, const std::string& method,
                  const grpc::ByteBuffer& request, grpc::ByteBuffer* response,
                  std::function<void(const grpc::Status&)> done);

  // What one health check of a service found.
  struct Health {
    std::string service;
    enum class State { kServing, kNotServing, kUnknown } state = State::kUnknown;
    std::string problem;  // "" when serving
  };
  // Calls grpc.health.v1.Health/Check("") on every upstream, through the same channels as the
  // calls (so to a replica the channel would pick); `done` gets one Health per service, in the
  // order of targets(). A service that answers NOT_SERVING, or that no connection reaches, is
  // kNotServing; a check that merely timed out is kUnknown. Runs on gRPC's threads.
  void CheckHealth(absl::Duration timeout, std::function<void(std::vector<Health>)> done);

  // The services' targets (method-level ones are the h2 transport's alone).
  const std::map<std::string, std::string>& targets() const { return targets_; }
  // The unary calls' HTTP/2 client; null with the kGrpc transport.
  H2Upstreams* h2() { return h2_.get(); }

 private:
  struct Upstream {
    std::vector<std::unique_ptr<grpc::GenericStub>> stubs;
    std::atomic<unsigned> next{0};
  };
  std::map<std::string, std::string> targets_;
  absl::flat_hash_map<std::string, std::unique_ptr<Upstream>> upstreams_;
  std::vector<std::unique_ptr<grpc::CompletionQueue>> queues_;
  std::vector<std::thread> threads_;
  std::atomic<unsigned> next_queue_{0};
  std::unique_ptr<H2Upstreams> h2_;

  grpc::CompletionQueue* NextQueue() {
    return queues_[next_queue_.fetch_add(1, std::memory_order_relaxed) % queues_.size()].get();
  }
};

// Serializes raw bytes into a ByteBuffer and back.
grpc::ByteBuffer ToByteBuffer(const std::string& bytes);
std::string FromByteBuffer(const grpc::ByteBuffer& buffer);

}  // namespace kurt::edge
