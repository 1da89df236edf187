// Parses a proto3 JSON request body straight into protobuf wire format by the message's
// descriptor: no google.protobuf.Type copied per call, no object writer, no message in between.
// protobuf's util parser (util::JsonToBinaryString) copied every type it met with all its options
// on each request, and was a create's largest cost in the edge after the kernel (docs/edge.md).
//
// It takes the bodies clients send: objects of known fields by their JSON or proto names, strings,
// numbers, booleans, enums by name, arrays, maps with string keys, nested messages, Timestamps and
// the wrapper types. Everything else it declines rather than guess: invalid JSON, an unknown
// field, null, a repeated key, two members of one oneof, a number out of its field's range or not
// exactly representable, bytes other than empty, NaN, the other well-known types, depth past 32.
// The caller then hands the same body to the util parser, whose answer (the bytes, or the error
// the client sees) is the reference this parser is tested against (json_parser_test.cc). So a
// body either parses to what the util parser makes of it, or is the util parser's to answer.
//
// Stateless and thread-safe.
#pragma once

#include <string>

#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"

namespace kurt::edge {

// Appends `json`, a JSON object, as a serialized `type` to `out`. False when declined (above);
// `out` is then in an unspecified state.
bool JsonToWire(const google::protobuf::Descriptor* type, absl::string_view json, std::string* out);

}  // namespace kurt::edge
