// Renders a parsed message as proto3 JSON by reflection: the output of protobuf's util printer
// (lowerCamelCase names in declaration order, 64-bit integers as strings, enums by name,
// well-known types in their JSON form, default values omitted), without its per-call type
// conversion, which made JSON rendering the edge's largest cost. Stateless and thread-safe.
#pragma once

#include <string>

#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

namespace kurt::edge {

// Appends `message` as JSON. False (with `out` in an unspecified state) when the message holds
// something this printer leaves to the util printer (an Any).
bool PrintJson(const google::protobuf::Message& message, std::string* out);

// Appends the serialized message `bytes` of `type` as JSON: what PrintJson prints of it parsed,
// read straight from the bytes (no message built, parsed and freed per response). False (with
// `out` in an unspecified state) when it leaves them to the parsed path: malformed bytes, a field
// of the wrong wire type, a singular message given twice (a parse merges them), a proto2 type,
// FieldMask, Struct, Value, ListValue, Any.
bool PrintJsonFromWire(const google::protobuf::Descriptor* type, absl::string_view bytes,
                       std::string* out);

}  // namespace kurt::edge
