#include "edge/path_template.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace kurt::edge {
namespace {

bool IsIdent(absl::string_view s) {
  if (s.empty() || absl::ascii_isdigit(s[0])) {
    return false;
  }
  for (char c : s) {
    if (!absl::ascii_isalnum(c) && c != '_') {
      return false;
    }
  }
  return true;
}

bool IsLiteral(absl::string_view s) {
  if (s.empty()) {
    return false;
  }
  for (char c : s) {
    if (c == '{' || c == '}' || c == '*' || c == '/' || c == ':' || c == '=' || c == '?' ||
        c == '#' || static_cast<unsigned char>(c) <= 0x20) {
      return false;
    }
  }
  return true;
}

// Splits at '/' outside braces.
std::vector<absl::string_view> SplitTopLevel(absl::string_view s) {
  std::vector<absl::string_view> out;
  int depth = 0;
  size_t begin = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '{') {
      ++depth;
    }
    if (s[i] == '}') {
      --depth;
    }
    if (s[i] == '/' && depth == 0) {
      out.push_back(s.substr(begin, i - begin));
      begin = i + 1;
    }
  }
  out.push_back(s.substr(begin));
  return out;
}

absl::Status AddPlainSegment(absl::string_view piece, absl::string_view text, PathTemplate* t) {
  if (piece == "*") {
    t->segments.push_back({PathTemplate::Kind::kWildcard, ""});
  } else if (piece == "**") {
    t->segments.push_back({PathTemplate::Kind::kDoubleWildcard, ""});
  } else if (IsLiteral(piece)) {
    t->segments.push_back({PathTemplate::Kind::kLiteral, std::string(piece)});
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("path template \"", text, "\": bad segment \"", piece, "\""));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<PathTemplate> PathTemplate::Parse(absl::string_view text) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("path template \"", text, "\": ", why));
  };
  PathTemplate t;
  t.text = std::string(text);
  if (text.empty() || text[0] != '/') {
    return bad("must start with '/'");
  }
  absl::string_view rest = text.substr(1);

  // The verb follows the last ':' outside braces.
  int depth = 0;
  size_t colon = absl::string_view::npos;
  for (size_t i = 0; i < rest.size(); ++i) {
    if (rest[i] == '{') {
      if (++depth > 1) {
        return bad("nested '{'");
      }
    } else if (rest[i] == '}') {
      if (--depth < 0) {
        return bad("unbalanced '}'");
      }
    } else if (rest[i] == ':' && depth == 0) {
      colon = i;
    }
  }
  if (depth != 0) {
    return bad("unbalanced '{'");
  }
  if (colon != absl::string_view::npos) {
    t.verb = std::string(rest.substr(colon + 1));
    if (!IsLiteral(t.verb)) {
      return bad("bad verb");
    }
    rest = rest.substr(0, colon);
  }

  for (absl::string_view piece : SplitTopLevel(rest)) {
    if (piece.empty()) {
      return bad("empty segment");
    }
    if (piece.front() != '{') {
      if (absl::StrContains(piece, '{') || absl::StrContains(piece, '}')) {
        return bad("a variable must be a whole segment");
      }
      if (auto s = AddPlainSegment(piece, text, &t); !s.ok()) {
        return s;
      }
      continue;
    }
    if (piece.back() != '}') {
      return bad("a variable must be a whole segment");
    }
    absl::string_view inner = piece.substr(1, piece.size() - 2);
    absl::string_view field = inner;
    absl::string_view sub = "*";
    if (size_t eq = inner.find('='); eq != absl::string_view::npos) {
      field = inner.substr(0, eq);
      sub = inner.substr(eq + 1);
      if (sub.empty()) {
        return bad("empty variable template");
      }
    }
    Variable v;
    for (absl::string_view part : absl::StrSplit(field, '.')) {
      if (!IsIdent(part)) {
        return bad(absl::StrCat("bad field path \"", field, "\""));
      }
      v.field_path.emplace_back(part);
    }
    for (const Variable& other : t.variables) {
      if (other.field_path == v.field_path) {
        return bad(absl::StrCat("\"", field, "\" bound twice"));
      }
    }
    v.start = static_cast<int>(t.segments.size());
    for (absl::string_view s : absl::StrSplit(sub, '/')) {
      if (auto st = AddPlainSegment(s, text, &t); !st.ok()) {
        return st;
      }
    }
    v.end =
        t.segments.back().kind == Kind::kDoubleWildcard ? -1 : static_cast<int>(t.segments.size());
    t.variables.push_back(std::move(v));
  }
  for (size_t i = 0; i + 1 < t.segments.size(); ++i) {
    if (t.segments[i].kind == Kind::kDoubleWildcard) {
      return bad("'**' must be the last segment");
    }
  }
  return t;
}

std::string PathTemplate::OpenApiPath() const {
  std::vector<std::string> parts;
  size_t i = 0;
  size_t next_var = 0;
  while (i < segments.size()) {
    if (next_var < variables.size() && variables[next_var].start == static_cast<int>(i)) {
      const Variable& v = variables[next_var++];
      parts.push_back(absl::StrCat("{", absl::StrJoin(v.field_path, "."), "}"));
      i = v.end == -1 ? segments.size() : static_cast<size_t>(v.end);
      continue;
    }
    const Segment& s = segments[i++];
    parts.push_back(s.kind == Kind::kLiteral ? s.literal : s.kind == Kind::kWildcard ? "*" : "**");
  }
  std::string out = absl::StrCat("/", absl::StrJoin(parts, "/"));
  if (!verb.empty()) {
    absl::StrAppend(&out, ":", verb);
  }
  return out;
}

}  // namespace kurt::edge
