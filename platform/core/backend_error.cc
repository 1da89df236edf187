#include "platform/core/backend_error.h"

#include "absl/strings/cord.h"

namespace kurt::platform {
namespace {

constexpr char kBackendErrorPayload[] = "type.kurt.dev/kurt.platform.BackendError";

}  // namespace

absl::Status BackendError(absl::Status status) {
  if (!status.ok()) {
    status.SetPayload(kBackendErrorPayload, absl::Cord());
  }
  return status;
}

bool IsBackendError(const absl::Status& status) {
  return status.GetPayload(kBackendErrorPayload).has_value();
}

}  // namespace kurt::platform
