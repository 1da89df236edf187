#include "edge/upstream.h"

#include <atomic>
#include <mutex>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "boost/asio/ip/address.hpp"
#include "platform/core/log.h"
#include "services/common/mesh.h"

namespace kurt::edge {
namespace {

bool IsIpLiteralAddress(absl::string_view address, bool* v6) {
  // host:port, with [v6]:port for IPv6.
  std::string host;
  if (absl::StartsWith(address, "[")) {
    size_t end = address.find(']');
    if (end == absl::string_view::npos) {
      return false;
    }
    host = std::string(address.substr(1, end - 1));
    *v6 = true;
  } else {
    size_t colon = address.rfind(':');
    if (colon == absl::string_view::npos) {
      return false;
    }
    host = std::string(address.substr(0, colon));
    *v6 = false;
  }
  boost::system::error_code ec;
  boost::asio::ip::make_address(host, ec);
  return !ec;
}

}  // namespace

absl::StatusOr<std::map<std::string, std::string>> ParseUpstreams(
    const std::vector<std::string>& entries) {
  std::map<std::string, std::string> out;
  std::string* last = nullptr;
  for (const std::string& entry : entries) {
    for (absl::string_view item : absl::StrSplit(entry, ',', absl::SkipWhitespace())) {
      item = absl::StripAsciiWhitespace(item);
      size_t eq = item.find('=');
      if (eq == absl::string_view::npos) {
        if (last == nullptr) {
          return absl::InvalidArgumentError(
              absl::StrCat("upstream \"", item, "\": want Service=host:port"));
        }
        absl::StrAppend(last, ",", item);
        continue;
      }
      std::string service(item.substr(0, eq));
      absl::string_view address = item.substr(eq + 1);
      if (service.empty() || address.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("upstream \"", item, "\": want Service=host:port"));
      }
      last = &out[service];
      *last = std::string(address);
    }
  }
  return out;
}

std::map<std::string, std::string> ServiceTargets(
    const std::map<std::string, std::string>& targets) {
  std::map<std::string, std::string> services;
  for (const auto& [key, addresses] : targets) {
    if (!absl::StrContains(key, '/')) {
      services.emplace(key, addresses);
    }
  }
  return services;
}

std::string ChannelTarget(absl::string_view addresses) {
  if (absl::StrContains(addresses, ":///") || absl::StartsWith(addresses, "ipv4:") ||
      absl::StartsWith(addresses, "ipv6:") || absl::StartsWith(addresses, "unix:") ||
      absl::StartsWith(addresses, "dns:")) {
    return std::string(addresses);
  }
  std::vector<absl::string_view> list = absl::StrSplit(addresses, ',', absl::SkipWhitespace());
  bool all_v4 = true, all_v6 = true;
  for (absl::string_view a : list) {
    bool v6 = false;
    if (!IsIpLiteralAddress(a, &v6)) {
      all_v4 = all_v6 = false;
      break;
    }
    (v6 ? all_v4 : all_v6) = false;
  }
  if (all_v4 && !list.empty()) {
    return absl::StrCat("ipv4:", absl::StrJoin(list, ","));
  }
  if (all_v6 && !list.empty()) {
    return absl::StrCat("ipv6:", absl::StrJoin(list, ","));
  }
  // A name: DNS gives every address behind it (only the first name of a list is used).
  return absl::StrCat("dns:///", list.empty() ? addresses : list.front());
}

std::string ServiceIdentity(absl::string_view service) {
  for (const mesh::Program& program : mesh::kPrograms) {
    if (!program.package_prefix.empty() && absl::StartsWith(service, program.package_prefix)) {
      return std::string(program.binary);
    }
  }
  return "";
}

std::string ServerIdentityToCheck(absl::string_view target, absl::string_view service) {
  if (absl::StartsWith(target, "ipv4:") || absl::StartsWith(target, "ipv6:")) {
    return ServiceIdentity(service);
  }
  return "";
}

void CheckServersAsService(absl::string_view target, absl::string_view service,
                           grpc::ChannelArguments* args) {
  if (std::string identity = ServerIdentityToCheck(target, service); !identity.empty()) {
    args->SetSslTargetNameOverride(identity);
  }
}

std::string DefaultUpstreamAddress(absl::string_view service, absl::string_view host) {
  for (const mesh::Program& program : mesh::kPrograms) {
    if (!program.package_prefix.empty() && absl::StartsWith(service, program.package_prefix)) {
      return absl::StrCat(host, ":", program.grpc_port);
    }
  }
  return "";
}

namespace {

// One unary call waiting on a completion queue.
struct UnaryTag final : Upstreams::Tag {
  std::unique_ptr<grpc::GenericClientAsyncResponseReader> reader;
  grpc::Status status;
  std::function<void(const grpc::Status&)> done;

  // Finish always completes with ok == true; the call's outcome is in the status.
  void Proceed(bool /*ok*/) override {
    std::unique_ptr<UnaryTag> self(this);
    // The reader lives in memory its ClientContext owns, and `done` may let the context go
    // (the caller's Call, or a caller waiting on the stack): destroy the reader first.
    reader.reset();
    done(status);
  }
};

}  // namespace

std::string UpstreamServiceConfig(absl::string_view service,
                                  const std::vector<std::string>& retried_methods) {
  // The health check too: a check that went to a replica killed a moment ago (its connection
  // still taken for up) fails UNAVAILABLE, and would take the whole service for down while the
  // other replicas serve.
  std::string names = R"({"service":"grpc.health.v1.Health","method":"Check"})";
  for (const std::string& method : retried_methods) {
    absl::StrAppend(&names, R"(,{"service":")", service, R"(","method":")", method, R"("})");
  }
  // Round robin over the replicas that are up and whose grpc.health.v1 Watch says SERVING: a
  // replica that is starting (NOT_SERVING) or going away gets no calls. gRPC's retry policy: a
  // second attempt 20-100 ms later, on another replica when the first one's connection is gone;
  // the throttle stops retries while more than about half of the calls fail (a service that is
  // down is not called twice as often).
  return absl::StrCat(
      R"({"loadBalancingConfig":[{"round_robin":{}}],"healthCheckConfig":{"serviceName":""},)",
      R"("methodConfig":[{"name":[)", names,
      R"(],"retryPolicy":{"maxAttempts":2,"initialBackoff":"0.02s","maxBackoff":"0.1s",)",
      R"("backoffMultiplier":2,"retryableStatusCodes":["UNAVAILABLE"]}}],)",
      R"("retryThrottling":{"maxTokens":10,"tokenRatio":0.5}})");
}

Upstreams::Upstreams(const std::map<std::string, std::string>& targets,
                     const UpstreamOptions& options)
    : targets_(ServiceTargets(targets)) {
  const std::shared_ptr<grpc::ChannelCredentials> credentials =
      platform::ChannelCredentials(options.tls);
  for (const auto& [service, addresses] : targets_) {
    auto upstream = std::make_unique<Upstream>();
    for (int i = 0; i < std::max(1, options.channels_per_service); ++i) {
      grpc::ChannelArguments args;
      // Fail fast when nothing listens, and find a restarted upstream again quickly.
      args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS,
                  static_cast<int>(absl::ToInt64Milliseconds(options.connect_timeout)));
      args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
      args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
                  static_cast<int>(absl::ToInt64Milliseconds(options.max_reconnect_backoff)));
      // Separate connections per channel, not one shared subchannel.
      args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
      args.SetInt("kurt.edge.channel", i);
      const std::string target = ChannelTarget(addresses);
      CheckServersAsService(target, service, &args);
      auto retried = options.retried_methods.find(service);
      args.SetServiceConfigJSON(UpstreamServiceConfig(
          service,
          retried == options.retried_methods.end() ? std::vector<std::string>() : retried->second));
      // Retries stay on, with no retry policy: only transparent ones, of calls the server never
      // began (one crossing the GOAWAY by which a service ends a connection at its maximum age
      // goes on the next connection instead of failing). Nothing is sent twice to a handler.
      auto channel = grpc::CreateCustomChannel(target, credentials, args);
      upstream->stubs.push_back(std::make_unique<grpc::GenericStub>(channel));
    }
    upstreams_.emplace(service, std::move(upstream));
  }
  if (options.transport == UpstreamOptions::Transport::kH2) {
    H2UpstreamOptions h2;
    h2.connect_timeout = options.connect_timeout;
    h2.max_reconnect_backoff = options.max_reconnect_backoff;
    h2.retried_methods = options.retried_methods;
    h2.tls = options.tls;
    for (const auto& [service, addresses] : targets) {
      // The servers' names checked as the channels check them (CheckServersAsService).
      if (std::string identity = ServerIdentityToCheck(ChannelTarget(addresses), service);
          !identity.empty()) {
        h2.tls_server_names[service] = identity;
      }
    }
    h2_ = std::make_unique<H2Upstreams>(targets, std::move(h2));
  }
  for (int i = 0; i < std::max(1, options.completion_threads); ++i) {
    queues_.push_back(std::make_unique<grpc::CompletionQueue>());
    grpc::CompletionQueue* queue = queues_.back().get();
    threads_.emplace_back([queue] {
      void* tag;
      bool ok;
      while (queue->Next(&tag, &ok)) {
        static_cast<Tag*>(tag)->Proceed(ok);
      }
    });
  }
}

Upstreams::~Upstreams() {
  for (auto& q : queues_) {
    q->Shutdown();
  }
  for (std::thread& t : threads_) {
    t.join();
  }
}

void Upstreams::AsyncUnary(grpc::GenericStub* stub, grpc::ClientContext* context,
                           const std::string& method, const grpc::ByteBuffer& request,
                           grpc::ByteBuffer* response,
                           std::function<void(const grpc::Status&)> done) {
  auto* tag = new UnaryTag();
  tag->done = std::move(done);
  tag->reader = stub->PrepareUnaryCall(context, method, request, NextQueue());
  tag->reader->StartCall();
  tag->reader->Finish(response, &tag->status, tag);
}

std::unique_ptr<grpc::GenericClientAsyncReaderWriter> Upstreams::PrepareStream(
    grpc::GenericStub* stub, grpc::ClientContext* context, const std::string& method) {
  return stub->PrepareCall(context, method, NextQueue());
}

grpc::GenericStub* Upstreams::Stub(absl::string_view service) {
  auto it = upstreams_.find(service);
  if (it == upstreams_.end()) {
    return nullptr;
  }
  Upstream& u = *it->second;
  if (u.stubs.size() == 1) {
    return u.stubs[0].get();
  }
  return u.stubs[u.next.fetch_add(1, std::memory_order_relaxed) % u.stubs.size()].get();
}

namespace {

struct HealthFanOut {
  std::vector<Upstreams::Health> results;
  std::atomic<int> pending{0};
  std::function<void(std::vector<Upstreams::Health>)> done;

  void Finish() {
    if (pending.fetch_sub(1) == 1) {
      done(std::move(results));
    }
  }
};

struct HealthCall {
  grpc::ClientContext context;
  grpc::ByteBuffer request;
  grpc::ByteBuffer response;
};

const std::string kHealthCheckMethod = "/grpc.health.v1.Health/Check";

}  // namespace

void Upstreams::CheckHealth(absl::Duration timeout, std::function<void(std::vector<Health>)> done) {
  if (targets_.empty()) {
    done({});
    return;
  }
  auto fan = std::make_shared<HealthFanOut>();
  fan->done = std::move(done);
  fan->results.resize(targets_.size());
  fan->pending = static_cast<int>(targets_.size());
  size_t i = 0;
  for (const auto& [service, target] : targets_) {
    Health* result = &fan->results[i++];
    result->service = service;
    auto call = std::make_shared<HealthCall>();
    call->context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    call->request = ToByteBuffer("");  // HealthCheckRequest{service: ""}: the whole server
    // On the completion queues like every unary call: a single use of gRPC's callback API would
    // start its own polling threads, which then read the calls' responses off the connection and
    // must wake the completion thread for each (a thread hop per request).
    AsyncUnary(upstreams_.at(service)->stubs[0].get(), &call->context, kHealthCheckMethod,
               call->request, &call->response, [fan, call, result](const grpc::Status& status) {
                 if (!status.ok()) {
                   result->state = status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED
                                       ? Health::State::kUnknown
                                       : Health::State::kNotServing;
                   result->problem = status.error_message();
                 } else if (FromByteBuffer(call->response) == std::string("\x08\x01", 2)) {
                   // HealthCheckResponse{status = 1: SERVING}: bytes 08 01.
                   result->state = Health::State::kServing;
                 } else {
                   result->state = Health::State::kNotServing;
                   result->problem = "not serving";
                 }
                 fan->Finish();
               });
  }
}

grpc::ByteBuffer ToByteBuffer(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

std::string FromByteBuffer(const grpc::ByteBuffer& buffer) {
  std::string out;
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) {
    return out;
  }
  out.reserve(buffer.Length());
  for (const grpc::Slice& s : slices) {
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return out;
}

}  // namespace kurt::edge
