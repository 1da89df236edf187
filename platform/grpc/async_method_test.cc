#include "platform/grpc/async_method.h"

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "kurt/notifications/v1/notifications.grpc.pb.h"
#include "platform/grpc/edge_trust.h"
#include "platform/grpc/held_rpcs_testing.h"
#include "platform/grpc/server.h"

namespace kurt::platform {
namespace {

namespace nv1 = notifications::v1;
using testing::HeldRpcs;

// Any generated service does: this one's GetWebhook is the unary method served asynchronously.
class AsyncWebhooks final : public nv1::NotificationsService::WithAsyncMethod_GetWebhook<
                                nv1::NotificationsService::Service> {};

class AsyncMethodTest : public ::testing::Test {
 protected:
  void SetUp() override {
    GrpcServerOptions options;
    options.name = "async-test";
    options.metrics_port = -1;
    options.shutdown_grace = grace_;
    server_ = std::make_unique<GrpcServer>(options, &registry_);
    server_->AddService(&service_);
    server_->AddAsyncMethod(&method_);
    ASSERT_TRUE(server_->Start().ok());
    stub_ = nv1::NotificationsService::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", server_->grpc_port()), grpc::InsecureChannelCredentials()));
  }

  // A call started on its own thread; its status and response once joined.
  struct Pending {
    grpc::ClientContext context;
    nv1::Webhook response;
    grpc::Status status;
    std::thread thread;
  };
  std::unique_ptr<Pending> Start(const std::string& account_id) {
    auto p = std::make_unique<Pending>();
    if (!account_id.empty()) {
      p->context.AddMetadata(std::string{kAccountIdMetadata}, account_id);
    }
    p->context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    p->thread = std::thread([this, raw = p.get()] {
      raw->status = stub_->GetWebhook(&raw->context, nv1::GetWebhookRequest(), &raw->response);
    });
    return p;
  }

  // The server's Shutdown on a thread of its own; `stopped` once it has returned.
  std::thread ShutDownAside(std::atomic<bool>* stopped) {
    return std::thread([this, stopped] {
      server_->Shutdown();
      *stopped = true;
    });
  }

  absl::Duration grace_ = absl::Seconds(5);
  metrics::Registry registry_;
  AsyncWebhooks service_;
  HeldRpcs rpcs_;
  AsyncUnaryMethod<AsyncWebhooks, nv1::GetWebhookRequest, nv1::Webhook, HeldRpcs> method_{
      &service_, &AsyncWebhooks::RequestGetWebhook, &rpcs_, &HeldRpcs::GetWebhook};
  std::unique_ptr<GrpcServer> server_;
  std::unique_ptr<nv1::NotificationsService::Stub> stub_;
};

TEST_F(AsyncMethodTest, EachCallIsAnsweredWhenItsRpcSaysDoneFromAnotherThread) {
  // More calls at once than the queue keeps requested: each still comes through.
  constexpr int kCalls = 2 * AsyncUnaryMethod<AsyncWebhooks, nv1::GetWebhookRequest, nv1::Webhook,
                                              HeldRpcs>::kRequestedPerQueue +
                         5;
  std::vector<std::unique_ptr<Pending>> calls;
  calls.reserve(kCalls);
  for (int i = 0; i < kCalls; ++i) {
    calls.push_back(Start(absl::StrCat("acct-", i)));
  }
  std::vector<HeldRpcs::Held> held;
  held.reserve(kCalls);
  for (int i = 0; i < kCalls; ++i) {
    held.push_back(rpcs_.Next());
  }
  // Answered from this thread, in reverse order: each one's own response goes back to it.
  std::thread answerer([&] {
    for (auto it = held.rbegin(); it != held.rend(); ++it) {
      it->response->set_url(absl::StrCat("https://hooks.example/", it->account_id));
      it->done(absl::OkStatus());
    }
  });
  answerer.join();
  for (int i = 0; i < kCalls; ++i) {
    calls[i]->thread.join();
    ASSERT_TRUE(calls[i]->status.ok()) << calls[i]->status.error_message();
    EXPECT_EQ(calls[i]->response.url(), absl::StrCat("https://hooks.example/acct-", i));
  }
}

TEST_F(AsyncMethodTest, ErrorsAndRefusedCallersAreMappedAsHandleMapsThem) {
  std::unique_ptr<Pending> anonymous = Start("");
  anonymous->thread.join();
  EXPECT_EQ(anonymous->status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(rpcs_.calls(), 0u) << "the rpc never sees a caller its access refuses";

  std::unique_ptr<Pending> refused = Start("acct-1");
  rpcs_.Next().done(absl::FailedPreconditionError("url: not set yet"));
  refused->thread.join();
  EXPECT_EQ(refused->status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(refused->status.error_message(), "url: not set yet");

  std::unique_ptr<Pending> failed = Start("acct-1");
  rpcs_.Next().done(absl::UnavailableError("broker 3 unreachable"));
  failed->thread.join();
  EXPECT_EQ(failed->status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(failed->status.error_message().find("broker"), std::string::npos)
      << "a server-side failure's own text stays in the log";
}

// The server's shutdown lets a call in flight finish (its answer reaches the client) before it
// stops the queues' threads; calls that come after it began are refused.
TEST_F(AsyncMethodTest, AShutdownWaitsForTheCallsInFlight) {
  std::unique_ptr<Pending> call = Start("acct-1");
  HeldRpcs::Held held = rpcs_.Next();
  std::atomic<bool> stopped{false};
  std::thread stopper = ShutDownAside(&stopped);
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_FALSE(stopped) << "the shutdown did not wait for the call in flight";
  std::unique_ptr<Pending> late = Start("acct-2");
  late->thread.join();
  EXPECT_FALSE(late->status.ok());
  held.response->set_url("https://hooks.example/last");
  held.done(absl::OkStatus());
  stopper.join();
  call->thread.join();
  ASSERT_TRUE(call->status.ok()) << call->status.error_message();
  EXPECT_EQ(call->response.url(), "https://hooks.example/last");
}

class AsyncMethodShortGraceTest : public AsyncMethodTest {
 protected:
  AsyncMethodShortGraceTest() { grace_ = absl::Milliseconds(200); }
};

// A call still being served when the grace period ends (a database read that hangs) is cancelled
// for its client, but the server serves its queues until it answers: the answer's Post and
// Finish find the queue there (once it was shut down, they aborted the process).
TEST_F(AsyncMethodShortGraceTest, ACallAnsweredAfterTheGraceEndsBeforeTheQueuesDo) {
  std::unique_ptr<Pending> call = Start("acct-1");
  HeldRpcs::Held held = rpcs_.Next();
  std::atomic<bool> stopped{false};
  std::thread stopper = ShutDownAside(&stopped);
  call->thread.join();  // cancelled at the end of the grace
  EXPECT_FALSE(call->status.ok());
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_FALSE(stopped) << "the server shut down with a call still being served";
  held.done(absl::OkStatus());
  stopper.join();
  EXPECT_TRUE(stopped);
}

// Tags posted from other threads complete on the queue's own thread, each once; one posted from
// that thread completes at once.
TEST(ServerQueueTest, PostedTagsCompleteOnTheQueuesThread) {
  grpc::ServerBuilder builder;
  ServerQueue queue(builder.AddCompletionQueue());
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  queue.Start();

  struct Recorder final : CompletionTag {
    void Completed(bool ok) override {
      std::lock_guard<std::mutex> lock(mu);
      threads.push_back(std::this_thread::get_id());
      oks += ok;
      if (inner != nullptr) {
        queue->Post(inner);  // from the queue's thread: completes before this returns
        EXPECT_EQ(inner->threads.size(), 1u);
      }
    }
    std::mutex mu;
    std::vector<std::thread::id> threads;
    int oks = 0;
    ServerQueue* queue = nullptr;
    Recorder* inner = nullptr;
  };
  constexpr int kTags = 200;
  std::vector<Recorder> tags(kTags);
  Recorder inner;
  tags[0].queue = &queue;
  tags[0].inner = &inner;
  std::vector<std::thread> posters;
  posters.reserve(4);
  for (int p = 0; p < 4; ++p) {
    posters.emplace_back([&, p] {
      for (int i = p; i < kTags; i += 4) {
        queue.Post(&tags[i]);
      }
    });
  }
  for (std::thread& t : posters) {
    t.join();
  }
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  auto all_done = [&] {
    for (Recorder& r : tags) {
      std::lock_guard<std::mutex> lock(r.mu);
      if (r.threads.empty()) {
        return false;
      }
    }
    return true;
  };
  while (!all_done() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_TRUE(all_done());
  const std::thread::id queue_thread = tags[0].threads[0];
  EXPECT_NE(queue_thread, std::this_thread::get_id());
  for (Recorder& r : tags) {
    std::lock_guard<std::mutex> lock(r.mu);
    ASSERT_EQ(r.threads.size(), 1u);
    EXPECT_EQ(r.threads[0], queue_thread);
    EXPECT_EQ(r.oks, 1);
  }
  ASSERT_EQ(inner.threads.size(), 1u);
  EXPECT_EQ(inner.threads[0], queue_thread);
  server->Shutdown();
  queue.Shutdown();
}

}  // namespace
}  // namespace kurt::platform
