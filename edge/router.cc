#include "edge/router.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "platform/core/text.h"

namespace kurt::edge {

bool PercentDecode(absl::string_view in, bool keep_slash, std::string* out) {
  out->clear();
  out->reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out->push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) {
      return false;
    }
    int hi = platform::HexDigitValue(in[i + 1]);
    int lo = platform::HexDigitValue(in[i + 2]);
    if (hi < 0 || lo < 0) {
      return false;
    }
    char c = static_cast<char>(hi * 16 + lo);
    if (keep_slash && c == '/') {
      out->append(in.data() + i, 3);
    } else {
      out->push_back(c);
    }
    i += 2;
  }
  return true;
}

// The state of one Find: the first leaf (in precedence order) that has the method, and the
// methods of every leaf the path reached, for 405.
struct Router::Search {
  absl::string_view method;
  const Entry* found = nullptr;
  std::vector<absl::string_view> allowed;
};

Router::Router() = default;
Router::~Router() = default;

absl::Status Router::Add(absl::string_view method, PathTemplate path_template, int route_id) {
  Node* node = &root_;
  for (const PathTemplate::Segment& s : path_template.segments) {
    std::unique_ptr<Node>* next = nullptr;
    switch (s.kind) {
      case PathTemplate::Kind::kLiteral:
        next = &node->literals[s.literal];
        break;
      case PathTemplate::Kind::kWildcard:
        next = &node->wildcard;
        break;
      case PathTemplate::Kind::kDoubleWildcard:
        next = &node->double_wildcard;
        break;
    }
    if (!*next) {
      *next = std::make_unique<Node>();
    }
    node = next->get();
  }
  std::vector<Entry>& entries = node->leaves[path_template.verb];
  for (const Entry& e : entries) {
    if (e.method == method) {
      return absl::AlreadyExistsError(
          absl::StrCat(method, " ", path_template.text, " conflicts with ", e.path_template->text));
    }
  }
  entries.push_back(
      {std::string(method), route_id, std::make_unique<PathTemplate>(std::move(path_template))});
  return absl::OkStatus();
}

void Router::Collect(const Node& node, const std::vector<absl::string_view>& segments, size_t i,
                     absl::string_view verb, Search* search) {
  if (search->found) {
    return;
  }
  if (i == segments.size()) {
    auto it = node.leaves.find(verb);
    if (it == node.leaves.end()) {
      return;
    }
    for (const Entry& e : it->second) {
      if (e.method == search->method) {
        search->found = &e;
        return;
      }
      search->allowed.push_back(e.method);
    }
    return;
  }
  absl::string_view segment = segments[i];
  if (!node.literals.empty()) {
    auto it = node.literals.find(segment);
    if (it != node.literals.end()) {
      Collect(*it->second, segments, i + 1, verb, search);
    }
  }
  if (node.wildcard && !segment.empty()) {
    Collect(*node.wildcard, segments, i + 1, verb, search);
  }
  if (node.double_wildcard) {
    // `**` takes the rest (at least one segment), and is always last.
    Collect(*node.double_wildcard, segments, segments.size(), verb, search);
  }
}

Router::Match Router::Find(absl::string_view method, absl::string_view path) const {
  Match match;
  if (path.empty() || path[0] != '/') {
    match.outcome = Outcome::kBadPath;
    return match;
  }
  std::vector<absl::string_view> segments = absl::StrSplit(path.substr(1), '/');
  Search search;
  search.method = method;

  // First with the text after the last ':' of the last segment as a custom verb, then without.
  absl::string_view last = segments.back();
  size_t colon = last.rfind(':');
  const std::vector<absl::string_view>* matched_segments = &segments;
  std::vector<absl::string_view> trimmed;
  if (colon != absl::string_view::npos && colon + 1 < last.size()) {
    trimmed = segments;
    trimmed.back() = last.substr(0, colon);
    Collect(root_, trimmed, 0, last.substr(colon + 1), &search);
    if (search.found) {
      matched_segments = &trimmed;
    }
  }
  if (!search.found) {
    Collect(root_, segments, 0, "", &search);
  }

  if (!search.found) {
    if (search.allowed.empty()) {
      return match;
    }
    std::sort(search.allowed.begin(), search.allowed.end());
    search.allowed.erase(std::unique(search.allowed.begin(), search.allowed.end()),
                         search.allowed.end());
    match.outcome = Outcome::kMethodNotAllowed;
    match.allow = absl::StrJoin(search.allowed, ", ");
    return match;
  }

  const PathTemplate& t = *search.found->path_template;
  const std::vector<absl::string_view>& segs = *matched_segments;
  match.values.reserve(t.variables.size());
  for (const PathTemplate::Variable& v : t.variables) {
    size_t end = v.end == -1 ? segs.size() : static_cast<size_t>(v.end);
    std::string value;
    bool ok;
    if (end == static_cast<size_t>(v.start) + 1 && v.end != -1) {
      ok = PercentDecode(segs[v.start], /*keep_slash=*/false, &value);
    } else {
      std::string joined = absl::StrJoin(segs.begin() + v.start,
                                         segs.begin() + static_cast<std::ptrdiff_t>(end), "/");
      ok = PercentDecode(joined, /*keep_slash=*/true, &value);
    }
    if (!ok) {
      match.outcome = Outcome::kBadPath;
      return match;
    }
    match.values.push_back(std::move(value));
  }
  match.outcome = Outcome::kFound;
  match.route_id = search.found->route_id;
  match.path_template = &t;
  return match;
}

std::string Router::AllowedMethods(absl::string_view path) const {
  Match m = Find("\x01", path);  // a method no route has: collects every allowed one
  return m.outcome == Outcome::kMethodNotAllowed ? m.allow : "";
}

}  // namespace kurt::edge
