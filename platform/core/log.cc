#include "platform/core/log.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <random>

#include "absl/strings/escaping.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "platform/core/text.h"

namespace kurt::log {
namespace {

std::atomic<int> g_min_level{static_cast<int>(Level::kInfo)};
// Set once at start-up, before other threads exist.
std::string* g_component = new std::string("kurt");
thread_local absl::string_view t_request_id;

const char* LevelName(Level level) {
  switch (level) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
  }
  return "info";
}

void AppendJsonString(std::string* out, absl::string_view s) {
  out->push_back('"');
  platform::AppendJsonEscaped(s, out);
  out->push_back('"');
}

}  // namespace

void Configure(absl::string_view component, Level min_level) {
  *g_component = std::string(component);
  g_min_level = static_cast<int>(min_level);
}

bool ParseLevel(absl::string_view text, Level* level) {
  for (Level l : {Level::kDebug, Level::kInfo, Level::kWarn, Level::kError}) {
    if (text == LevelName(l)) {
      *level = l;
      return true;
    }
  }
  return false;
}

bool Enabled(Level level) { return static_cast<int>(level) >= g_min_level.load(); }

std::string Format(Level level, absl::string_view component, absl::string_view request_id,
                   absl::string_view msg, std::initializer_list<Field> fields) {
  std::string out = "{\"ts\":";
  AppendJsonString(&out,
                   absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", absl::Now(), absl::UTCTimeZone()));
  out.append(",\"level\":");
  AppendJsonString(&out, LevelName(level));
  out.append(",\"component\":");
  AppendJsonString(&out, component);
  out.append(",\"msg\":");
  AppendJsonString(&out, msg);
  if (!request_id.empty()) {
    out.append(",\"request_id\":");
    AppendJsonString(&out, request_id);
  }
  for (const Field& f : fields) {
    out.push_back(',');
    AppendJsonString(&out, f.key);
    out.push_back(':');
    AppendJsonString(&out, f.value);
  }
  out.push_back('}');
  return out;
}

void Write(Level level, absl::string_view msg, std::initializer_list<Field> fields) {
  std::string line = Format(level, *g_component, t_request_id, msg, fields);
  line.push_back('\n');
  // One write per line keeps lines whole when threads log at once.
  ssize_t unused = ::write(STDERR_FILENO, line.data(), line.size());
  (void)unused;
}

RequestScope::RequestScope(std::string request_id)
    : owned_(std::move(request_id)), previous_(t_request_id) {
  t_request_id = owned_;
}

RequestScope::RequestScope(absl::string_view request_id, Borrow) : previous_(t_request_id) {
  t_request_id = request_id;
}

RequestScope::~RequestScope() { t_request_id = previous_; }

absl::string_view RequestScope::Current() { return t_request_id; }

std::string NewRequestId() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  uint64_t words[2] = {rng(), rng()};
  // Hex of the 16 bytes in memory order, written into one allocation (every request makes one).
  static constexpr char kHex[] = "0123456789abcdef";
  const auto* bytes = reinterpret_cast<const unsigned char*>(words);
  std::string id(2 * sizeof(words), '\0');
  for (size_t i = 0; i < sizeof(words); ++i) {
    id[2 * i] = kHex[bytes[i] >> 4];
    id[2 * i + 1] = kHex[bytes[i] & 0xf];
  }
  return id;
}

}  // namespace kurt::log
