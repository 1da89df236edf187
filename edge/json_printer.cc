#include "edge/json_printer.h"

#include <cmath>
#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "edge/field_encoding.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/field_mask.pb.h"
#include "google/protobuf/stubs/strutil.h"
#include "google/protobuf/timestamp.pb.h"
#include "google/protobuf/util/field_mask_util.h"
#include "google/protobuf/util/time_util.h"
#include "google/protobuf/wire_format_lite.h"
#include "platform/core/text.h"

namespace kurt::edge {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;
using google::protobuf::internal::WireFormatLite;

void AppendQuoted(absl::string_view s, std::string* out) {
  // The util printer's escaping: quotes, backslashes, control characters, and the characters
  // that matter inside HTML (<, >) and in JavaScript (U+2028, U+2029) as \uXXXX.
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = s[i];
    switch (c) {
      case '"':
        out->append("\\\"");
        continue;
      case '\\':
        out->append("\\\\");
        continue;
      case '\b':
        out->append("\\b");
        continue;
      case '\f':
        out->append("\\f");
        continue;
      case '\n':
        out->append("\\n");
        continue;
      case '\r':
        out->append("\\r");
        continue;
      case '\t':
        out->append("\\t");
        continue;
      case '<':
      case '>':
        out->append("\\u00");
        out->push_back(kHex[c >> 4]);
        out->push_back(kHex[c & 0xF]);
        continue;
      default:
        break;
    }
    if (c < 0x20 || c == 0x7f) {
      out->append("\\u00");
      out->push_back(kHex[c >> 4]);
      out->push_back(kHex[c & 0xF]);
    } else if (c == 0xE2 && i + 2 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0x80 &&
               (static_cast<unsigned char>(s[i + 2]) == 0xA8 ||
                static_cast<unsigned char>(s[i + 2]) == 0xA9)) {
      out->append(static_cast<unsigned char>(s[i + 2]) == 0xA8 ? "\\u2028" : "\\u2029");
      i += 2;
    } else {
      out->push_back(static_cast<char>(c));
    }
  }
  out->push_back('"');
}

void AppendDouble(double v, std::string* out) {
  if (std::isnan(v)) {
    out->append("\"NaN\"");
  } else if (std::isinf(v)) {
    out->append(v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
  } else {
    out->append(google::protobuf::SimpleDtoa(v));
  }
}

void AppendFloat(float v, std::string* out) {
  if (std::isnan(v)) {
    out->append("\"NaN\"");
  } else if (std::isinf(v)) {
    out->append(v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
  } else {
    out->append(google::protobuf::SimpleFtoa(v));
  }
}

// An enum value by name; a number it does not name, as the number; NullValue as null.
void AppendEnum(const google::protobuf::EnumDescriptor* type, int number, std::string* out) {
  if (type->full_name() == "google.protobuf.NullValue") {
    out->append("null");
    return;
  }
  const auto* value = type->FindValueByNumber(number);
  if (value != nullptr) {
    AppendQuoted(value->name(), out);
  } else {
    absl::StrAppend(out, number);
  }
}

// `value` in `width` decimal digits, zero-padded (0 <= value < 10^width).
void AppendDigits(int64_t value, int width, std::string* out) {
  char digits[10];
  for (int i = width - 1; i >= 0; --i) {
    digits[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
  out->append(digits, static_cast<size_t>(width));
}

// A Timestamp (`timestamp`) or Duration as the util printer writes it, quoted; false for a
// Timestamp outside 0001-01-01 to 9999-12-31, which it refuses. A Timestamp with valid nanos is
// written here (TimeUtil's StringPrintf was a tenth of a response's printing), the rest by
// TimeUtil.
bool AppendTime(bool timestamp, int64_t seconds, int32_t nanos, std::string* out) {
  using google::protobuf::util::TimeUtil;
  if (timestamp &&
      (seconds < TimeUtil::kTimestampMinSeconds || seconds > TimeUtil::kTimestampMaxSeconds)) {
    return false;
  }
  if (!timestamp || nanos < 0 || nanos > 999'999'999) {
    std::string text;
    if (timestamp) {
      google::protobuf::Timestamp ts;
      ts.set_seconds(seconds);
      ts.set_nanos(nanos);
      text = TimeUtil::ToString(ts);
    } else {
      google::protobuf::Duration du;
      du.set_seconds(seconds);
      du.set_nanos(nanos);
      text = TimeUtil::ToString(du);
    }
    AppendQuoted(text, out);
    return true;
  }
  const absl::CivilSecond civil =
      absl::ToCivilSecond(absl::FromUnixSeconds(seconds), absl::UTCTimeZone());
  out->push_back('"');
  AppendDigits(civil.year(), 4, out);
  out->push_back('-');
  AppendDigits(civil.month(), 2, out);
  out->push_back('-');
  AppendDigits(civil.day(), 2, out);
  out->push_back('T');
  AppendDigits(civil.hour(), 2, out);
  out->push_back(':');
  AppendDigits(civil.minute(), 2, out);
  out->push_back(':');
  AppendDigits(civil.second(), 2, out);
  // Fractions in 3, 6 or 9 digits, the fewest that hold the nanos exactly.
  if (nanos != 0) {
    out->push_back('.');
    if (nanos % 1'000'000 == 0) {
      AppendDigits(nanos / 1'000'000, 3, out);
    } else if (nanos % 1'000 == 0) {
      AppendDigits(nanos / 1'000, 6, out);
    } else {
      AppendDigits(nanos, 9, out);
    }
  }
  out->append("Z\"");
  return true;
}

bool PrintMessage(const Message& m, std::string* out);

// One value of `f` (element `index` when repeated).
bool PrintValue(const Message& m, const FieldDescriptor* f, int index, std::string* out) {
  const Reflection* r = m.GetReflection();
  bool rep = f->is_repeated();
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      absl::StrAppend(out, rep ? r->GetRepeatedInt32(m, f, index) : r->GetInt32(m, f));
      return true;
    case FieldDescriptor::CPPTYPE_UINT32:
      absl::StrAppend(out, rep ? r->GetRepeatedUInt32(m, f, index) : r->GetUInt32(m, f));
      return true;
    case FieldDescriptor::CPPTYPE_INT64:
      absl::StrAppend(out, "\"", rep ? r->GetRepeatedInt64(m, f, index) : r->GetInt64(m, f), "\"");
      return true;
    case FieldDescriptor::CPPTYPE_UINT64:
      absl::StrAppend(out, "\"", rep ? r->GetRepeatedUInt64(m, f, index) : r->GetUInt64(m, f),
                      "\"");
      return true;
    case FieldDescriptor::CPPTYPE_DOUBLE:
      AppendDouble(rep ? r->GetRepeatedDouble(m, f, index) : r->GetDouble(m, f), out);
      return true;
    case FieldDescriptor::CPPTYPE_FLOAT:
      AppendFloat(rep ? r->GetRepeatedFloat(m, f, index) : r->GetFloat(m, f), out);
      return true;
    case FieldDescriptor::CPPTYPE_BOOL:
      out->append((rep ? r->GetRepeatedBool(m, f, index) : r->GetBool(m, f)) ? "true" : "false");
      return true;
    case FieldDescriptor::CPPTYPE_ENUM: {
      AppendEnum(f->enum_type(), rep ? r->GetRepeatedEnumValue(m, f, index) : r->GetEnumValue(m, f),
                 out);
      return true;
    }
    case FieldDescriptor::CPPTYPE_STRING: {
      std::string scratch;
      const std::string& s = rep ? r->GetRepeatedStringReference(m, f, index, &scratch)
                                 : r->GetStringReference(m, f, &scratch);
      if (f->type() == FieldDescriptor::TYPE_BYTES) {
        absl::StrAppend(out, "\"", absl::Base64Escape(s), "\"");
      } else {
        AppendQuoted(s, out);
      }
      return true;
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return PrintMessage(rep ? r->GetRepeatedMessage(m, f, index) : r->GetMessage(m, f), out);
  }
  return false;
}

// A map key that is not a string, as JSON has it: `printed` (a bool or a number as printed as a
// value) in quotes, which 64-bit numbers already have.
void AppendMapKey(absl::string_view printed, std::string* out) {
  if (!printed.empty() && printed.front() == '"') {
    out->append(printed.data(), printed.size());
  } else {
    absl::StrAppend(out, "\"", printed, "\"");
  }
}

bool PrintMapKey(const Message& entry, const FieldDescriptor* key, std::string* out) {
  if (key->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
    std::string scratch;
    AppendQuoted(entry.GetReflection()->GetStringReference(entry, key, &scratch), out);
    return true;
  }
  std::string printed;
  if (!PrintValue(entry, key, -1, &printed)) {
    return false;
  }
  AppendMapKey(printed, out);
  return true;
}

// Well-known types with a JSON form of their own; `handled` false for ordinary messages.
bool PrintWellKnown(const Message& m, std::string* out, bool* handled) {
  *handled = true;
  const Descriptor* d = m.GetDescriptor();
  const std::string& name = d->full_name();
  if (name.rfind("google.protobuf.", 0) != 0) {
    *handled = false;
    return true;
  }
  const Reflection* r = m.GetReflection();
  if (name == "google.protobuf.Timestamp" || name == "google.protobuf.Duration") {
    return AppendTime(name == "google.protobuf.Timestamp", r->GetInt64(m, d->field(0)),
                      r->GetInt32(m, d->field(1)), out);
  }
  if (name == "google.protobuf.FieldMask") {
    google::protobuf::FieldMask mask;
    const FieldDescriptor* paths = d->field(0);
    for (int i = 0; i < r->FieldSize(m, paths); ++i) {
      mask.add_paths(r->GetRepeatedString(m, paths, i));
    }
    std::string text;
    if (!google::protobuf::util::FieldMaskUtil::ToJsonString(mask, &text)) {
      return false;
    }
    AppendQuoted(text, out);
    return true;
  }
  if (name == "google.protobuf.Struct") {
    // fields: map<string, Value>
    const FieldDescriptor* fields = d->field(0);
    out->push_back('{');
    for (int i = 0; i < r->FieldSize(m, fields); ++i) {
      const Message& entry = r->GetRepeatedMessage(m, fields, i);
      if (i > 0) {
        out->push_back(',');
      }
      const Descriptor* ed = entry.GetDescriptor();
      if (!PrintMapKey(entry, ed->field(0), out)) {
        return false;
      }
      out->push_back(':');
      if (!PrintMessage(entry.GetReflection()->GetMessage(entry, ed->field(1)), out)) {
        return false;
      }
    }
    out->push_back('}');
    return true;
  }
  if (name == "google.protobuf.ListValue") {
    const FieldDescriptor* values = d->field(0);
    out->push_back('[');
    for (int i = 0; i < r->FieldSize(m, values); ++i) {
      if (i > 0) {
        out->push_back(',');
      }
      if (!PrintMessage(r->GetRepeatedMessage(m, values, i), out)) {
        return false;
      }
    }
    out->push_back(']');
    return true;
  }
  if (name == "google.protobuf.Value") {
    const google::protobuf::OneofDescriptor* kind = d->oneof_decl(0);
    const FieldDescriptor* set = r->GetOneofFieldDescriptor(m, kind);
    if (set == nullptr) {
      return false;  // the util printer refuses an empty Value too
    }
    return PrintValue(m, set, -1, out);
  }
  if (name == "google.protobuf.Any") {
    return false;
  }
  if (name == "google.protobuf.Empty") {
    out->append("{}");
    return true;
  }
  if (d->field_count() == 1 && d->field(0)->name() == "value" && name.size() > 5 &&
      name.compare(name.size() - 5, 5, "Value") == 0) {
    return PrintValue(m, d->field(0), -1, out);  // wrappers
  }
  *handled = false;
  return true;
}

bool PrintMessage(const Message& m, std::string* out) {
  bool handled;
  if (!PrintWellKnown(m, out, &handled)) {
    return false;
  }
  if (handled) {
    return true;
  }
  const Descriptor* d = m.GetDescriptor();
  const Reflection* r = m.GetReflection();
  out->push_back('{');
  bool first = true;
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (f->is_repeated()) {
      int n = r->FieldSize(m, f);
      if (n == 0) {
        continue;
      }
      if (!first) {
        out->push_back(',');
      }
      first = false;
      AppendQuoted(f->json_name(), out);
      out->push_back(':');
      if (f->is_map()) {
        const FieldDescriptor* key = f->message_type()->field(0);
        const FieldDescriptor* value = f->message_type()->field(1);
        out->push_back('{');
        for (int k = 0; k < n; ++k) {
          const Message& entry = r->GetRepeatedMessage(m, f, k);
          if (k > 0) {
            out->push_back(',');
          }
          if (!PrintMapKey(entry, key, out)) {
            return false;
          }
          out->push_back(':');
          if (!PrintValue(entry, value, -1, out)) {
            return false;
          }
        }
        out->push_back('}');
      } else {
        out->push_back('[');
        for (int k = 0; k < n; ++k) {
          if (k > 0) {
            out->push_back(',');
          }
          if (!PrintValue(m, f, k, out)) {
            return false;
          }
        }
        out->push_back(']');
      }
      continue;
    }
    if (!r->HasField(m, f)) {
      continue;
    }
    if (!first) {
      out->push_back(',');
    }
    first = false;
    AppendQuoted(f->json_name(), out);
    out->push_back(':');
    if (!PrintValue(m, f, -1, out)) {
      return false;
    }
  }
  out->push_back('}');
  return true;
}

// --- From wire format ----------------------------------------------------------------------

constexpr int kMaxWireDepth = 64;

// A varint of at most `max_bytes` (a parse takes tags and lengths of at most 5).
bool ReadVarint(const char** p, const char* end, uint64_t* v, int max_bytes = 10) {
  *v = 0;
  for (int shift = 0; shift < 7 * max_bytes && *p < end; shift += 7) {
    const auto byte = static_cast<uint8_t>(*(*p)++);
    *v |= static_cast<uint64_t>(byte & 0x7F) << shift;
    if (byte < 0x80) {
      return true;
    }
  }
  return false;
}

// One field's value as read from the wire.
struct WireValue {
  WireFormatLite::WireType wire = WireFormatLite::WIRETYPE_VARINT;
  uint64_t bits = 0;        // varint, fixed32 or fixed64
  absl::string_view bytes;  // length-delimited
};

// Reads one value of wire type `wire` at *p.
bool ReadValue(WireFormatLite::WireType wire, const char** p, const char* end, WireValue* v) {
  v->wire = wire;
  switch (wire) {
    case WireFormatLite::WIRETYPE_VARINT:
      return ReadVarint(p, end, &v->bits);
    case WireFormatLite::WIRETYPE_FIXED64:
      if (end - *p < 8) {
        return false;
      }
      std::memcpy(&v->bits, *p, 8);
      *p += 8;
      return true;
    case WireFormatLite::WIRETYPE_FIXED32: {
      if (end - *p < 4) {
        return false;
      }
      uint32_t bits;
      std::memcpy(&bits, *p, 4);
      v->bits = bits;
      *p += 4;
      return true;
    }
    case WireFormatLite::WIRETYPE_LENGTH_DELIMITED: {
      uint64_t size;
      if (!ReadVarint(p, end, &size, 5) || size > INT32_MAX ||
          size > static_cast<uint64_t>(end - *p)) {
        return false;
      }
      v->bytes = absl::string_view(*p, size);
      *p += size;
      return true;
    }
    default:  // groups
      return false;
  }
}

// The value of `f` absent from the wire: its default.
WireValue Absent(const FieldDescriptor* f) {
  WireValue v;
  v.wire = WireTypeOf(f);
  return v;
}

// Reads the next value of a packed run of `f` at *p.
bool ReadPacked(const FieldDescriptor* f, const char** p, const char* end, WireValue* v) {
  return ReadValue(WireTypeOf(f), p, end, v);
}

// Whether `v` is the default of `f` (what a parse leaves unset in proto3).
bool IsDefault(const FieldDescriptor* f, const WireValue& v) {
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
    case FieldDescriptor::CPPTYPE_UINT32:
    case FieldDescriptor::CPPTYPE_ENUM:
    case FieldDescriptor::CPPTYPE_FLOAT:
      return static_cast<uint32_t>(v.bits) == 0;
    case FieldDescriptor::CPPTYPE_STRING:
      return v.bytes.empty();
    default:  // 64-bit integers, double, bool
      return v.bits == 0;
  }
}

bool PrintWireMessage(const Descriptor* d, absl::string_view bytes, std::string* out, int depth);

// One value of `f` from the wire, as PrintValue prints it parsed.
bool PrintWireValue(const FieldDescriptor* f, const WireValue& v, std::string* out, int depth) {
  switch (f->type()) {
    case FieldDescriptor::TYPE_INT32:
      absl::StrAppend(out, static_cast<int32_t>(v.bits));
      return true;
    case FieldDescriptor::TYPE_SINT32:
      absl::StrAppend(out, WireFormatLite::ZigZagDecode32(static_cast<uint32_t>(v.bits)));
      return true;
    case FieldDescriptor::TYPE_SFIXED32:
      absl::StrAppend(out, static_cast<int32_t>(static_cast<uint32_t>(v.bits)));
      return true;
    case FieldDescriptor::TYPE_UINT32:
    case FieldDescriptor::TYPE_FIXED32:
      absl::StrAppend(out, static_cast<uint32_t>(v.bits));
      return true;
    case FieldDescriptor::TYPE_INT64:
    case FieldDescriptor::TYPE_SFIXED64:
      absl::StrAppend(out, "\"", static_cast<int64_t>(v.bits), "\"");
      return true;
    case FieldDescriptor::TYPE_SINT64:
      absl::StrAppend(out, "\"", WireFormatLite::ZigZagDecode64(v.bits), "\"");
      return true;
    case FieldDescriptor::TYPE_UINT64:
    case FieldDescriptor::TYPE_FIXED64:
      absl::StrAppend(out, "\"", v.bits, "\"");
      return true;
    case FieldDescriptor::TYPE_DOUBLE: {
      double x;
      std::memcpy(&x, &v.bits, sizeof(x));
      AppendDouble(x, out);
      return true;
    }
    case FieldDescriptor::TYPE_FLOAT: {
      const auto bits = static_cast<uint32_t>(v.bits);
      float x;
      std::memcpy(&x, &bits, sizeof(x));
      AppendFloat(x, out);
      return true;
    }
    case FieldDescriptor::TYPE_BOOL:
      out->append(v.bits != 0 ? "true" : "false");
      return true;
    case FieldDescriptor::TYPE_ENUM: {
      AppendEnum(f->enum_type(), static_cast<int32_t>(v.bits), out);
      return true;
    }
    case FieldDescriptor::TYPE_STRING:
      if (!platform::IsValidUtf8(v.bytes)) {
        return false;  // the parse refuses it
      }
      AppendQuoted(v.bytes, out);
      return true;
    case FieldDescriptor::TYPE_BYTES:
      absl::StrAppend(out, "\"", absl::Base64Escape(v.bytes), "\"");
      return true;
    case FieldDescriptor::TYPE_MESSAGE:
      return PrintWireMessage(f->message_type(), v.bytes, out, depth + 1);
    default:
      return false;
  }
}

// Where a field's occurrences are in a message's bytes.
struct Occurrences {
  uint32_t count = 0;
  uint32_t first = 0;  // offset of the first one's tag
  uint32_t last = 0;   // offset of the last one's tag
  uint32_t end = 0;    // offset just past the last one
};

// Reads the tag at *p: its field of `d` (null when unknown) and wire type.
bool ReadTag(const Descriptor* d, const char** p, const char* end, int* hint,
             const FieldDescriptor** f, WireFormatLite::WireType* wire) {
  uint64_t tag;
  if (!ReadVarint(p, end, &tag, 5) || tag > UINT32_MAX) {
    return false;
  }
  const int number = WireFormatLite::GetTagFieldNumber(static_cast<uint32_t>(tag));
  *wire = WireFormatLite::GetTagWireType(static_cast<uint32_t>(tag));
  if (number == 0) {
    return false;
  }
  // Fields usually come in declaration order: try the one after the last before looking up.
  if (*hint < d->field_count() && d->field(*hint)->number() == number) {
    *f = d->field(*hint);
  } else {
    *f = d->FindFieldByNumber(number);
  }
  if (*f != nullptr) {
    *hint = (*f)->index() + 1;
  }
  return true;
}

// The last occurrence of `f` in `bytes` (a map entry's key or value); false when malformed.
bool LastValue(const Descriptor* entry, const FieldDescriptor* f, absl::string_view bytes,
               WireValue* value, bool* found) {
  *found = false;
  const char* p = bytes.data();
  const char* end = p + bytes.size();
  int hint = 0;
  while (p < end) {
    const FieldDescriptor* g;
    WireFormatLite::WireType wire;
    WireValue v;
    if (!ReadTag(entry, &p, end, &hint, &g, &wire) || !ReadValue(wire, &p, end, &v)) {
      return false;
    }
    if (g == f) {
      if (wire != WireTypeOf(f) || (*found && f->type() == FieldDescriptor::TYPE_MESSAGE) ||
          (f->type() == FieldDescriptor::TYPE_STRING && !platform::IsValidUtf8(v.bytes))) {
        return false;  // a parse would keep it aside, merge the two, or refuse it
      }
      *value = v;
      *found = true;
    }
  }
  return true;
}

// Well-known types with a JSON form of their own, from the wire; `handled` false for ordinary
// messages. False for those left to the parsed path (Struct, Value, ListValue, Any).
bool PrintWireWellKnown(const Descriptor* d, absl::string_view bytes, std::string* out,
                        bool* handled) {
  *handled = true;
  const std::string& name = d->full_name();
  if (name.rfind("google.protobuf.", 0) != 0) {
    *handled = false;
    return true;
  }
  if (name == "google.protobuf.Timestamp" || name == "google.protobuf.Duration") {
    WireValue seconds;
    WireValue nanos;
    bool has_seconds;
    bool has_nanos;
    if (!LastValue(d, d->field(0), bytes, &seconds, &has_seconds) ||
        !LastValue(d, d->field(1), bytes, &nanos, &has_nanos)) {
      return false;
    }
    return AppendTime(name == "google.protobuf.Timestamp",
                      has_seconds ? static_cast<int64_t>(seconds.bits) : 0,
                      has_nanos ? static_cast<int32_t>(nanos.bits) : 0, out);
  }
  if (name == "google.protobuf.Empty") {
    out->append("{}");
    return true;
  }
  if (d->field_count() == 1 && d->field(0)->name() == "value" && name.size() > 5 &&
      name.compare(name.size() - 5, 5, "Value") == 0 &&
      d->field(0)->type() != FieldDescriptor::TYPE_MESSAGE) {
    // Wrappers: the value, or its default when absent.
    WireValue v;
    bool found;
    if (!LastValue(d, d->field(0), bytes, &v, &found)) {
      return false;
    }
    if (!found) {
      v = Absent(d->field(0));
    }
    return PrintWireValue(d->field(0), v, out, 0);
  }
  return false;  // FieldMask, Struct, Value, ListValue, Any: printed parsed
}

bool PrintWireMessage(const Descriptor* d, absl::string_view bytes, std::string* out, int depth) {
  if (depth > kMaxWireDepth || d->field_count() > 64 ||
      d->file()->syntax() != google::protobuf::FileDescriptor::SYNTAX_PROTO3) {
    return false;
  }
  bool handled;
  if (!PrintWireWellKnown(d, bytes, out, &handled)) {
    return false;
  }
  if (handled) {
    return true;
  }
  // First pass: where each field is; unknown fields are skipped, as a parse keeps them aside.
  Occurrences at[64];
  const char* begin = bytes.data();
  const char* end = begin + bytes.size();
  const char* p = begin;
  int hint = 0;
  while (p < end) {
    const auto tag_at = static_cast<uint32_t>(p - begin);
    const FieldDescriptor* f;
    WireFormatLite::WireType wire;
    WireValue v;
    if (!ReadTag(d, &p, end, &hint, &f, &wire) || !ReadValue(wire, &p, end, &v)) {
      return false;
    }
    if (f == nullptr) {
      continue;
    }
    if (wire != WireTypeOf(f) &&
        !(f->is_packable() && wire == WireFormatLite::WIRETYPE_LENGTH_DELIMITED)) {
      return false;  // a parse would keep it as an unknown field
    }
    if (f->type() == FieldDescriptor::TYPE_STRING && !platform::IsValidUtf8(v.bytes)) {
      return false;  // the parse refuses it, even where a later value replaces it
    }
    Occurrences& o = at[f->index()];
    if (o.count++ == 0) {
      o.first = tag_at;
    }
    o.last = tag_at;
    o.end = static_cast<uint32_t>(p - begin);
  }
  out->push_back('{');
  bool first = true;
  auto key = [&](const FieldDescriptor* f) {
    if (!first) {
      out->push_back(',');
    }
    first = false;
    AppendQuoted(f->json_name(), out);
    out->push_back(':');
  };
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    const Occurrences& o = at[i];
    if (o.count == 0) {
      continue;
    }
    if (const auto* oneof = f->real_containing_oneof()) {
      // A parse keeps the member set last.
      bool later = false;
      for (int k = 0; k < oneof->field_count(); ++k) {
        later = later || at[oneof->field(k)->index()].last > o.last;
      }
      if (later) {
        if (f->type() == FieldDescriptor::TYPE_MESSAGE) {
          return false;  // replaced, but parsed (and checked) first
        }
        continue;
      }
    }
    if (!f->is_repeated()) {
      const char* q = begin + o.last;
      int h = i;
      const FieldDescriptor* g;
      WireFormatLite::WireType wire;
      WireValue v;
      if (!ReadTag(d, &q, end, &h, &g, &wire) || !ReadValue(wire, &q, end, &v)) {
        return false;
      }
      if (f->type() == FieldDescriptor::TYPE_MESSAGE && o.count > 1) {
        return false;  // the parse merges the occurrences
      }
      if (!f->has_presence() && IsDefault(f, v)) {
        continue;
      }
      key(f);
      if (!PrintWireValue(f, v, out, depth)) {
        return false;
      }
      continue;
    }
    // Repeated and maps: every occurrence between the first and the last, in order.
    const size_t rollback = out->size();
    const bool was_first = first;
    key(f);
    out->push_back(f->is_map() ? '{' : '[');
    int printed = 0;
    const char* q = begin + o.first;
    const char* stop = begin + o.end;
    int h = i;
    while (q < stop) {
      const FieldDescriptor* g;
      WireFormatLite::WireType wire;
      WireValue v;
      if (!ReadTag(d, &q, end, &h, &g, &wire) || !ReadValue(wire, &q, end, &v)) {
        return false;
      }
      if (g != f) {
        continue;
      }
      if (f->is_map()) {
        const Descriptor* entry = f->message_type();
        WireValue k;
        WireValue value;
        bool has_key;
        bool has_value;
        if (!LastValue(entry, entry->field(0), v.bytes, &k, &has_key) ||
            !LastValue(entry, entry->field(1), v.bytes, &value, &has_value)) {
          return false;
        }
        if (!has_key) {
          k = Absent(entry->field(0));
        }
        if (!has_value) {
          value = Absent(entry->field(1));
        }
        if (printed++ > 0) {
          out->push_back(',');
        }
        const FieldDescriptor* key_field = entry->field(0);
        if (key_field->type() == FieldDescriptor::TYPE_STRING) {
          if (!PrintWireValue(key_field, k, out, depth)) {
            return false;
          }
        } else {
          std::string printed;
          if (!PrintWireValue(key_field, k, &printed, depth)) {
            return false;
          }
          AppendMapKey(printed, out);
        }
        out->push_back(':');
        if (!PrintWireValue(entry->field(1), value, out, depth)) {
          return false;
        }
      } else if (wire == WireFormatLite::WIRETYPE_LENGTH_DELIMITED && f->is_packable()) {
        const char* r = v.bytes.data();
        const char* r_end = r + v.bytes.size();
        while (r < r_end) {
          WireValue element;
          if (!ReadPacked(f, &r, r_end, &element)) {
            return false;
          }
          if (printed++ > 0) {
            out->push_back(',');
          }
          if (!PrintWireValue(f, element, out, depth)) {
            return false;
          }
        }
      } else {
        if (printed++ > 0) {
          out->push_back(',');
        }
        if (!PrintWireValue(f, v, out, depth)) {
          return false;
        }
      }
    }
    if (printed == 0) {
      out->resize(rollback);  // only empty packed runs
      first = was_first;
      continue;
    }
    out->push_back(f->is_map() ? '}' : ']');
  }
  out->push_back('}');
  return true;
}

}  // namespace

bool PrintJson(const Message& message, std::string* out) { return PrintMessage(message, out); }

bool PrintJsonFromWire(const Descriptor* type, absl::string_view bytes, std::string* out) {
  return PrintWireMessage(type, bytes, out, 0);
}

}  // namespace kurt::edge
