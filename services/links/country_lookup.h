// The country of a client address, from an offline table of address ranges (Debian's
// tor-geoipdb: /usr/share/tor/geoip and geoip6, "first,last,CC" lines converted from the IPFire
// Location database). Looked up on the redirect's path when a click event is made, so a lookup
// is a binary search in memory, with no I/O and no allocation: first in an index by the top 16
// bits of the address, then among the few ranges that start in that slice (a plain binary search
// over 385,000 ranges took about 19 cache misses, over a microsecond).
//
// Loaded once at start; immutable afterwards, so any thread may call Lookup concurrently.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/numeric/int128.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace kurt::links {

class CountryLookup {
 public:
  // Reads the IPv4 table (first and last address as decimal numbers) and the IPv6 one (first and
  // last address in text). Either path may be empty (no addresses of that family are known).
  // Ranges whose country is "??" (unknown to the database) are left out. An unreadable file or a
  // malformed line is an error naming the file and the line.
  static absl::StatusOr<std::unique_ptr<CountryLookup>> Load(const std::string& ipv4_path,
                                                             const std::string& ipv6_path);

  // The upper-case ISO 3166-1 alpha-2 code of the address's country; "" when the address is not
  // an IP address or is in no range of the table (private and loopback addresses are in none).
  // An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is looked up as the IPv4 address.
  absl::string_view Lookup(absl::string_view address) const;

  size_t ipv4_ranges() const { return v4_.size(); }
  size_t ipv6_ranges() const { return v6_.size(); }

 private:
  template <typename Address>
  struct Range {
    Address first;
    Address last;
    char country[2];
  };
  // Where each slice of the address space (its top 16 bits) starts in the sorted ranges: the
  // ranges whose first address is in slice t are [slices[t], slices[t + 1]).
  using SliceIndex = std::vector<uint32_t>;
  template <typename Address>
  static SliceIndex Slices(const std::vector<Range<Address>>& ranges);
  template <typename Address>
  static absl::string_view Find(const std::vector<Range<Address>>& ranges, const SliceIndex& slices,
                                Address address);

  std::vector<Range<uint32_t>> v4_;       // sorted by first; ranges do not overlap
  std::vector<Range<absl::uint128>> v6_;  // likewise
  SliceIndex v4_slices_, v6_slices_;
};

}  // namespace kurt::links
