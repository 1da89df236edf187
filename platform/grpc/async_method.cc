#include "platform/grpc/async_method.h"

namespace kurt::platform {
namespace {

// The queue whose thread this is, if any.
thread_local const ServerQueue* t_queue = nullptr;

}  // namespace

void ServerQueue::Start() {
  thread_ = std::thread([this] { Run(); });
}

void ServerQueue::Run() {
  t_queue = this;
  void* tag = nullptr;
  bool ok = false;
  while (queue_->Next(&tag, &ok)) {
    static_cast<CompletionTag*>(tag)->Completed(ok);
  }
}

void ServerQueue::Shutdown() {
  queue_->Shutdown();
  if (thread_.joinable()) {
    thread_.join();
  }
}

void ServerQueue::Post(CompletionTag* tag) {
  if (t_queue == this) {
    tag->Completed(true);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    posted_.push_back(tag);
    if (waking_) {
      return;
    }
    waking_ = true;
  }
  // A deadline already past: the alarm fires at once, as an event on the queue.
  alarm_.Set(queue_.get(), gpr_time_0(GPR_CLOCK_MONOTONIC), &wake_);
}

void ServerQueue::CallStarted() {
  std::lock_guard<std::mutex> lock(mu_);
  ++calls_;
}

void ServerQueue::CallEnded() {
  std::lock_guard<std::mutex> lock(mu_);
  if (--calls_ == 0) {
    calls_ended_.notify_all();
  }
}

void ServerQueue::WaitForCalls() {
  std::unique_lock<std::mutex> lock(mu_);
  calls_ended_.wait(lock, [this] { return calls_ == 0; });
}

void ServerQueue::RunPosted() {
  std::vector<CompletionTag*> posted;
  {
    std::lock_guard<std::mutex> lock(mu_);
    posted.swap(posted_);
    waking_ = false;
  }
  for (CompletionTag* tag : posted) {
    tag->Completed(true);
  }
}

}  // namespace kurt::platform
