#include "edge/json_writer.h"

#include "absl/strings/str_cat.h"
#include "edge/transcoder.h"
#include "platform/core/text.h"

namespace kurt::edge {

Json Json::Number(double v) {
  Json j(Kind::kNumber);
  j.text_ = absl::StrCat(v);
  return j;
}

Json& Json::operator[](absl::string_view key) {
  if (kind_ == Kind::kNull) {
    kind_ = Kind::kObject;
  }
  for (auto& [k, v] : members_) {
    if (k == key) {
      return v;
    }
  }
  members_.emplace_back(std::string(key), Json());
  return members_.back().second;
}

bool Json::Has(absl::string_view key) const {
  for (const auto& [k, v] : members_) {
    if (k == key) {
      return true;
    }
  }
  return false;
}

Json& Json::Push(Json value) {
  if (kind_ == Kind::kNull) {
    kind_ = Kind::kArray;
  }
  items_.push_back(std::move(value));
  return items_.back();
}

std::string Json::Dump(bool pretty) const {
  std::string out;
  DumpTo(&out, pretty, 0);
  return out;
}

void Json::DumpTo(std::string* out, bool pretty, int indent) const {
  auto newline = [&](int level) {
    if (!pretty) {
      return;
    }
    out->push_back('\n');
    out->append(static_cast<size_t>(level) * 2, ' ');
  };
  switch (kind_) {
    case Kind::kNull:
      out->append("null");
      return;
    case Kind::kBool:
    case Kind::kNumber:
      out->append(text_);
      return;
    case Kind::kString:
      out->push_back('"');
      platform::AppendJsonEscaped(text_, out);
      out->push_back('"');
      return;
    case Kind::kArray: {
      out->push_back('[');
      for (size_t i = 0; i < items_.size(); ++i) {
        if (i > 0) {
          out->push_back(',');
        }
        newline(indent + 1);
        items_[i].DumpTo(out, pretty, indent + 1);
      }
      if (!items_.empty()) {
        newline(indent);
      }
      out->push_back(']');
      return;
    }
    case Kind::kObject: {
      out->push_back('{');
      for (size_t i = 0; i < members_.size(); ++i) {
        if (i > 0) {
          out->push_back(',');
        }
        newline(indent + 1);
        out->push_back('"');
        platform::AppendJsonEscaped(members_[i].first, out);
        out->append(pretty ? "\": " : "\":");
        members_[i].second.DumpTo(out, pretty, indent + 1);
      }
      if (!members_.empty()) {
        newline(indent);
      }
      out->push_back('}');
      return;
    }
  }
}

}  // namespace kurt::edge
