// A real binary run as a child process of a test, its output appended to a log file that is kept
// for a failing test's message.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace kurt::testing {

// Stopped (SIGTERM, then SIGKILL after 10 s) on destruction.
class ChildProcess {
 public:
  // `env`: NAME=value entries set in the child's environment on top of this process's.
  ChildProcess(std::string path, std::vector<std::string> args, std::string log_path,
               std::vector<std::string> env = {});
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // NOT_FOUND when the binary is not there (a build dependency is missing).
  absl::Status Start();
  pid_t pid() const { return pid_; }
  bool Running();
  // Sends `signal` without waiting.
  void Signal(int signal);
  // Waits for the exit; returns the exit status (128 + the signal when killed), -1 on timeout.
  int Wait(absl::Duration timeout);
  // Sends `signal` and waits up to `wait` for the process to end; true if it did.
  bool Stop(int signal, absl::Duration wait = absl::Seconds(10));
  const std::string& log_path() const { return log_path_; }
  // The last `lines` lines of its log (for failure messages).
  std::string LogTail(int lines = 30) const;

 private:
  const std::string path_;
  const std::vector<std::string> args_;
  const std::string log_path_;
  const std::vector<std::string> env_;
  pid_t pid_ = -1;
  bool exited_ = false;
  int exit_status_ = -1;
};

}  // namespace kurt::testing
