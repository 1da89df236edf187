#include "edge/field_encoding.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/field_mask.pb.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/util/field_mask_util.h"
#include "google/protobuf/util/time_util.h"
#include "google/protobuf/wire_format_lite.h"
#include "platform/core/text.h"

namespace kurt::edge {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::internal::WireFormatLite;

std::string Describe(const FieldDescriptor* f) {
  if (f->enum_type() != nullptr) {
    return f->enum_type()->full_name();
  }
  if (f->message_type() != nullptr) {
    return f->message_type()->full_name();
  }
  return f->type_name();
}

absl::Status BadValue(absl::string_view what, absl::string_view text, const FieldDescriptor* f,
                      absl::string_view why = "") {
  return absl::InvalidArgumentError(
      absl::StrCat(what, ": invalid value \"", text, "\" for ", Describe(f), " field ", f->name(),
                   why.empty() ? "" : " (", why, why.empty() ? "" : ")"));
}

// absl::SimpleAtoi forgives surrounding spaces; a field value does not.
template <typename T>
bool ParseInt(absl::string_view text, T* v) {
  if (text.empty() || absl::ascii_isspace(text.front()) || absl::ascii_isspace(text.back())) {
    return false;
  }
  if (std::is_unsigned_v<T> && text.front() == '-') {
    return false;
  }
  return absl::SimpleAtoi(text, v);
}

bool ParseBool(absl::string_view text, bool* v) {
  if (text == "true" || text == "True" || text == "TRUE" || text == "1") {
    *v = true;
    return true;
  }
  if (text == "false" || text == "False" || text == "FALSE" || text == "0") {
    *v = false;
    return true;
  }
  return false;
}

bool ParseDouble(absl::string_view text, double* v) {
  if (text == "NaN") {
    *v = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  if (text == "Infinity") {
    *v = std::numeric_limits<double>::infinity();
    return true;
  }
  if (text == "-Infinity") {
    *v = -std::numeric_limits<double>::infinity();
    return true;
  }
  if (text.empty() || absl::ascii_isspace(text.front()) || absl::ascii_isspace(text.back()) ||
      absl::ascii_isalpha(text.front())) {
    return false;
  }
  return absl::SimpleAtod(text, v) && std::isfinite(*v);
}

// Appends a scalar (non-message) field.
absl::Status AppendScalar(const FieldDescriptor* f, absl::string_view text, absl::string_view what,
                          std::string* out) {
  const int n = f->number();
  switch (f->type()) {
    case FieldDescriptor::TYPE_STRING:
      if (!platform::IsValidUtf8(text)) {
        return BadValue(what, "", f, "not UTF-8");
      }
      AppendLengthDelimited(n, text, out);
      return absl::OkStatus();
    case FieldDescriptor::TYPE_BYTES: {
      std::string decoded;
      if (!absl::WebSafeBase64Unescape(text, &decoded) && !absl::Base64Unescape(text, &decoded)) {
        return BadValue(what, text, f, "not base64");
      }
      AppendLengthDelimited(n, decoded, out);
      return absl::OkStatus();
    }
    case FieldDescriptor::TYPE_BOOL: {
      bool v;
      if (!ParseBool(text, &v)) {
        return BadValue(what, text, f);
      }
      AppendTag(n, WireFormatLite::WIRETYPE_VARINT, out);
      AppendVarint(v ? 1 : 0, out);
      return absl::OkStatus();
    }
    case FieldDescriptor::TYPE_ENUM: {
      const auto* value = f->enum_type()->FindValueByName(std::string(text));
      int32_t number;
      if (value != nullptr) {
        number = value->number();
      } else if (!ParseInt(text, &number) ||
                 (f->enum_type()->file()->syntax() ==
                      google::protobuf::FileDescriptor::SYNTAX_PROTO2 &&
                  f->enum_type()->FindValueByNumber(number) == nullptr)) {
        return BadValue(what, text, f);
      }
      AppendTag(n, WireFormatLite::WIRETYPE_VARINT, out);
      AppendVarint(static_cast<uint64_t>(static_cast<int64_t>(number)), out);
      return absl::OkStatus();
    }
    case FieldDescriptor::TYPE_INT32:
    case FieldDescriptor::TYPE_SINT32:
    case FieldDescriptor::TYPE_SFIXED32: {
      int32_t v;
      if (!ParseInt(text, &v)) {
        return BadValue(what, text, f);
      }
      if (f->type() == FieldDescriptor::TYPE_SFIXED32) {
        AppendTag(n, WireFormatLite::WIRETYPE_FIXED32, out);
        AppendFixed(v, out);
      } else {
        AppendTag(n, WireFormatLite::WIRETYPE_VARINT, out);
        AppendVarint(f->type() == FieldDescriptor::TYPE_SINT32
                         ? WireFormatLite::ZigZagEncode32(v)
                         : static_cast<uint64_t>(static_cast<int64_t>(v)),
                     out);
      }
      return absl::OkStatus();
    }
    case FieldDescriptor::TYPE_INT64:
    case FieldDescriptor::TYPE_SINT64:
    case FieldDescriptor::TYPE_SFIXED64: {
      int64_t v;
      if (!ParseInt(text, &v)) {
        return BadValue(what, text, f);
      }
      if (f->type() == FieldDescriptor::TYPE_SFIXED64) {
        AppendTag(n, WireFormatLite::WIRETYPE_FIXED64, out);
        AppendFixed(v, out);
      } else {
        AppendTag(n, WireFormatLite::WIRETYPE_VARINT, out);
        AppendVarint(f->type() == FieldDescriptor::TYPE_SINT64 ? WireFormatLite::ZigZagEncode64(v)
                                                               : static_cast<uint64_t>(v),
                     out);
      }
      return absl::OkStatus();
    }
    case FieldDescriptor::TYPE_UINT32:
    case FieldDescriptor::TYPE_FIXED32: {
      uint32_t v;
      if (!ParseInt(text, &v)) {
        return BadValue(what, text, f);
      }
      if (f->type() == FieldDescriptor::TYPE_FIXED32) {
        AppendTag(n, WireFormatLite::WIRETYPE_FIXED32, out);
        AppendFixed(v, out);
      } else {
        AppendTag(n, WireFormatLite::WIRETYPE_VARINT, out);
        AppendVarint(v, out);
      }
      return absl::OkStatus();
    }
    case FieldDescriptor::TYPE_UINT64:
    case FieldDescriptor::TYPE_FIXED64: {
      uint64_t v;
      if (!ParseInt(text, &v)) {
        return BadValue(what, text, f);
      }
      if (f->type() == FieldDescriptor::TYPE_FIXED64) {
        AppendTag(n, WireFormatLite::WIRETYPE_FIXED64, out);
        AppendFixed(v, out);
      } else {
        AppendTag(n, WireFormatLite::WIRETYPE_VARINT, out);
        AppendVarint(v, out);
      }
      return absl::OkStatus();
    }
    case FieldDescriptor::TYPE_DOUBLE: {
      double v;
      if (!ParseDouble(text, &v)) {
        return BadValue(what, text, f);
      }
      AppendTag(n, WireFormatLite::WIRETYPE_FIXED64, out);
      AppendFixed(v, out);
      return absl::OkStatus();
    }
    case FieldDescriptor::TYPE_FLOAT: {
      double v;
      if (!ParseDouble(text, &v) ||
          (std::isfinite(v) && std::fabs(v) > std::numeric_limits<float>::max())) {
        return BadValue(what, text, f);
      }
      AppendTag(n, WireFormatLite::WIRETYPE_FIXED32, out);
      AppendFixed(static_cast<float>(v), out);
      return absl::OkStatus();
    }
    default:
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": field ", f->name(), " cannot be set from text"));
  }
}

// Well-known message types that have a string form.
absl::Status AppendWellKnown(const FieldDescriptor* f, absl::string_view text,
                             absl::string_view what, std::string* out) {
  const std::string& type = f->message_type()->full_name();
  std::string inner;
  if (type == "google.protobuf.Timestamp") {
    google::protobuf::Timestamp ts;
    if (!google::protobuf::util::TimeUtil::FromString(std::string(text), &ts)) {
      return BadValue(what, text, f, "want RFC 3339, e.g. 2024-01-02T03:04:05Z");
    }
    inner = EncodeSecondsNanos(ts.seconds(), ts.nanos());
  } else if (type == "google.protobuf.Duration") {
    google::protobuf::Duration d;
    if (!absl::EndsWith(text, "s") ||
        !google::protobuf::util::TimeUtil::FromString(std::string(text), &d)) {
      return BadValue(what, text, f, "want seconds with an 's', e.g. 1.5s");
    }
    inner = EncodeSecondsNanos(d.seconds(), d.nanos());
  } else if (type == "google.protobuf.FieldMask") {
    google::protobuf::FieldMask mask;
    // The JSON form is lowerCamelCase; snake_case paths are taken as they are.
    if (absl::StrContains(text, '_') ||
        !google::protobuf::util::FieldMaskUtil::FromJsonString(
            google::protobuf::StringPiece(text.data(), text.size()), &mask)) {
      mask.Clear();
      google::protobuf::util::FieldMaskUtil::FromString(
          google::protobuf::StringPiece(text.data(), text.size()), &mask);
    }
    for (const std::string& p : mask.paths()) {
      AppendLengthDelimited(1, p, &inner);
    }
  } else if (absl::StartsWith(type, "google.protobuf.") && absl::EndsWith(type, "Value") &&
             f->message_type()->field_count() == 1 &&
             f->message_type()->field(0)->name() == "value") {
    // Wrappers: the text is the wrapped value.
    if (absl::Status s = AppendScalar(f->message_type()->field(0), text, what, &inner); !s.ok()) {
      return BadValue(what, text, f);
    }
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": field ", f->name(), " is a message (", type, "); set its fields, e.g. ", f->name(),
        ".", f->message_type()->field_count() > 0 ? f->message_type()->field(0)->name() : "x"));
  }
  AppendLengthDelimited(f->number(), inner, out);
  return absl::OkStatus();
}

bool WellFormed(const google::protobuf::Descriptor* type, absl::string_view message, int depth) {
  if (depth > 100) {
    return false;
  }
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(message.data()),
                                            static_cast<int>(message.size()));
  while (in.CurrentPosition() < static_cast<int>(message.size())) {
    uint32_t tag = in.ReadTag();
    int number = WireFormatLite::GetTagFieldNumber(tag);
    if (tag == 0 || number == 0) {
      return false;
    }
    const FieldDescriptor* f = type != nullptr ? type->FindFieldByNumber(number) : nullptr;
    switch (WireFormatLite::GetTagWireType(tag)) {
      case WireFormatLite::WIRETYPE_VARINT: {
        uint64_t v;
        if (!in.ReadVarint64(&v)) {
          return false;
        }
        break;
      }
      case WireFormatLite::WIRETYPE_FIXED64:
        if (!in.Skip(8)) {
          return false;
        }
        break;
      case WireFormatLite::WIRETYPE_FIXED32:
        if (!in.Skip(4)) {
          return false;
        }
        break;
      case WireFormatLite::WIRETYPE_LENGTH_DELIMITED: {
        uint32_t length;
        if (!in.ReadVarint32(&length)) {
          return false;
        }
        int pos = in.CurrentPosition();
        if (length > message.size() - static_cast<size_t>(pos)) {
          return false;
        }
        absl::string_view sub = message.substr(pos, length);
        if (!in.Skip(static_cast<int>(length))) {
          return false;
        }
        if (f == nullptr) {
          break;
        }
        if (f->type() == FieldDescriptor::TYPE_MESSAGE) {
          if (!WellFormed(f->message_type(), sub, depth + 1)) {
            return false;
          }
        } else if (f->is_repeated() && f->type() != FieldDescriptor::TYPE_STRING &&
                   f->type() != FieldDescriptor::TYPE_BYTES) {
          // Packed scalars.
          FieldDescriptor::Type t = f->type();
          int fixed = t == FieldDescriptor::TYPE_DOUBLE || t == FieldDescriptor::TYPE_FIXED64 ||
                              t == FieldDescriptor::TYPE_SFIXED64
                          ? 8
                      : t == FieldDescriptor::TYPE_FLOAT || t == FieldDescriptor::TYPE_FIXED32 ||
                              t == FieldDescriptor::TYPE_SFIXED32
                          ? 4
                          : 0;
          if (fixed > 0) {
            if (length % static_cast<uint32_t>(fixed) != 0) {
              return false;
            }
          } else {
            google::protobuf::io::CodedInputStream packed(
                reinterpret_cast<const uint8_t*>(sub.data()), static_cast<int>(sub.size()));
            while (packed.CurrentPosition() < static_cast<int>(sub.size())) {
              uint64_t v;
              if (!packed.ReadVarint64(&v)) {
                return false;
              }
            }
          }
        }
        break;
      }
      default:  // groups: not in proto3, and not something our services send
        return false;
    }
  }
  return true;
}

}  // namespace

bool IsWellFormed(const google::protobuf::Descriptor* type, absl::string_view message) {
  return WellFormed(type, message, 0);
}

void AppendVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

void AppendTag(int field_number, WireFormatLite::WireType type, std::string* out) {
  AppendVarint((static_cast<uint64_t>(field_number) << 3) | type, out);
}

void AppendVarintField(int field_number, uint64_t value, std::string* out) {
  AppendTag(field_number, WireFormatLite::WIRETYPE_VARINT, out);
  AppendVarint(value, out);
}

std::string EncodeSecondsNanos(int64_t seconds, int32_t nanos) {
  std::string out;
  if (seconds != 0) {
    AppendVarintField(1, static_cast<uint64_t>(seconds), &out);
  }
  // Negative nanos (a negative Duration) are sign-extended, as int32 varints are.
  if (nanos != 0) {
    AppendVarintField(2, static_cast<uint64_t>(static_cast<int64_t>(nanos)), &out);
  }
  return out;
}

void AppendLengthDelimited(int field_number, absl::string_view bytes, std::string* out) {
  AppendTag(field_number, WireFormatLite::WIRETYPE_LENGTH_DELIMITED, out);
  AppendVarint(bytes.size(), out);
  out->append(bytes.data(), bytes.size());
}

absl::Status AppendFieldFromText(const FieldPath& path, absl::string_view text,
                                 absl::string_view what, std::string* out) {
  const FieldDescriptor* leaf = path.back();
  if (leaf->is_map()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": map field ", leaf->name(), " cannot be set from text"));
  }
  std::string leaf_bytes;
  absl::Status s =
      leaf->type() == FieldDescriptor::TYPE_MESSAGE || leaf->type() == FieldDescriptor::TYPE_GROUP
          ? AppendWellKnown(leaf, text, what, &leaf_bytes)
          : AppendScalar(leaf, text, what, &leaf_bytes);
  if (!s.ok()) {
    return s;
  }
  for (size_t i = path.size() - 1; i > 0; --i) {
    std::string wrapped;
    AppendLengthDelimited(path[i - 1]->number(), leaf_bytes, &wrapped);
    leaf_bytes = std::move(wrapped);
  }
  out->append(leaf_bytes);
  return absl::OkStatus();
}

bool FindLengthDelimited(absl::string_view message, int field_number, absl::string_view* value) {
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(message.data()),
                                            static_cast<int>(message.size()));
  bool found = false;
  while (true) {
    uint32_t tag = in.ReadTag();
    if (tag == 0) {
      return found;
    }
    if (WireFormatLite::GetTagFieldNumber(tag) == field_number &&
        WireFormatLite::GetTagWireType(tag) == WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
      uint32_t length;
      if (!in.ReadVarint32(&length)) {
        return false;
      }
      int pos = in.CurrentPosition();
      if (!in.Skip(static_cast<int>(length))) {
        return false;
      }
      *value = message.substr(pos, length);
      found = true;
      continue;
    }
    if (!WireFormatLite::SkipField(&in, tag)) {
      return false;
    }
  }
}

bool FindInt32(absl::string_view message, int field_number, int32_t* value) {
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(message.data()),
                                            static_cast<int>(message.size()));
  bool found = false;
  while (true) {
    uint32_t tag = in.ReadTag();
    if (tag == 0) {
      return found;
    }
    if (WireFormatLite::GetTagFieldNumber(tag) == field_number &&
        WireFormatLite::GetTagWireType(tag) == WireFormatLite::WIRETYPE_VARINT) {
      uint64_t v = 0;
      if (!in.ReadVarint64(&v)) {
        return false;
      }
      // An int32 is sent sign-extended to 64 bits; its low 32 bits are the value.
      *value = static_cast<int32_t>(static_cast<uint32_t>(v));
      found = true;
      continue;
    }
    if (!WireFormatLite::SkipField(&in, tag)) {
      return false;
    }
  }
}

std::string KeepOnlyField(absl::string_view message, int field_number) {
  std::string out;
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(message.data()),
                                            static_cast<int>(message.size()));
  while (true) {
    int start = in.CurrentPosition();
    uint32_t tag = in.ReadTag();
    if (tag == 0) {
      break;
    }
    if (!WireFormatLite::SkipField(&in, tag)) {
      break;
    }
    if (WireFormatLite::GetTagFieldNumber(tag) == field_number) {
      out.append(message.data() + start, in.CurrentPosition() - start);
    }
  }
  return out;
}

}  // namespace kurt::edge
