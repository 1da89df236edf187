// Tests only: reads back the binary COPY data BatchBuilder writes (click_batch.h), so that tests
// can check the rows without a database.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "services/analytics/click_batch.h"

namespace kurt::analytics {

// A raw row as the COPY data carries it.
struct CopyRow {
  std::string code;
  int64_t time_micros = 0;  // since the Unix epoch
  std::string event_id, referrer, user_agent, client_hash;
  int32_t partition = 0;
  int64_t offset = 0;
  bool bot = false;
  std::string country;
  bool operator==(const CopyRow&) const = default;
};

// A big-endian integer of 1 to 8 bytes, sign-extended (0 for another size).
inline int64_t ReadBigEndian(absl::string_view b) {
  if (b.empty() || b.size() > 8) {
    return 0;
  }
  uint64_t value = 0;
  for (char c : b) {
    value = (value << 8) | static_cast<unsigned char>(c);
  }
  const int shift = 64 - 8 * static_cast<int>(b.size());
  return shift == 0 ? static_cast<int64_t>(value) : static_cast<int64_t>(value << shift) >> shift;
}

// The rows of BatchBuilder's COPY data (no header or trailer); nullopt if malformed.
inline std::optional<std::vector<CopyRow>> DecodeCopyRows(absl::string_view data) {
  std::vector<CopyRow> rows;
  auto take = [&data](size_t n) -> std::optional<absl::string_view> {
    if (data.size() < n) {
      return std::nullopt;
    }
    absl::string_view out = data.substr(0, n);
    data.remove_prefix(n);
    return out;
  };
  auto field = [&]() -> std::optional<absl::string_view> {
    auto length = take(4);
    if (!length) {
      return std::nullopt;
    }
    const int64_t n = ReadBigEndian(*length);
    if (n < 0) {
      return std::nullopt;  // NULL: never written
    }
    return take(static_cast<size_t>(n));
  };
  auto int_field = [&](size_t bytes) -> std::optional<int64_t> {
    auto f = field();
    if (!f || f->size() != bytes) {
      return std::nullopt;
    }
    return ReadBigEndian(*f);
  };
  while (!data.empty()) {
    auto count = take(2);
    if (!count || ReadBigEndian(*count) != kClickCopyFields) {
      return std::nullopt;
    }
    auto code = field();
    auto time = int_field(8);
    auto event_id = field();
    auto referrer = field();
    auto user_agent = field();
    auto client_hash = field();
    auto partition = int_field(4);
    auto offset = int_field(8);
    auto bot = int_field(1);
    auto country = field();
    if (!code || !time || !event_id || !referrer || !user_agent || !client_hash || !partition ||
        !offset || !bot || !country) {
      return std::nullopt;
    }
    rows.push_back({std::string(*code), *time + kPostgresEpochMicros, std::string(*event_id),
                    std::string(*referrer), std::string(*user_agent), std::string(*client_hash),
                    static_cast<int32_t>(*partition), *offset, *bot != 0, std::string(*country)});
  }
  return rows;
}

}  // namespace kurt::analytics
