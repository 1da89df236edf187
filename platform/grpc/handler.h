// The one adapter between gRPC and a service's RPCs, so that an RPC is a plain function:
//
//   absl::StatusOr<v1::Link> LinksRpcs::CreateLink(const Caller&, const v1::CreateLinkRequest&);
//
// and the generated service's override is one line:
//
//   grpc::Status CreateLink(grpc::ServerContext* c, const v1::CreateLinkRequest* r,
//                           v1::Link* out) override {
//     return platform::Handle(c, *r, out, rpcs_, &LinksRpcs::CreateLink);
//   }
//
// Handle opens the request scope for logs (x-request-id), checks the caller (an RPC on behalf of
// an account answers UNAUTHENTICATED without one; platform/grpc/edge_trust.h says when the
// account is trusted), calls the function and maps its absl::Status to a grpc::Status. The
// server's interceptor (platform/grpc/server.h) counts every RPC and observes its latency, health
// checks and streams included. A unit test calls the function with a Caller it made and fakes
// behind the RPCs object, without gRPC.
//
// An RPC that waits on something outside the process (an acknowledgement) can be served on gRPC's
// asynchronous API instead, so that no thread waits with it (platform/grpc/async_method.h), by a
// function taking (const Caller&, const Request&, Response*, AsyncDone) that calls the AsyncDone
// once, from any thread, when the response is complete or with the error.
//
// Caller is a view of one call; it lives on the handler's stack for the length of the RPC.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/status.h"
#include "platform/core/log.h"

namespace kurt::platform {

struct H2Request;

// Whether an RPC acts on behalf of an account (the edge's authenticated caller), is open to any
// caller the server let in (the redirect's Resolve, calls between services), or is the edge's
// alone (reports only the edge can make, e.g. of the redirects it answered from its cache).
enum class Access { kAccount, kAnyCaller, kEdge };

// Who is calling and what the call carries.
class Caller {
 public:
  // A call served by gRPC (its synchronous or its asynchronous API).
  explicit Caller(const grpc::ServerContextBase& context);
  // A call served by Kurt's own HTTP/2 server (platform/grpc/h2_server.h): its metadata taken
  // over (the rest of the request is left as it was), the edge as the server's trust check found.
  explicit Caller(H2Request&& request);
  // A call made up by a test (or any caller outside gRPC).
  explicit Caller(std::string account_id, std::map<std::string, std::string> metadata = {},
                  absl::Time deadline = absl::InfiniteFuture());
  // request_id() may point into the Caller itself.
  Caller(const Caller&) = delete;
  Caller& operator=(const Caller&) = delete;

  // The authenticated account (x-kurt-account-id); empty when the call names none.
  const std::string& account_id() const { return account_id_; }
  // Whether the edge makes the call: it carries an x-kurt-edge-secret that the server let through
  // (its edge-trust check drops one that proves nothing; platform/grpc/edge_trust.h), or a client
  // certificate naming the edge (mutual TLS). A made-up caller is the edge when its metadata has
  // the secret's key. Read when asked (the auth context costs an allocation).
  bool from_edge() const;
  // The caller's x-request-id, or a new one; valid while the Caller lives.
  absl::string_view request_id() const { return request_id_; }
  // A metadata value of the call ("" when absent).
  std::string Metadata(absl::string_view key) const;
  // The same, viewed where the call keeps it: valid while the call (or a made-up Caller) lives.
  absl::string_view MetadataView(absl::string_view key) const;
  // When the caller stops waiting (absl::InfiniteFuture() when it set no deadline).
  absl::Time deadline() const { return deadline_; }
  // The gRPC call, when there is one (streams write through it); nullptr for a made-up caller.
  const grpc::ServerContextBase* context() const { return context_; }

 private:
  // request_id_ from metadata_'s x-request-id, or a new one when it has none (the constructors
  // that take the metadata as given).
  void SetRequestIdFromMetadata();
  // The value of `key` in metadata_ (the first, when repeated), or null.
  const std::string* Find(absl::string_view key) const;

  const grpc::ServerContextBase* context_ = nullptr;
  // A made-up caller's or an h2 call's (lowercase names); gRPC's calls keep theirs.
  std::vector<std::pair<std::string, std::string>> metadata_;
  std::string account_id_;
  std::string new_request_id_;    // when the call carried none
  absl::string_view request_id_;  // into the call's metadata, metadata_ or new_request_id_
  absl::Time deadline_;
  bool from_edge_ = false;  // a made-up caller's only
};

// Maps a Status to a grpc::Status with the same code and, for what the caller got wrong, the same
// message. A server-side failure (UNAVAILABLE, INTERNAL, UNKNOWN, DATA_LOSS) or a backend's own
// text (platform/core/backend_error.h) keeps its code but gets a generic message with the request
// id, and its text goes to the log: PostgreSQL's and Redis's errors never reach a client.
// A status marked WithRetryAfter carries a google.rpc.RetryInfo in its details (the edge answers
// it with Retry-After), and one given details WithDetail carries those.
grpc::Status ToGrpcStatus(const absl::Status& status);

// `status` (RESOURCE_EXHAUSTED, UNAVAILABLE...) with when the caller may try again.
absl::Status WithRetryAfter(absl::Status status, absl::Duration delay);

// `status` carrying `detail` too: ToGrpcStatus puts it in the google.rpc.Status details, as an
// Any (a google.api.HttpBody page the edge answers instead of the JSON error, say). Not for
// server-side failures, whose details are dropped with their text.
absl::Status WithDetail(absl::Status status, const google::protobuf::Message& detail);

// UNAUTHENTICATED unless `caller` names an account, when `access` asks for one; PERMISSION_DENIED
// unless the edge calls, when `access` is kEdge.
absl::Status CheckAccess(const Caller& caller, Access access);

namespace internal {
template <typename Response, typename Result>
grpc::Status Finish(Result result, Response* response) {
  if constexpr (std::is_same_v<Result, absl::Status>) {
    return ToGrpcStatus(result);
  } else {
    if (!result.ok()) {
      return ToGrpcStatus(result.status());
    }
    *response = *std::move(result);
    return grpc::Status::OK;
  }
}
}  // namespace internal

// Serves a unary RPC with `rpc`, a member function of `rpcs` taking (const Caller&, const
// Request&) and returning absl::StatusOr<Response>, or absl::Status when the response is empty.
template <typename Rpcs, typename Request, typename Response, typename Rpc>
grpc::Status Handle(grpc::ServerContext* context, const Request& request, Response* response,
                    Rpcs& rpcs, Rpc rpc, Access access = Access::kAccount) {
  const Caller caller(*context);
  log::RequestScope scope(caller.request_id(), log::RequestScope::Borrow{});
  if (absl::Status allowed = CheckAccess(caller, access); !allowed.ok()) {
    return ToGrpcStatus(allowed);
  }
  return internal::Finish(std::invoke(rpc, rpcs, caller, request), response);
}

// How an asynchronous RPC answers: once, from any thread; OK when the response is complete.
using AsyncDone = std::function<void(const absl::Status&)>;

// Serves a server-streaming RPC with `rpc`, taking (const Caller&, const Request&, Writer*) and
// returning absl::Status; it writes its messages through the writer.
template <typename Rpcs, typename Request, typename Writer, typename Rpc>
grpc::Status HandleStream(grpc::ServerContext* context, const Request& request, Writer* writer,
                          Rpcs& rpcs, Rpc rpc, Access access = Access::kAccount) {
  const Caller caller(*context);
  log::RequestScope scope(caller.request_id(), log::RequestScope::Borrow{});
  if (absl::Status allowed = CheckAccess(caller, access); !allowed.ok()) {
    return ToGrpcStatus(allowed);
  }
  return ToGrpcStatus(std::invoke(rpc, rpcs, caller, request, writer));
}

}  // namespace kurt::platform
