// Encodes a field value given as text (a path variable or a query parameter) straight into
// protobuf wire format, checking it against the field's type. Appending such encodings to a
// serialized message merges them into it (the protobuf rule for concatenated messages): that is
// how the transcoder adds path and query values to the JSON body without a message in between.
#pragma once

#include <cstring>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "edge/route.h"
#include "google/protobuf/wire_format_lite.h"

namespace kurt::edge {

// Appends `path` = `text` to `out`, which holds fields of path.front()'s containing message.
// `what` names the value in errors: `query parameter "count"`. Errors are INVALID_ARGUMENT and
// say which field and why.
absl::Status AppendFieldFromText(const FieldPath& path, absl::string_view text,
                                 absl::string_view what, std::string* out);

// The wire type of one (unpacked) value of `f`.
inline google::protobuf::internal::WireFormatLite::WireType WireTypeOf(
    const google::protobuf::FieldDescriptor* f) {
  using google::protobuf::internal::WireFormatLite;
  return WireFormatLite::WireTypeForFieldType(static_cast<WireFormatLite::FieldType>(f->type()));
}

// Wire format's pieces: a varint, a field's tag, a fixed-width value.
void AppendVarint(uint64_t v, std::string* out);
void AppendTag(int field_number, google::protobuf::internal::WireFormatLite::WireType type,
               std::string* out);
template <typename T>
void AppendFixed(T v, std::string* out) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &v, sizeof(T));  // little-endian hosts only (x86-64, arm64)
  out->append(bytes, sizeof(T));
}

// Appends a length-delimited field (a message, string or bytes) to `out`.
void AppendLengthDelimited(int field_number, absl::string_view bytes, std::string* out);
// Appends a varint field (int32, int64, uint32, uint64, bool, enum) to `out`.
void AppendVarintField(int field_number, uint64_t value, std::string* out);
// A google.protobuf.Timestamp or Duration (both are {int64 seconds = 1; int32 nanos = 2;}) in
// wire format, zero fields omitted.
std::string EncodeSecondsNanos(int64_t seconds, int32_t nanos);

// Reads the last occurrence of length-delimited top-level field `field_number` of a serialized
// message (a string, bytes or message field). False when absent or the bytes do not parse.
bool FindLengthDelimited(absl::string_view message, int field_number, absl::string_view* value);

// Reads the last occurrence of varint top-level field `field_number` of a serialized message as
// an int32 (an int32 field). False when absent or the bytes do not parse.
bool FindInt32(absl::string_view message, int field_number, int32_t* value);

// The top-level occurrences of `field_number`, re-encoded as a message that has only that field.
std::string KeepOnlyField(absl::string_view message, int field_number);

// Whether `message` is well-formed wire format for `type`, down through nested messages and
// packed fields. protobuf 3.21's BinaryToJsonString loops forever on some malformed packed
// fields (found by edge_fuzz), so bytes from outside are checked with this first.
bool IsWellFormed(const google::protobuf::Descriptor* type, absl::string_view message);

}  // namespace kurt::edge
