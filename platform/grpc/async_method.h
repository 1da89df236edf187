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
// read by the server's own thread delivers a new call on the thread that read it from the socket.
// That holds only while the server has no callback service at all (GrpcServer serves health
// checks itself for that: platform/grpc/health.h): those polling threads poll every connection.
//
// The method lives as long as the server that serves it; a call (its context, request, response
// and Caller) lives from the request gRPC matched to it until its Finish completed. It is read,
// and its answer written, by its queue's thread (ServerQueue): an answer given on another thread
// is handed to that one with the others given meanwhile.
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "grpcpp/alarm.h"
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

// One of the server's completion queues and the thread that reads it. Other threads hand it tags
// to complete on that thread (Post): the first one posted since its last wake-up wakes it (an
// alarm on the queue), the rest ride along. Calls answered together elsewhere (by one
// acknowledgement) thus cost the queue's thread one wake-up, and since it finishes them itself,
// their completions go to the queue of the thread busy writing them: no other thread is woken.
//
// Owned by GrpcServer: Start after the server has started, Shutdown after the server's.
class ServerQueue {
 public:
  explicit ServerQueue(std::unique_ptr<grpc::ServerCompletionQueue> queue)
      : queue_(std::move(queue)) {}
  ServerQueue(const ServerQueue&) = delete;
  ServerQueue& operator=(const ServerQueue&) = delete;

  grpc::ServerCompletionQueue* get() const { return queue_.get(); }
  void Start();
  // Once nothing more is asked of the queue (the server has shut down): drains it and joins its
  // thread.
  void Shutdown();
  // `tag`->Completed(true) on this queue's thread: at once when called there, else soon.
  void Post(CompletionTag* tag);
  // A call came (CallStarted) / its Finish completed (CallEnded). Shutdown of the server waits
  // (WaitForCalls) until every call has ended before the queue shuts down: a call still being
  // served after the grace period (a database read that hangs) answers later, and its Post and
  // Finish need the queue.
  void CallStarted();
  void CallEnded();
  void WaitForCalls();

 private:
  class Wake final : public CompletionTag {
   public:
    explicit Wake(ServerQueue* queue) : queue_(queue) {}
    void Completed(bool) override { queue_->RunPosted(); }

   private:
    ServerQueue* const queue_;
  };
  void Run();
  void RunPosted();

  const std::unique_ptr<grpc::ServerCompletionQueue> queue_;
  std::mutex mu_;
  std::vector<CompletionTag*> posted_;
  bool waking_ = false;  // the alarm is set: what is posted meanwhile rides along
  int calls_ = 0;        // calls between CallStarted and CallEnded
  std::condition_variable calls_ended_;
  grpc::Alarm alarm_;
  Wake wake_{this};
  std::thread thread_;
};

// A method served on the server's completion queues. Serve is called once per queue once the
// server has started: it asks gRPC for the method's first calls on that queue, each with a
// CompletionTag.
class AsyncMethod {
 public:
  virtual ~AsyncMethod() = default;
  virtual void Serve(ServerQueue* queue) = 0;
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

  void Serve(ServerQueue* queue) override {
    for (int i = 0; i < kRequestedPerQueue; ++i) {
      Call::Await(this, queue);
    }
  }

 private:
  // One call, from its request to its Finish's completion (then it deletes itself). Its events
  // are handled on its queue's thread, one at a time.
  class Call final : public CompletionTag {
   public:
    // Asks gRPC for the method's next call on `queue`.
    static void Await(const AsyncUnaryMethod* method, ServerQueue* queue) {
      auto* call = new Call(method, queue);
      std::invoke(method->request_call_, method->service_, &call->context_, &call->request_,
                  &call->writer_, queue->get(), queue->get(), call);
    }

    void Completed(bool ok) override {
      switch (state_) {
        case State::kRequested:
          if (!ok) {
            delete this;  // a request the server's shutdown ended
            return;
          }
          state_ = State::kRunning;
          queue_->CallStarted();
          Await(method_, queue_);  // the next caller's, while this one is served
          Run();
          return;
        case State::kAnswered:
          state_ = State::kFinishing;
          Finish();
          return;
        case State::kRunning:
        case State::kFinishing: {
          ServerQueue* queue = queue_;
          delete this;  // finished, whether or not the answer reached the client
          queue->CallEnded();
          return;
        }
      }
    }

   private:
    enum class State { kRequested, kRunning, kAnswered, kFinishing };

    Call(const AsyncUnaryMethod* method, ServerQueue* queue)
        : method_(method), queue_(queue), writer_(&context_) {}

    void Run() {
      const Caller& caller = caller_.emplace(context_);
      log::RequestScope scope(caller.request_id(), log::RequestScope::Borrow{});
      if (absl::Status allowed = CheckAccess(caller, method_->access_); !allowed.ok()) {
        Answered(allowed);
        return;
      }
      // Nothing of this call is touched after `done`: it may be finished (and deleted) on the
      // queue's thread at once.
      std::invoke(method_->rpc_, method_->rpcs_, caller, request_, &response_,
                  [this](const absl::Status& s) { Answered(s); });
    }

    // From any thread: the answer is written from the queue's thread.
    void Answered(const absl::Status& s) {
      status_ = s;
      state_ = State::kAnswered;
      queue_->Post(this);
    }

    void Finish() {
      if (status_.ok()) {
        writer_.Finish(response_, grpc::Status::OK, this);
        return;
      }
      grpc::Status status;
      {
        // An error's message names the request id (ToGrpcStatus).
        log::RequestScope scope(caller_->request_id(), log::RequestScope::Borrow{});
        status = ToGrpcStatus(status_);
      }
      writer_.FinishWithError(status, this);
    }

    const AsyncUnaryMethod* const method_;
    ServerQueue* const queue_;
    grpc::ServerContext context_;
    Request request_;
    Response response_;
    grpc::ServerAsyncResponseWriter<Response> writer_;
    std::optional<const Caller> caller_;  // once the call has come
    absl::Status status_;                 // the rpc's answer
    State state_ = State::kRequested;
  };

  Service* const service_;
  const RequestCall request_call_;
  Rpcs* const rpcs_;
  const Rpc rpc_;
  const Access access_;
};

}  // namespace kurt::platform
