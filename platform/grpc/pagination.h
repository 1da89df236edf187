// Keyset pagination for every List RPC: page sizes, and opaque page tokens that hold where the
// previous page ended, (time, key) of its last row. A store is asked for one row more than the
// page, which tells whether there is a next page:
//
//   absl::StatusOr<PageRequest> page = ReadPageRequest(r.page_size(), r.page_token(), IsId);
//   if (!page.ok()) return page.status();
//   auto rows = store->List(account, page->size + 1, page->after);
//   ... response.set_next_page_token(FinishPage(&*rows, page->size, [](const Row& row) {
//         return PageKey{row.create_time, row.id}; }));
//
// Pure functions; safe from any thread.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace kurt::platform {

// Where a page ended: the sort keys of its last row.
struct PageKey {
  absl::Time time;
  std::string key;
};

struct PageRequest {
  int size = 0;                  // rows on the page
  std::optional<PageKey> after;  // none: the first page
};

// The page size of a List request: 0 means 20, more than 100 means 100, negative is
// INVALID_ARGUMENT (page_size).
absl::StatusOr<int> PageSize(int requested);

// The page size and the token of a List request; a token that is not from a previous page, or
// whose key fails `key_is_valid`, is INVALID_ARGUMENT (page_token).
absl::StatusOr<PageRequest> ReadPageRequest(
    int page_size, absl::string_view page_token,
    absl::FunctionRef<bool(absl::string_view)> key_is_valid);

// An opaque page token for keyset pagination on (time, key): the last row of a page.
std::string EncodePageToken(absl::Time time, absl::string_view key);
// The (time, key) of a token from EncodePageToken; nullopt when it is not one.
std::optional<std::pair<absl::Time, std::string>> DecodePageToken(absl::string_view token);

// `rows` holds what the store returned for `size` + 1 rows asked: drops the row past the page and
// returns the next page's token, or "" when this is the last page.
template <typename Row, typename KeyOf>
std::string FinishPage(std::vector<Row>* rows, int size, KeyOf key_of) {
  if (static_cast<int>(rows->size()) <= size) {
    return "";
  }
  rows->resize(size);
  const PageKey last = key_of(rows->back());
  return EncodePageToken(last.time, last.key);
}

}  // namespace kurt::platform
