// A google.api.http path template ("/v1/{name=shelves/*}/books/{book}:cancel"), parsed into the
// segments the router matches and the variables it binds. The grammar is the one in
// google/api/http.proto; `**` may only be the last segment.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace kurt::edge {

struct PathTemplate {
  enum class Kind { kLiteral, kWildcard, kDoubleWildcard };
  struct Segment {
    Kind kind = Kind::kLiteral;
    std::string literal;  // kLiteral only
    bool operator==(const Segment&) const = default;
  };
  // A variable binds the path segments [start, end); end == -1 means "to the end" (`**`).
  struct Variable {
    std::vector<std::string> field_path;  // "a.b" -> {"a", "b"}
    int start = 0;
    int end = 0;
  };

  std::string text;  // as written in the proto
  std::vector<Segment> segments;
  std::vector<Variable> variables;
  std::string verb;  // after the last ':', without it; empty when none

  static absl::StatusOr<PathTemplate> Parse(absl::string_view text);

  // The template in OpenAPI form: each variable as {a.b}, other wildcards as written.
  std::string OpenApiPath() const;
};

}  // namespace kurt::edge
