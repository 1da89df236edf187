// protobuf Timestamps as the services keep time: whole microseconds, as PostgreSQL does, and
// checked against google.protobuf.Timestamp's range when they come from outside.
#pragma once

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/timestamp.pb.h"

namespace kurt::platform {

// `t` in whole microseconds (what the database keeps), correct before 1970 too.
void SetTimestamp(absl::Time t, google::protobuf::Timestamp* out);
absl::Time FromTimestamp(const google::protobuf::Timestamp& t);
// INVALID_ARGUMENT naming `field` unless `t` is within google.protobuf.Timestamp's range
// (0001-01-01 to 9999-12-31) with valid nanos.
absl::Status ValidateTimestamp(const google::protobuf::Timestamp& t, absl::string_view field);

}  // namespace kurt::platform
