// A small ordered JSON document builder for what the edge writes itself (the OpenAPI document):
// objects keep insertion order, so the same API always renders to the same bytes (and ETag).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace kurt::edge {

class Json {
 public:
  enum class Kind { kNull, kBool, kNumber, kString, kArray, kObject };

  Json() = default;
  static Json Object() { return Json(Kind::kObject); }
  static Json Array() { return Json(Kind::kArray); }
  static Json String(absl::string_view s) {
    Json j(Kind::kString);
    j.text_ = std::string(s);
    return j;
  }
  static Json Number(double v);
  static Json Bool(bool v) {
    Json j(Kind::kBool);
    j.text_ = v ? "true" : "false";
    return j;
  }

  // Object: the member `key`, added (null) when missing.
  Json& operator[](absl::string_view key);
  bool Has(absl::string_view key) const;
  // Array: appends.
  Json& Push(Json value);
  Kind kind() const { return kind_; }

  std::string Dump(bool pretty = false) const;

 private:
  explicit Json(Kind kind) : kind_(kind) {}
  void DumpTo(std::string* out, bool pretty, int indent) const;

  Kind kind_ = Kind::kNull;
  std::string text_;
  std::vector<std::pair<std::string, Json>> members_;  // object
  std::vector<Json> items_;                            // array
};

}  // namespace kurt::edge
