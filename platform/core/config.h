// Process start-up: flags with environment twins, and the settings every binary shares.
//
// Every absl flag `--some_name` can also be set by the environment variable `KURT_SOME_NAME`; a
// flag on the command line wins over the environment.
#pragma once

#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

ABSL_DECLARE_FLAG(std::string, listen_host);
ABSL_DECLARE_FLAG(int, metrics_port);
ABSL_DECLARE_FLAG(std::string, log_level);
ABSL_DECLARE_FLAG(absl::Duration, shutdown_grace);
ABSL_DECLARE_FLAG(bool, dev_mode);

namespace kurt::platform {

// The environment variable that sets flag `name`: KURT_ + the name upper-cased.
std::string EnvTwinName(absl::string_view flag_name);

// A check of the settings that runs in InitProcess once every flag is parsed, before the binary
// connects to anything: a library registers one (at static initialization) for a rule about its
// own flags, and every binary that links it then refuses to start, with exit code 2 and the
// check's message, when the rule is broken. Returns true, for `static const bool x = ...;`.
using StartupCheck = absl::Status (*)();
bool RegisterStartupCheck(StartupCheck check);

// Applies environment twins, then the command line, then configures logging for `component`, then
// runs the startup checks. Exits with a message naming the variable or flag when a value does not
// parse or a check fails. Returns the
// positional arguments. Call first in main, before any thread starts: it also blocks SIGTERM and
// SIGINT so that GrpcServer::Wait (or WaitForShutdownSignal) can take them synchronously.
std::vector<char*> InitProcess(int argc, char** argv, absl::string_view component,
                               absl::string_view usage);

// Sets a flag's default for this binary (e.g. its own ports); env and command line still win.
// Call before InitProcess.
template <typename T, typename V>
void SetFlagDefault(absl::Flag<T>* flag, V value) {
  absl::SetFlag(flag, T(value));
}

// Blocks until SIGTERM or SIGINT arrives (they must have been blocked by InitProcess).
int WaitForShutdownSignal();

}  // namespace kurt::platform
