// A unary RPC served on Kurt's own HTTP/2 server (platform/grpc/h2_server.h) by the same function
// that AsyncUnaryMethod serves on gRPC's (platform/grpc/async_method.h): a member function of
// `rpcs` taking (const Caller&, const Request&, Response*, AsyncDone). Each call is served as
// platform::Handle serves a synchronous one (request scope, access check, absl::Status mapped to
// grpc::Status by ToGrpcStatus):
//
//   server.AddH2Method("/kurt.links.v1.LinksService/Resolve",
//                      platform::H2UnaryHandler(&rpcs_, &LinksRpcs::ResolveAsync,
//                                               platform::Access::kAnyCaller));
//
// A call (its Caller, request and response) lives from its arrival until its AsyncDone has run.
#pragma once

#include <functional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "platform/core/log.h"
#include "platform/grpc/h2_server.h"
#include "platform/grpc/handler.h"

namespace kurt::platform {

template <typename Rpcs, typename Request, typename Response>
H2Handler H2UnaryHandler(Rpcs* rpcs,
                         void (Rpcs::*rpc)(const Caller&, const Request&, Response*, AsyncDone),
                         Access access = Access::kAccount) {
  return [rpcs, rpc, access](H2Request&& h2, H2Responder respond) {
    struct Call {
      Call(H2Request&& h2, H2Responder respond)
          : caller(std::move(h2)), respond(std::move(respond)) {}
      const Caller caller;
      Request request;
      Response response;
      H2Responder respond;
    };
    const std::string message = std::move(h2.message);
    auto* call = new Call(std::move(h2), std::move(respond));
    log::RequestScope scope(call->caller.request_id(), log::RequestScope::Borrow{});
    // Nothing of the call is touched after `done`: it may be answered on another thread at once.
    auto done = [call](const absl::Status& s) {
      if (s.ok()) {
        std::string bytes;
        call->response.SerializeToString(&bytes);
        call->respond(grpc::Status::OK, std::move(bytes));
      } else {
        grpc::Status status;
        {
          // An error's message names the request id (ToGrpcStatus).
          log::RequestScope scope(call->caller.request_id(), log::RequestScope::Borrow{});
          status = ToGrpcStatus(s);
        }
        call->respond(status);
      }
      delete call;
    };
    if (!call->request.ParseFromString(message)) {
      call->respond(grpc::Status(grpc::StatusCode::INTERNAL, "the request message does not parse"));
      delete call;
      return;
    }
    if (absl::Status allowed = CheckAccess(call->caller, access); !allowed.ok()) {
      done(allowed);
      return;
    }
    std::invoke(rpc, rpcs, call->caller, call->request, &call->response, AsyncDone(done));
  };
}

}  // namespace kurt::platform
