#include "edge/json_printer.h"

#include <cmath>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/field_mask.pb.h"
#include "google/protobuf/stubs/strutil.h"
#include "google/protobuf/timestamp.pb.h"
#include "google/protobuf/util/field_mask_util.h"
#include "google/protobuf/util/time_util.h"

namespace kurt::edge {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

void AppendQuoted(const std::string& s, std::string* out) {
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
      int number = rep ? r->GetRepeatedEnumValue(m, f, index) : r->GetEnumValue(m, f);
      if (f->enum_type()->full_name() == "google.protobuf.NullValue") {
        out->append("null");
        return true;
      }
      const auto* value = f->enum_type()->FindValueByNumber(number);
      if (value != nullptr) {
        AppendQuoted(value->name(), out);
      } else {
        absl::StrAppend(out, number);
      }
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

bool PrintMapKey(const Message& entry, const FieldDescriptor* key, std::string* out) {
  const Reflection* r = entry.GetReflection();
  switch (key->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING: {
      std::string scratch;
      AppendQuoted(r->GetStringReference(entry, key, &scratch), out);
      return true;
    }
    case FieldDescriptor::CPPTYPE_BOOL:
      out->append(r->GetBool(entry, key) ? "\"true\"" : "\"false\"");
      return true;
    default: {
      std::string number;
      if (!PrintValue(entry, key, -1, &number)) {
        return false;
      }
      if (number.front() != '"') {
        number = absl::StrCat("\"", number, "\"");
      }
      out->append(number);
      return true;
    }
  }
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
    int64_t seconds = r->GetInt64(m, d->field(0));
    int32_t nanos = r->GetInt32(m, d->field(1));
    std::string text;
    if (name == "google.protobuf.Timestamp") {
      google::protobuf::Timestamp ts;
      ts.set_seconds(seconds);
      ts.set_nanos(nanos);
      if (ts.seconds() < google::protobuf::util::TimeUtil::kTimestampMinSeconds ||
          ts.seconds() > google::protobuf::util::TimeUtil::kTimestampMaxSeconds) {
        return false;
      }
      text = google::protobuf::util::TimeUtil::ToString(ts);
    } else {
      google::protobuf::Duration du;
      du.set_seconds(seconds);
      du.set_nanos(nanos);
      text = google::protobuf::util::TimeUtil::ToString(du);
    }
    AppendQuoted(text, out);
    return true;
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

}  // namespace

bool PrintJson(const Message& message, std::string* out) { return PrintMessage(message, out); }

}  // namespace kurt::edge
