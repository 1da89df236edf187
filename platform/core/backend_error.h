// Statuses whose message is a backend's own text (PostgreSQL's, Redis's: table and constraint
// names, hosts, SQL): for the logs, never for a caller. The clients mark what they return, and the
// one mapping to gRPC (platform::ToGrpcStatus) answers a marked status with its code, a generic
// message and the request id, and logs the text. Pure functions; safe from any thread.
#pragma once

#include "absl/status/status.h"

namespace kurt::platform {

// `status` with the mark (a payload), unchanged otherwise; OK stays OK.
absl::Status BackendError(absl::Status status);
bool IsBackendError(const absl::Status& status);

}  // namespace kurt::platform
