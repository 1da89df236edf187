// Matches an HTTP method and path against the path templates of every route. Built once at start
// (Add from one thread), then read concurrently by every I/O thread without locks.
//
// Precedence: a literal segment beats `*`, which beats `**`; a custom verb (`:cancel`) that
// matches beats treating the colon as part of the last segment. A path that matches some
// template but no route for the method is "method not allowed", with the methods that would be.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "edge/path_template.h"

namespace kurt::edge {

// Decodes %XX escapes; with keep_slash, %2F stays encoded (multi-segment variables). Returns
// false on a malformed escape.
bool PercentDecode(absl::string_view in, bool keep_slash, std::string* out);

class Router {
 public:
  enum class Outcome { kFound, kNotFound, kMethodNotAllowed, kBadPath };
  struct Match {
    Outcome outcome = Outcome::kNotFound;
    int route_id = -1;
    const PathTemplate* path_template = nullptr;
    // One value per variable of the template, percent-decoded, in the template's order.
    std::vector<std::string> values;
    // kMethodNotAllowed: the methods the path accepts, e.g. "GET, DELETE".
    std::string allow;
  };

  Router();
  ~Router();
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // Fails when the same method and template (by shape) is added twice.
  absl::Status Add(absl::string_view method, PathTemplate path_template, int route_id);

  // `path` is the request target's path (no query string), as sent: still percent-encoded.
  Match Find(absl::string_view method, absl::string_view path) const;

  // The methods any route accepts on this path ("" when none), e.g. for CORS preflight.
  std::string AllowedMethods(absl::string_view path) const;

 private:
  struct Entry {
    std::string method;
    int route_id;
    std::unique_ptr<PathTemplate> path_template;
  };
  struct Node {
    absl::flat_hash_map<std::string, std::unique_ptr<Node>> literals;
    std::unique_ptr<Node> wildcard;
    std::unique_ptr<Node> double_wildcard;
    // Routes ending here, by verb ("" for none).
    absl::flat_hash_map<std::string, std::vector<Entry>> leaves;
  };
  struct Search;

  static void Collect(const Node& node, const std::vector<absl::string_view>& segments, size_t i,
                      absl::string_view verb, Search* search);

  Node root_;
};

}  // namespace kurt::edge
