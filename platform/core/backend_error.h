// Statuses whose message is a backend's own text (PostgreSQL's: table and constraint
// names, values, SQL): for the logs, never for a caller. platform/pg marks what it returns, and the
// one mapping to gRPC (platform::ToGrpcStatus) answers a marked status with its code, a generic
// message and the request id, and logs the text. Pure functions; safe from any thread.
#pragma once

#include "absl/status/status.h"

namespace kurt::platform {

// `status` with the mark (a payload), unchanged otherwise; OK stays OK.
absl::Status BackendError(absl::Status status);
bool IsBackendError(const absl::Status& status);

}  // namespace kurt::platform
