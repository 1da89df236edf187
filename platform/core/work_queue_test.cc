#include "platform/core/work_queue.h"

#include <atomic>
#include <condition_variable>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/support/wait_until.h"

namespace kurt::platform {
namespace {

// Holds the tasks that wait on it until Open().
class Gate {
 public:
  void Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return open_; });
  }
  void Open() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

// Waits until `done` holds, at most 5 s.
bool Eventually(const std::function<bool()>& done) {
  return testing::WaitUntil(done, absl::Seconds(5));
}

TEST(WorkQueueTest, TasksRunOnTheQueuesThreadOldestFirst) {
  std::mutex mu;
  std::vector<int> order;
  std::atomic<int> on_caller_thread{0};
  const std::thread::id caller = std::this_thread::get_id();
  {
    WorkQueue queue(1, 100);
    for (int i = 0; i < 50; ++i) {
      WorkQueue::Task task = [&, i](bool run) {
        EXPECT_TRUE(run);
        on_caller_thread += std::this_thread::get_id() == caller ? 1 : 0;
        std::lock_guard<std::mutex> lock(mu);
        order.push_back(i);
      };
      ASSERT_TRUE(queue.Submit(task));
    }
    ASSERT_TRUE(Eventually([&] {
      std::lock_guard<std::mutex> lock(mu);
      return order.size() == 50;
    }));
  }
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(order[i], i);
  }
  EXPECT_EQ(on_caller_thread, 0);
}

TEST(WorkQueueTest, ABlockedTaskDoesNotHoldUpTheOthers) {
  Gate gate;
  std::atomic<bool> other_ran{false};
  WorkQueue queue(2, 10);
  WorkQueue::Task blocked = [&](bool) { gate.Wait(); };
  ASSERT_TRUE(queue.Submit(blocked));
  WorkQueue::Task other = [&](bool run) { other_ran = run; };
  ASSERT_TRUE(queue.Submit(other));
  EXPECT_TRUE(Eventually([&] { return other_ran.load(); }))
      << "the second task waited for the first";
  gate.Open();
}

TEST(WorkQueueTest, BeyondMaxWaitingATaskIsRefusedAndLeftToItsCaller) {
  Gate gate;
  std::atomic<int> started{0};
  std::atomic<int> ran{0};
  WorkQueue queue(1, 2);
  WorkQueue::Task blocked = [&](bool) {
    ++started;
    gate.Wait();
  };
  ASSERT_TRUE(queue.Submit(blocked));
  ASSERT_TRUE(Eventually([&] { return started == 1; }));  // on the thread, not waiting
  for (int i = 0; i < 2; ++i) {
    WorkQueue::Task task = [&](bool) { ++ran; };
    ASSERT_TRUE(queue.Submit(task));
  }
  EXPECT_EQ(queue.Waiting(), 2u);
  bool refused_ran = false;
  WorkQueue::Task refused = [&](bool run) { refused_ran = run; };
  EXPECT_FALSE(queue.Submit(refused));
  ASSERT_NE(refused, nullptr) << "a refused task stays with its caller";
  std::move(refused)(true);
  EXPECT_TRUE(refused_ran);

  gate.Open();
  EXPECT_TRUE(Eventually([&] { return ran == 2; }));
  EXPECT_EQ(queue.Waiting(), 0u);
}

TEST(WorkQueueTest, StoppingTellsTheWaitingTasksAndWaitsForTheRunningOne) {
  auto gate = std::make_shared<Gate>();
  std::atomic<bool> running_finished{false};
  std::atomic<int> told_not_run{0};
  std::atomic<int> told_on_destroying_thread{0};
  auto queue = std::make_unique<WorkQueue>(1, 10);
  std::atomic<bool> started{false};
  WorkQueue::Task running = [&, gate](bool run) {
    EXPECT_TRUE(run);
    started = true;
    gate->Wait();
    absl::SleepFor(absl::Milliseconds(50));
    running_finished = true;
  };
  ASSERT_TRUE(queue->Submit(running));
  ASSERT_TRUE(Eventually([&] { return started.load(); }));
  std::thread::id destroying;
  for (int i = 0; i < 3; ++i) {
    WorkQueue::Task waiting = [&](bool run) {
      if (!run) {
        ++told_not_run;
        told_on_destroying_thread += std::this_thread::get_id() == destroying ? 1 : 0;
      }
    };
    ASSERT_TRUE(queue->Submit(waiting));
  }
  std::thread stopper([&] {
    destroying = std::this_thread::get_id();
    queue.reset();
  });
  // The waiting ones are told at once, although the running one still holds its thread.
  EXPECT_TRUE(Eventually([&] { return told_not_run == 3; }));
  EXPECT_FALSE(running_finished);
  gate->Open();
  stopper.join();
  EXPECT_TRUE(running_finished) << "the destructor returned before the running task finished";
  EXPECT_EQ(told_on_destroying_thread, 3);
}

}  // namespace
}  // namespace kurt::platform
