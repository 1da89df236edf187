// Renders a parsed message as proto3 JSON by reflection: the output of protobuf's util printer
// (lowerCamelCase names in declaration order, 64-bit integers as strings, enums by name,
// well-known types in their JSON form, default values omitted), without its per-call type
// conversion, which made JSON rendering the edge's largest cost. Stateless and thread-safe.
#pragma once

#include <string>

#include "google/protobuf/message.h"

namespace kurt::edge {

// Appends `message` as JSON. False (with `out` in an unspecified state) when the message holds
// something this printer leaves to the util printer (an Any).
bool PrintJson(const google::protobuf::Message& message, std::string* out);

}  // namespace kurt::edge
