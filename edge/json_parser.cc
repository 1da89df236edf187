#include "edge/json_parser.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "edge/field_encoding.h"
#include "google/protobuf/timestamp.pb.h"
#include "google/protobuf/util/time_util.h"
#include "platform/core/text.h"

namespace kurt::edge {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::internal::WireFormatLite;

constexpr int kMaxDepth = 32;
// A Timestamp's range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z.
constexpr int64_t kMinTimestampSeconds = -62135596800;
constexpr int64_t kMaxTimestampSeconds = 253402300799;

// One scalar value in its wire form.
struct Scalar {
  WireFormatLite::WireType wire = WireFormatLite::WIRETYPE_VARINT;
  uint64_t bits = 0;        // varint, fixed32 (low half) or fixed64
  absl::string_view bytes;  // length-delimited (a string)
};

void AppendScalarValue(const Scalar& v, std::string* out) {
  switch (v.wire) {
    case WireFormatLite::WIRETYPE_VARINT:
      AppendVarint(v.bits, out);
      break;
    case WireFormatLite::WIRETYPE_FIXED32:
      AppendFixed(static_cast<uint32_t>(v.bits), out);
      break;
    case WireFormatLite::WIRETYPE_FIXED64:
      AppendFixed(v.bits, out);
      break;
    default:
      AppendVarint(v.bytes.size(), out);
      out->append(v.bytes.data(), v.bytes.size());
      break;
  }
}

// Whether `text` is an integer as JSON writes it: -?(0|[1-9][0-9]*), and not "-0".
bool IsIntegerText(absl::string_view text) {
  size_t i = !text.empty() && text[0] == '-' ? 1 : 0;
  if (i == text.size() || text[i] < '0' || text[i] > '9' || (text[i] == '0' && text.size() > 1)) {
    return false;
  }
  for (; i < text.size(); ++i) {
    if (text[i] < '0' || text[i] > '9') {
      return false;
    }
  }
  return true;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

bool IsWrapper(const Descriptor* m) {
  const std::string& name = m->full_name();
  return name == "google.protobuf.DoubleValue" || name == "google.protobuf.FloatValue" ||
         name == "google.protobuf.Int64Value" || name == "google.protobuf.UInt64Value" ||
         name == "google.protobuf.Int32Value" || name == "google.protobuf.UInt32Value" ||
         name == "google.protobuf.BoolValue" || name == "google.protobuf.StringValue";
}

// Starts a length-delimited field in `out` whose length is not known yet: returns where the
// length goes, for EndLength.
size_t BeginLength(int field_number, std::string* out) {
  AppendTag(field_number, WireFormatLite::WIRETYPE_LENGTH_DELIMITED, out);
  out->push_back('\0');
  return out->size() - 1;
}

// Writes the length of what was appended since BeginLength (a one-byte guess, widened if
// needed).
void EndLength(size_t at, std::string* out) {
  const size_t length = out->size() - at - 1;
  if (length < 0x80) {
    (*out)[at] = static_cast<char>(length);
    return;
  }
  std::string varint;
  AppendVarint(length, &varint);
  out->replace(at, 1, varint);
}

class Parser {
 public:
  explicit Parser(absl::string_view json) : p_(json.data()), end_(json.data() + json.size()) {}

  bool Document(const Descriptor* type, std::string* out) {
    if (absl::StartsWith(type->file()->name(), "google/protobuf/")) {
      return false;  // a well-known type at the top has its own JSON form
    }
    if (!Object(type, out, 0)) {
      return false;
    }
    SkipSpace();
    return p_ == end_;
  }

 private:
  void SkipSpace() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) {
      ++p_;
    }
  }
  // Skips space, then `c` if it is next.
  bool Consume(char c) {
    SkipSpace();
    if (p_ < end_ && *p_ == c) {
      ++p_;
      return true;
    }
    return false;
  }
  bool Literal(absl::string_view word) {
    if (static_cast<size_t>(end_ - p_) < word.size() ||
        std::memcmp(p_, word.data(), word.size()) != 0) {
      return false;
    }
    p_ += word.size();
    return true;
  }

  // A JSON string. `value` views the input when the string has no escapes, else `scratch`.
  // `escaped` (when given) says which. False on invalid JSON or UTF-8.
  bool String(absl::string_view* value, std::string* scratch, bool* escaped = nullptr) {
    SkipSpace();
    if (p_ == end_ || *p_ != '"') {
      return false;
    }
    const char* start = ++p_;
    bool ascii = true;
    while (p_ < end_) {
      const auto c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        *value = absl::string_view(start, p_ - start);
        ++p_;
        if (escaped != nullptr) {
          *escaped = false;
        }
        return ascii || platform::IsValidUtf8(*value);
      }
      if (c == '\\') {
        if (escaped != nullptr) {
          *escaped = true;
        }
        scratch->assign(start, p_);
        return Unescape(value, scratch);
      }
      if (c < 0x20) {
        return false;
      }
      ascii = ascii && c < 0x80;
      ++p_;
    }
    return false;
  }
  // The rest of a string from its first backslash, into `scratch`.
  bool Unescape(absl::string_view* value, std::string* scratch) {
    while (p_ < end_) {
      const auto c = static_cast<unsigned char>(*p_++);
      if (c == '"') {
        *value = *scratch;
        return platform::IsValidUtf8(*value);
      }
      if (c < 0x20) {
        return false;
      }
      if (c != '\\') {
        scratch->push_back(static_cast<char>(c));
        continue;
      }
      if (p_ == end_) {
        return false;
      }
      switch (*p_++) {
        case '"':
          scratch->push_back('"');
          break;
        case '\\':
          scratch->push_back('\\');
          break;
        case '/':
          scratch->push_back('/');
          break;
        case 'b':
          scratch->push_back('\b');
          break;
        case 'f':
          scratch->push_back('\f');
          break;
        case 'n':
          scratch->push_back('\n');
          break;
        case 'r':
          scratch->push_back('\r');
          break;
        case 't':
          scratch->push_back('\t');
          break;
        case 'u': {
          uint32_t cp;
          if (!Hex4(&cp) || (cp >= 0xDC00 && cp <= 0xDFFF)) {
            return false;
          }
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            uint32_t low;
            if (!Literal("\\u") || !Hex4(&low) || low < 0xDC00 || low > 0xDFFF) {
              return false;
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          AppendUtf8(cp, scratch);
          break;
        }
        default:
          return false;
      }
    }
    return false;
  }
  bool Hex4(uint32_t* cp) {
    if (end_ - p_ < 4) {
      return false;
    }
    *cp = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = *p_++;
      int digit;
      if (c >= '0' && c <= '9') {
        digit = c - '0';
      } else if (c >= 'a' && c <= 'f') {
        digit = c - 'a' + 10;
      } else if (c >= 'A' && c <= 'F') {
        digit = c - 'A' + 10;
      } else {
        return false;
      }
      *cp = *cp << 4 | static_cast<uint32_t>(digit);
    }
    return true;
  }

  // A JSON number's text; `integral` when it has neither fraction nor exponent.
  bool Number(absl::string_view* text, bool* integral) {
    SkipSpace();
    const char* start = p_;
    auto digits = [this] {
      const char* from = p_;
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') {
        ++p_;
      }
      return p_ > from;
    };
    if (p_ < end_ && *p_ == '-') {
      ++p_;
    }
    if (p_ < end_ && *p_ == '0') {
      ++p_;
    } else if (!digits()) {
      return false;
    }
    *integral = true;
    if (p_ < end_ && *p_ == '.') {
      ++p_;
      *integral = false;
      if (!digits()) {
        return false;
      }
    }
    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
      ++p_;
      *integral = false;
      if (p_ < end_ && (*p_ == '+' || *p_ == '-')) {
        ++p_;
      }
      if (!digits()) {
        return false;
      }
    }
    *text = absl::string_view(start, p_ - start);
    return true;
  }

  // An integer, as a JSON number or a string holding one.
  bool IntegerText(absl::string_view* text) {
    SkipSpace();
    if (p_ < end_ && *p_ == '"') {
      bool escaped;
      std::string scratch;
      return String(text, &scratch, &escaped) && !escaped && IsIntegerText(*text);
    }
    bool integral;
    return Number(text, &integral) && integral && IsIntegerText(*text);
  }
  template <typename T>
  bool Integer(T* v) {
    absl::string_view text;
    return IntegerText(&text) && absl::SimpleAtoi(text, v);
  }
  // A double from a JSON number that `T` (float or double) holds as it is: integers up to the
  // type's precision, fractions within its range. Strings ("NaN", "1.5") are declined.
  template <typename T>
  bool Floating(T* v) {
    absl::string_view text;
    bool integral;
    if (!Number(&text, &integral)) {
      return false;
    }
    if (integral) {
      constexpr int64_t kExact = int64_t{1} << std::numeric_limits<T>::digits;
      int64_t i;
      if (!absl::SimpleAtoi(text, &i) || i > kExact || i < -kExact || text == "-0") {
        return false;
      }
      *v = static_cast<T>(i);
      return true;
    }
    double d;
    if (!absl::SimpleAtod(text, &d) || !std::isfinite(d) ||
        std::fabs(d) > std::numeric_limits<T>::max()) {
      return false;
    }
    *v = static_cast<T>(d);
    return true;
  }

  // One non-message value of `f`, into `v` (`scratch` holds an unescaped string).
  bool ScalarOf(const FieldDescriptor* f, Scalar* v, std::string* scratch) {
    SkipSpace();
    v->wire = WireTypeOf(f);
    switch (f->type()) {
      case FieldDescriptor::TYPE_STRING:
        return String(&v->bytes, scratch);
      case FieldDescriptor::TYPE_BOOL:
        if (Literal("true")) {
          v->bits = 1;
          return true;
        }
        v->bits = 0;
        return Literal("false");
      case FieldDescriptor::TYPE_ENUM: {
        if (f->enum_type()->full_name() == "google.protobuf.NullValue") {
          return false;
        }
        const google::protobuf::EnumValueDescriptor* value;
        if (p_ < end_ && *p_ == '"') {
          absl::string_view name;
          if (!String(&name, scratch)) {
            return false;
          }
          value = f->enum_type()->FindValueByName(std::string(name));
        } else {
          absl::string_view text;
          bool integral;
          int32_t number;
          if (!Number(&text, &integral) || !integral || !IsIntegerText(text) ||
              !absl::SimpleAtoi(text, &number)) {
            return false;
          }
          value = f->enum_type()->FindValueByNumber(number);
        }
        if (value == nullptr) {
          return false;
        }
        v->bits = static_cast<uint64_t>(static_cast<int64_t>(value->number()));
        return true;
      }
      case FieldDescriptor::TYPE_INT32:
      case FieldDescriptor::TYPE_SINT32:
      case FieldDescriptor::TYPE_SFIXED32: {
        int32_t i;
        if (!Integer(&i)) {
          return false;
        }
        v->bits = f->type() == FieldDescriptor::TYPE_SFIXED32 ? static_cast<uint32_t>(i)
                  : f->type() == FieldDescriptor::TYPE_SINT32
                      ? WireFormatLite::ZigZagEncode32(i)
                      : static_cast<uint64_t>(static_cast<int64_t>(i));
        return true;
      }
      case FieldDescriptor::TYPE_INT64:
      case FieldDescriptor::TYPE_SINT64:
      case FieldDescriptor::TYPE_SFIXED64: {
        int64_t i;
        if (!Integer(&i)) {
          return false;
        }
        v->bits = f->type() == FieldDescriptor::TYPE_SINT64 ? WireFormatLite::ZigZagEncode64(i)
                                                            : static_cast<uint64_t>(i);
        return true;
      }
      case FieldDescriptor::TYPE_UINT32:
      case FieldDescriptor::TYPE_FIXED32: {
        uint32_t u;
        if (!Integer(&u)) {
          return false;
        }
        v->bits = u;
        return true;
      }
      case FieldDescriptor::TYPE_UINT64:
      case FieldDescriptor::TYPE_FIXED64: {
        uint64_t u;
        if (!Integer(&u)) {
          return false;
        }
        v->bits = u;
        return true;
      }
      case FieldDescriptor::TYPE_DOUBLE: {
        double d;
        if (!Floating(&d)) {
          return false;
        }
        std::memcpy(&v->bits, &d, sizeof(d));
        return true;
      }
      case FieldDescriptor::TYPE_FLOAT: {
        float x;
        if (!Floating(&x)) {
          return false;
        }
        uint32_t bits;
        std::memcpy(&bits, &x, sizeof(x));
        v->bits = bits;
        return true;
      }
      case FieldDescriptor::TYPE_BYTES:
        // Only the empty value, which every base64 variant reads alike; the rest (standard or
        // URL-safe, padded or not) is the util parser's.
        v->bytes = {};
        return Literal("\"\"");
      default:  // messages, groups
        return false;
    }
  }

  // One value of `f` (an element when it is repeated), appended with its tag.
  bool Single(const FieldDescriptor* f, std::string* out, int depth) {
    if (f->type() != FieldDescriptor::TYPE_MESSAGE) {
      Scalar v;
      std::string scratch;
      if (!ScalarOf(f, &v, &scratch)) {
        return false;
      }
      AppendTag(f->number(), v.wire, out);
      AppendScalarValue(v, out);
      return true;
    }
    const Descriptor* m = f->message_type();
    if (!absl::StartsWith(m->file()->name(), "google/protobuf/") ||
        m->full_name() == "google.protobuf.Empty") {
      const size_t at = BeginLength(f->number(), out);
      if (!Object(m, out, depth)) {
        return false;
      }
      EndLength(at, out);
      return true;
    }
    if (m->full_name() == "google.protobuf.Timestamp") {
      absl::string_view text;
      std::string scratch;
      google::protobuf::Timestamp ts;
      if (!String(&text, &scratch) ||
          !google::protobuf::util::TimeUtil::FromString(std::string(text), &ts) ||
          ts.seconds() < kMinTimestampSeconds || ts.seconds() > kMaxTimestampSeconds) {
        return false;
      }
      AppendLengthDelimited(f->number(), EncodeSecondsNanos(ts.seconds(), ts.nanos()), out);
      return true;
    }
    if (IsWrapper(m)) {
      const size_t at = BeginLength(f->number(), out);
      if (!Single(m->field(0), out, depth)) {
        return false;
      }
      EndLength(at, out);
      return true;
    }
    return false;  // Duration, FieldMask, Struct, Value, ListValue, Any: the util parser's
  }

  bool Repeated(const FieldDescriptor* f, std::string* out, int depth) {
    if (!Consume('[')) {
      return false;
    }
    if (Consume(']')) {
      return true;
    }
    if (f->is_packable()) {
      // Packed, as protobuf writes repeated scalars (a parser takes either form).
      const size_t at = BeginLength(f->number(), out);
      std::string scratch;
      do {
        Scalar v;
        if (!ScalarOf(f, &v, &scratch)) {
          return false;
        }
        AppendScalarValue(v, out);
      } while (Consume(','));
      EndLength(at, out);
    } else {
      do {
        SkipSpace();
        if (p_ < end_ && *p_ == 'n') {
          return false;  // null
        }
        if (!Single(f, out, depth)) {
          return false;
        }
      } while (Consume(','));
    }
    return Consume(']');
  }

  bool Map(const FieldDescriptor* f, std::string* out, int depth) {
    const FieldDescriptor* key = f->message_type()->map_key();
    const FieldDescriptor* value = f->message_type()->map_value();
    if (!Consume('{')) {
      return false;
    }
    if (Consume('}')) {
      return true;
    }
    if (key->type() != FieldDescriptor::TYPE_STRING) {
      return false;  // keys of other types come as strings to convert: the util parser's
    }
    std::string scratch;
    do {
      const size_t at = BeginLength(f->number(), out);
      absl::string_view k;
      if (!String(&k, &scratch) || !Consume(':')) {
        return false;
      }
      AppendLengthDelimited(key->number(), k, out);
      SkipSpace();
      if ((p_ < end_ && *p_ == 'n') || !Single(value, out, depth)) {
        return false;
      }
      EndLength(at, out);
    } while (Consume(','));
    return Consume('}');
  }

  bool Object(const Descriptor* type, std::string* out, int depth) {
    if (depth > kMaxDepth || type->field_count() > 64 || type->oneof_decl_count() > 64 ||
        !Consume('{')) {
      return false;
    }
    if (Consume('}')) {
      return true;
    }
    uint64_t seen = 0;
    uint64_t oneofs = 0;
    std::string scratch;
    do {
      absl::string_view key;
      if (!String(&key, &scratch) || !Consume(':')) {
        return false;
      }
      const FieldDescriptor* f = nullptr;
      for (int i = 0; i < type->field_count(); ++i) {
        const FieldDescriptor* candidate = type->field(i);
        if (candidate->json_name() == key || candidate->name() == key) {
          f = candidate;
          break;
        }
      }
      if (f == nullptr || (seen & (uint64_t{1} << f->index())) != 0) {
        return false;  // unknown, or given twice
      }
      seen |= uint64_t{1} << f->index();
      if (const auto* oneof = f->real_containing_oneof()) {
        if ((oneofs & (uint64_t{1} << oneof->index())) != 0) {
          return false;  // a second member of one oneof
        }
        oneofs |= uint64_t{1} << oneof->index();
      }
      SkipSpace();
      if (p_ < end_ && *p_ == 'n') {
        return false;  // null
      }
      const bool ok = f->is_map()        ? Map(f, out, depth + 1)
                      : f->is_repeated() ? Repeated(f, out, depth + 1)
                                         : Single(f, out, depth + 1);
      if (!ok) {
        return false;
      }
    } while (Consume(','));
    return Consume('}');
  }

  const char* p_;
  const char* end_;
};

}  // namespace

bool JsonToWire(const Descriptor* type, absl::string_view json, std::string* out) {
  return Parser(json).Document(type, out);
}

}  // namespace kurt::edge
