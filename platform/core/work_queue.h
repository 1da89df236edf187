// Work that may block (a database statement) taken off a thread that must not wait: a few threads
// of its own run the tasks, oldest first. At most `max_waiting` tasks wait for a thread; Submit
// refuses more (the caller answers its request UNAVAILABLE), so an outage of what the tasks wait
// on does not pile them up without limit.
//
// Each task is told whether it runs for real: true on one of the queue's threads; false when the
// queue is stopping and the task never got a thread (it should only answer its caller, as
// "stopping"). Destroying the queue calls the waiting tasks with false, on the destroying
// thread, and waits for the running ones.
//
// Submit is thread-safe.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/functional/any_invocable.h"

namespace kurt::platform {

class WorkQueue {
 public:
  using Task = absl::AnyInvocable<void(bool run) &&>;

  WorkQueue(int threads, size_t max_waiting);
  ~WorkQueue();
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  // Queues `task`; false (and `task` not taken) when max_waiting tasks wait already, or the
  // queue is stopping.
  [[nodiscard]] bool Submit(Task& task);
  // Tasks waiting for a thread now.
  size_t Waiting();

 private:
  void Run();

  const size_t max_waiting_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<Task> waiting_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;  // last: they read the members above
};

}  // namespace kurt::platform
