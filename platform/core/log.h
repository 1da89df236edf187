// Structured logging: one JSON object per line on stderr, with the component, the request id of
// the current request (see RequestScope) and any extra fields.
//
//   KURT_LOG(kInfo, "link created", {"code", code}, {"account", id});
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace kurt::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

// A key and a value already rendered as text (numbers are rendered with absl::StrCat).
struct Field {
  template <typename T>
  Field(absl::string_view k, const T& v) : key(k), value(Render(v)) {}
  absl::string_view key;
  std::string value;

 private:
  static std::string Render(absl::string_view v) { return std::string(v); }
  static std::string Render(std::string_view v) { return std::string(v); }
  static std::string Render(const std::string& v) { return v; }
  static std::string Render(const char* v) { return v; }
  template <typename T>
  static std::string Render(const T& v) {
    return absl::StrCat(v);
  }
};

// Process-wide settings; set once at start-up by platform::InitProcess.
void Configure(absl::string_view component, Level min_level);
bool ParseLevel(absl::string_view text, Level* level);
bool Enabled(Level level);

void Write(Level level, absl::string_view msg, std::initializer_list<Field> fields);

// Renders one log line (without the newline); exposed for tests.
std::string Format(Level level, absl::string_view component, absl::string_view request_id,
                   absl::string_view msg, std::initializer_list<Field> fields);

// The request id logs carry on this thread, for as long as the scope lives; scopes nest. The RPC
// handler (platform/grpc/handler.h) opens one for each call, from the x-request-id metadata.
class RequestScope {
 public:
  // Keeps its own copy of the id.
  explicit RequestScope(std::string request_id);
  // Borrows the id, which must outlive the scope: no copy, for the per-call hot path.
  struct Borrow {};
  RequestScope(absl::string_view request_id, Borrow);
  ~RequestScope();
  RequestScope(const RequestScope&) = delete;
  RequestScope& operator=(const RequestScope&) = delete;

  static absl::string_view Current();

 private:
  std::string owned_;
  absl::string_view previous_;
};

// A fresh random request id (16 bytes, hex).
std::string NewRequestId();

}  // namespace kurt::log

#define KURT_LOG(level, msg, ...)                                        \
  do {                                                                   \
    if (::kurt::log::Enabled(::kurt::log::Level::level)) {               \
      ::kurt::log::Write(::kurt::log::Level::level, msg, {__VA_ARGS__}); \
    }                                                                    \
  } while (0)
