// Capturing this process's stderr, where every component writes its JSON logs, for tests that
// check what was (or was not) logged.
//
// One capture at a time per process: it swaps file descriptor 2 for a file, so every thread's
// writes to stderr land in the capture while it is active. Create, stop and destroy it on the
// test's thread.
#pragma once

#include <string>

namespace kurt::testing {

// Sends stderr to a temporary file from construction until Stop(). Destruction without Stop()
// (a failed ASSERT on the way) restores stderr and deletes the file too.
class StderrCapture {
 public:
  StderrCapture();
  ~StderrCapture();
  StderrCapture(const StderrCapture&) = delete;
  StderrCapture& operator=(const StderrCapture&) = delete;

  // Restores stderr and returns everything written to it since construction; "" once stopped.
  std::string Stop();

 private:
  std::string path_;
  int saved_ = -1;  // the original stderr while capturing, else -1
};

}  // namespace kurt::testing
