#include "platform/core/config.h"

#include <execinfo.h>
#include <signal.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <iostream>

#include "absl/debugging/failure_signal_handler.h"
#include "absl/debugging/symbolize.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "platform/core/log.h"

ABSL_FLAG(std::string, listen_host, "127.0.0.1",
          "Address the gRPC and HTTP servers bind (0.0.0.0 in Kubernetes)");
ABSL_FLAG(int, metrics_port, 0, "HTTP port of /metrics, /healthz and /readyz");
ABSL_FLAG(std::string, log_level, "info", "debug, info, warn or error");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(10),
          "How long SIGTERM waits for in-flight work (e.g. 10s)");
ABSL_FLAG(bool, dev_mode, false,
          "DEVELOPMENT ONLY: allow settings that are unsafe where anyone else can reach the "
          "binary (an empty --edge_secret; the edge without --accounts_address, so without "
          "authentication and rate limits); never in production");

namespace kurt::platform {

std::string EnvTwinName(absl::string_view flag_name) {
  std::string name = "KURT_";
  for (char c : flag_name) {
    name += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return name;
}

namespace {

std::vector<StartupCheck>& StartupChecks() {
  static auto* checks = new std::vector<StartupCheck>();
  return *checks;
}

void ApplyEnvironmentTwins() {
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    const std::string env = EnvTwinName(name);
    const char* value = std::getenv(env.c_str());
    if (value == nullptr) {
      continue;
    }
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      std::cerr << "invalid value for " << env << " (flag --" << name << "): " << error << "\n";
      std::exit(2);
    }
  }
}

// Runs after Abseil's report of a crash (the signal, and the function it came in), which goes no
// further on Debian's Abseil (built without frame pointers): the crashing thread's stack by glibc's
// unwinder, which reads the binaries' unwind tables; then the process dies of the signal. A frame
// in a Kurt binary prints as binary(+offset): `addr2line -Cfe <binary> <offset>` names it.
void WriteStackThenDie(int signo) {
  void* frames[64];
  const int n = backtrace(frames, 64);
  static constexpr char kHead[] = "*** the crashing thread's stack:\n";
  if (write(STDERR_FILENO, kHead, sizeof(kHead) - 1) < 0) {
    // nothing more can be said
  }
  backtrace_symbols_fd(frames, n, STDERR_FILENO);
  signal(signo, SIG_DFL);
  raise(signo);
}

void InstallCrashReport(const char* argv0) {
  void* warm[1];
  backtrace(warm, 1);  // loads the unwinder now: it allocates the first time, in no handler
  struct sigaction action = {};
  action.sa_handler = WriteStackThenDie;
  action.sa_flags = SA_NODEFER;
  sigemptyset(&action.sa_mask);
  for (int signo : {SIGSEGV, SIGILL, SIGFPE, SIGABRT, SIGBUS, SIGTRAP}) {
    sigaction(signo, &action, nullptr);
  }
  absl::InitializeSymbolizer(argv0);
  absl::FailureSignalHandlerOptions options;
  options.call_previous_handler = true;  // WriteStackThenDie
  absl::InstallFailureSignalHandler(options);
  // Abseil's handler takes SIGTERM too; it stays a shutdown signal (blocked, for sigwait).
  signal(SIGTERM, SIG_DFL);
}

}  // namespace

bool RegisterStartupCheck(StartupCheck check) {
  StartupChecks().push_back(check);
  return true;
}

std::vector<char*> InitProcess(int argc, char** argv, absl::string_view component,
                               absl::string_view usage) {
  // Block the shutdown signals before any thread exists, so every thread inherits the mask and
  // the signals wait for sigwait() in WaitForShutdownSignal.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  // A peer closing a socket must not kill the process.
  signal(SIGPIPE, SIG_IGN);
  // A crash (SIGSEGV, SIGBUS, SIGABRT, ...) writes its signal, the function it came in and the
  // crashing thread's stack to stderr (the log), then the process dies of it as before: without
  // this a crash left the log without a word.
  InstallCrashReport(argv[0]);
  // Debian's Abseil is built with mutex deadlock detection on, which costs every gRPC call a
  // graph update (seen in profiles of the edge and links); the services rely on tests, not on it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  absl::SetProgramUsageMessage(absl::StrCat(
      usage, "\nEvery flag --name can also be set by the environment variable KURT_NAME."));
  ApplyEnvironmentTwins();
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);

  log::Level level;
  if (!log::ParseLevel(absl::GetFlag(FLAGS_log_level), &level)) {
    std::cerr << "invalid --log_level " << absl::GetFlag(FLAGS_log_level)
              << " (debug, info, warn or error)\n";
    std::exit(2);
  }
  log::Configure(component, level);
  for (StartupCheck check : StartupChecks()) {
    if (absl::Status status = check(); !status.ok()) {
      std::cerr << component << ": refusing to start: " << status.message() << "\n";
      std::exit(2);
    }
  }
  return positional;
}

int WaitForShutdownSignal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  int sig = 0;
  sigwait(&set, &sig);
  return sig;
}

}  // namespace kurt::platform
