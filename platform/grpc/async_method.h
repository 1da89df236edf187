// A unary RPC served on gRPC's asynchronous (completion-queue) API, on threads the server owns
// (GrpcServer::AddAsyncMethod), for an RPC that waits on something outside the process (an
// acknowledgement) and is called often enough that its cost per call matters:
//
//   platform::AsyncUnaryMethod<LinksService, v1::ResolveRequest, v1::ResolveResponse, LinksRpcs>
//       resolve_{&service_, &LinksService::RequestResolve, &rpcs_, &LinksRpcs::ResolveAsync,
//                platform::Access::kAnyCaller};
//
// The service derives from the generated WithAsyncMethod_<Method> and is added as any other
// (AddService); the method beside it (AddAsyncMethod). Each call is served as platform::Handle
// serves a synchronous one (request scope, access check, absl::Status mapped to grpc::Status) by
// `rpc`, a member function of `rpcs` taking (const Caller&, const Request&, Response*, AsyncDone)
// that calls its AsyncDone once, from any thread, when the response is complete or with the
// error; no thread waits meanwhile.
//
// Why not gRPC's callback API: gRPC 1.51's callback server reads calls on two polling threads of
// its own and hands completions to its executor, a thread hop or two per call; a completion queue
// read by the server's own threads delivers a new call on the thread that read it from the socket.
//
// The method lives as long as the server that serves it; a call (its context, request, response
// and Caller) lives from the request gRPC matched to it until its Finish completed, on whichever
// thread polls its queue.
#pragma once

#include <functional>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "grpcpp/completion_queue.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/async_unary_call.h"
#include "platform/core/log.h"
#include "platform/grpc/handler.h"

namespace kurt::platform {

// What a tag given to gRPC on one of the server's completion queues points to: the thread that
// takes its event from the queue calls Completed (ok: the operation succeeded).
class CompletionTag {
 public:
  virtual void Completed(bool ok) = 0;

 protected:
  ~CompletionTag() = default;
};

// A method served on the server's completion queues. Serve is called once per queue once the
// server has started: it asks gRPC for the method's first calls on that queue, each with a
// CompletionTag.
class AsyncMethod {
 public:
  virtual ~AsyncMethod() = default;
  virtual void Serve(grpc::ServerCompletionQueue* queue) = 0;
};

template <typename Service, typename Request, typename Response, typename Rpcs>
class AsyncUnaryMethod final : public AsyncMethod {
 public:
  // The generated WithAsyncMethod_<Method>::Request<Method>.
  using RequestCall = void (Service::*)(grpc::ServerContext*, Request*,
                                        grpc::ServerAsyncResponseWriter<Response>*,
                                        grpc::CompletionQueue*, grpc::ServerCompletionQueue*,
                                        void*);
  using Rpc = void (Rpcs::*)(const Caller&, const Request&, Response*, AsyncDone);
  // Calls each queue keeps requested, so that a burst of new calls finds one waiting.
  static constexpr int kRequestedPerQueue = 32;

  // `service` and `rpcs` outlive the method.
  AsyncUnaryMethod(Service* service, RequestCall request_call, Rpcs* rpcs, Rpc rpc,
                   Access access = Access::kAccount)
      : service_(service), request_call_(request_call), rpcs_(rpcs), rpc_(rpc), access_(access) {}

  void Serve(grpc::ServerCompletionQueue* queue) override {
    for (int i = 0; i < kRequestedPerQueue; ++i) {
      Call::Await(this, queue);
    }
  }

 private:
  // One call, from its request to its Finish's completion (then it deletes itself).
  class Call final : public CompletionTag {
   public:
    // Asks gRPC for the method's next call on `queue`.
    static void Await(const AsyncUnaryMethod* method, grpc::ServerCompletionQueue* queue) {
      auto* call = new Call(method, queue);
      std::invoke(method->request_call_, method->service_, &call->context_, &call->request_,
                  &call->writer_, queue, queue, call);
    }

    void Completed(bool ok) override {
      if (started_ || !ok) {
        // Finished (whether or not the answer reached the client), or a request the server's
        // shutdown ended.
        delete this;
        return;
      }
      started_ = true;
      Await(method_, queue_);  // the next caller's, while this one is served
      Run();
    }

   private:
    Call(const AsyncUnaryMethod* method, grpc::ServerCompletionQueue* queue)
        : method_(method), queue_(queue), writer_(&context_) {}

    void Run() {
      const Caller& caller = caller_.emplace(context_);
      log::RequestScope scope(caller.request_id(), log::RequestScope::Borrow{});
      if (absl::Status allowed = CheckAccess(caller, method_->access_); !allowed.ok()) {
        Finish(allowed);
        return;
      }
      // Nothing of this call is touched after `done`: its Finish may complete (and delete the
      // call) on another thread at once.
      std::invoke(method_->rpc_, method_->rpcs_, caller, request_, &response_,
                  [this](const absl::Status& s) { Finish(s); });
    }

    void Finish(const absl::Status& s) {
      if (s.ok()) {
        writer_.Finish(response_, grpc::Status::OK, this);
        return;
      }
      grpc::Status status;
      {
        // An error's message names the request id (ToGrpcStatus), on whatever thread.
        log::RequestScope scope(caller_->request_id(), log::RequestScope::Borrow{});
        status = ToGrpcStatus(s);
      }
      writer_.FinishWithError(status, this);
    }

    const AsyncUnaryMethod* const method_;
    grpc::ServerCompletionQueue* const queue_;
    grpc::ServerContext context_;
    Request request_;
    Response response_;
    grpc::ServerAsyncResponseWriter<Response> writer_;
    std::optional<const Caller> caller_;  // once the call has come
    bool started_ = false;                // read and written by the queue's threads only
  };

  Service* const service_;
  const RequestCall request_call_;
  Rpcs* const rpcs_;
  const Rpc rpc_;
  const Access access_;
};

}  // namespace kurt::platform
