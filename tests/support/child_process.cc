#include "tests/support/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"

extern char** environ;

namespace kurt::testing {

ChildProcess::ChildProcess(std::string path, std::vector<std::string> args, std::string log_path,
                           std::vector<std::string> env)
    : path_(std::move(path)),
      args_(std::move(args)),
      log_path_(std::move(log_path)),
      env_(std::move(env)) {}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && !exited_ && !Stop(SIGTERM)) {
    Stop(SIGKILL);
  }
}

absl::Status ChildProcess::Start() {
  if (::access(path_.c_str(), X_OK) != 0) {
    return absl::NotFoundError(absl::StrCat(path_, " is not built"));
  }
  // Made before fork: the child of a threaded process may only call async-signal-safe functions.
  std::vector<std::string> environment = env_;
  for (char** e = environ; *e != nullptr; ++e) {
    absl::string_view entry(*e);
    const bool overridden = std::any_of(env_.begin(), env_.end(), [&](const std::string& mine) {
      return entry.substr(0, entry.find('=') + 1) == mine.substr(0, mine.find('=') + 1);
    });
    if (!overridden) {
      environment.emplace_back(entry);
    }
  }
  std::vector<char*> envp;
  envp.reserve(environment.size() + 1);
  for (std::string& entry : environment) {
    envp.push_back(entry.data());
  }
  envp.push_back(nullptr);
  std::vector<char*> argv;
  argv.reserve(args_.size() + 2);
  argv.push_back(const_cast<char*>(path_.c_str()));
  for (const std::string& a : args_) {
    argv.push_back(const_cast<char*>(a.c_str()));
  }
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) {
    return absl::InternalError("fork failed");
  }
  if (pid == 0) {
    int fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    // The test may block signals, and a blocked mask survives exec: give the child the defaults.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(path_.c_str(), argv.data(), envp.data());
    _exit(127);
  }
  pid_ = pid;
  exited_ = false;
  exit_status_ = -1;
  return absl::OkStatus();
}

bool ChildProcess::Running() {
  if (pid_ <= 0 || exited_) {
    return false;
  }
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exited_ = true;
    exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  return !exited_;
}

void ChildProcess::Signal(int signal) {
  if (Running()) {
    ::kill(pid_, signal);
  }
}

int ChildProcess::Wait(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (Running()) {
    if (absl::Now() > deadline) {
      return -1;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  return exit_status_;
}

bool ChildProcess::Stop(int signal, absl::Duration wait) {
  if (!Running()) {
    return true;
  }
  ::kill(pid_, signal);
  const absl::Time deadline = absl::Now() + wait;
  while (absl::Now() < deadline) {
    if (!Running()) {
      return true;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return !Running();
}

std::string ChildProcess::LogTail(int lines) const {
  std::ifstream in(log_path_);
  std::vector<std::string> all;
  for (std::string line; std::getline(in, line);) {
    all.push_back(line);
  }
  size_t from = all.size() > static_cast<size_t>(lines) ? all.size() - lines : 0;
  return absl::StrJoin(all.begin() + static_cast<std::ptrdiff_t>(from), all.end(), "\n");
}

}  // namespace kurt::testing
