#include "platform/core/work_queue.h"

#include <algorithm>
#include <utility>

namespace kurt::platform {

WorkQueue::WorkQueue(int threads, size_t max_waiting) : max_waiting_(max_waiting) {
  threads_.reserve(static_cast<size_t>(std::max(threads, 1)));
  for (int i = 0; i < std::max(threads, 1); ++i) {
    threads_.emplace_back([this] { Run(); });
  }
}

WorkQueue::~WorkQueue() {
  std::deque<Task> never_ran;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    never_ran.swap(waiting_);
  }
  wake_.notify_all();
  for (Task& task : never_ran) {
    std::move(task)(false);
  }
  for (std::thread& t : threads_) {
    t.join();
  }
}

bool WorkQueue::Submit(Task& task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || waiting_.size() >= max_waiting_) {
      return false;
    }
    waiting_.push_back(std::move(task));
  }
  wake_.notify_one();
  return true;
}

size_t WorkQueue::Waiting() {
  std::lock_guard<std::mutex> lock(mu_);
  return waiting_.size();
}

void WorkQueue::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    wake_.wait(lock, [this] { return stopping_ || !waiting_.empty(); });
    if (waiting_.empty()) {
      return;  // stopping: the destructor answers what still waits
    }
    Task task = std::move(waiting_.front());
    waiting_.pop_front();
    lock.unlock();
    std::move(task)(true);
    lock.lock();
  }
}

}  // namespace kurt::platform
