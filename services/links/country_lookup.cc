#include "services/links/country_lookup.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace kurt::links {
namespace {

bool ParseV6(absl::string_view text, absl::uint128* out) {
  char buf[INET6_ADDRSTRLEN + 1];
  if (text.size() >= sizeof(buf)) {
    return false;
  }
  text.copy(buf, text.size());
  buf[text.size()] = '\0';
  std::array<unsigned char, 16> bytes;
  if (inet_pton(AF_INET6, buf, bytes.data()) != 1) {
    return false;
  }
  uint64_t hi = 0, lo = 0;
  for (int i = 0; i < 8; ++i) {
    hi = (hi << 8) | bytes[i];
    lo = (lo << 8) | bytes[i + 8];
  }
  *out = absl::MakeUint128(hi, lo);
  return true;
}

bool ParseV4(absl::string_view text, uint32_t* out) {
  char buf[INET_ADDRSTRLEN + 1];
  if (text.size() >= sizeof(buf)) {
    return false;
  }
  text.copy(buf, text.size());
  buf[text.size()] = '\0';
  in_addr addr;
  if (inet_pton(AF_INET, buf, &addr) != 1) {
    return false;
  }
  *out = ntohl(addr.s_addr);
  return true;
}

bool IsCountry(absl::string_view cc) {
  return cc.size() == 2 && absl::ascii_isupper(cc[0]) && absl::ascii_isupper(cc[1]);
}

// Calls add(first_text, last_text, country) for each range line of `path`.
template <typename Add>
absl::Status ReadRanges(const std::string& path, Add&& add) {
  std::ifstream in(path);
  if (!in) {
    return absl::FailedPreconditionError(absl::StrCat("cannot read the country table ", path));
  }
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    absl::string_view l = absl::StripAsciiWhitespace(line);
    if (l.empty() || l[0] == '#') {
      continue;
    }
    std::vector<absl::string_view> fields = absl::StrSplit(l, ',');
    if (fields.size() != 3 || fields[2].size() != 2) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", n, ": not a \"first,last,CC\" line"));
    }
    if (fields[2] == "??") {
      continue;
    }
    if (!IsCountry(fields[2])) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", n, ": '", fields[2], "' is not a country code"));
    }
    if (!add(fields[0], fields[1], fields[2])) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", n, ": not a range of addresses"));
    }
  }
  return absl::OkStatus();
}

template <typename R>
absl::Status SortAndCheck(std::vector<R>* ranges, const std::string& path) {
  std::sort(ranges->begin(), ranges->end(),
            [](const R& a, const R& b) { return a.first < b.first; });
  for (size_t i = 1; i < ranges->size(); ++i) {
    if ((*ranges)[i].first <= (*ranges)[i - 1].last) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": ranges overlap"));
    }
  }
  return absl::OkStatus();
}

uint32_t TopBits(uint32_t a) { return a >> 16; }
uint32_t TopBits(absl::uint128 a) { return static_cast<uint32_t>(absl::Uint128High64(a) >> 48); }

}  // namespace

template <typename Address>
CountryLookup::SliceIndex CountryLookup::Slices(const std::vector<Range<Address>>& ranges) {
  SliceIndex slices(65537);
  size_t i = 0;
  for (uint32_t t = 0; t <= 65536; ++t) {
    while (i < ranges.size() && TopBits(ranges[i].first) < t) {
      ++i;
    }
    slices[t] = static_cast<uint32_t>(i);
  }
  return slices;
}

absl::StatusOr<std::unique_ptr<CountryLookup>> CountryLookup::Load(const std::string& ipv4_path,
                                                                   const std::string& ipv6_path) {
  auto lookup = std::unique_ptr<CountryLookup>(new CountryLookup());
  if (!ipv4_path.empty()) {
    absl::Status s = ReadRanges(
        ipv4_path, [&](absl::string_view first, absl::string_view last, absl::string_view cc) {
          Range<uint32_t> r{};
          if (!absl::SimpleAtoi(first, &r.first) || !absl::SimpleAtoi(last, &r.last) ||
              r.last < r.first) {
            return false;
          }
          cc.copy(r.country, 2);
          lookup->v4_.push_back(r);
          return true;
        });
    if (s.ok()) {
      s = SortAndCheck(&lookup->v4_, ipv4_path);
    }
    if (!s.ok()) {
      return s;
    }
  }
  if (!ipv6_path.empty()) {
    absl::Status s = ReadRanges(
        ipv6_path, [&](absl::string_view first, absl::string_view last, absl::string_view cc) {
          Range<absl::uint128> r{};
          if (!ParseV6(first, &r.first) || !ParseV6(last, &r.last) || r.last < r.first) {
            return false;
          }
          cc.copy(r.country, 2);
          lookup->v6_.push_back(r);
          return true;
        });
    if (s.ok()) {
      s = SortAndCheck(&lookup->v6_, ipv6_path);
    }
    if (!s.ok()) {
      return s;
    }
  }
  lookup->v4_.shrink_to_fit();
  lookup->v6_.shrink_to_fit();
  lookup->v4_slices_ = Slices(lookup->v4_);
  lookup->v6_slices_ = Slices(lookup->v6_);
  return lookup;
}

template <typename Address>
absl::string_view CountryLookup::Find(const std::vector<Range<Address>>& ranges,
                                      const SliceIndex& slices, Address address) {
  // The last range starting at or before the address: among those starting in its slice, else
  // the one before them (every earlier range starts before the slice does).
  const uint32_t t = TopBits(address);
  auto it = std::upper_bound(ranges.begin() + slices[t], ranges.begin() + slices[t + 1], address,
                             [](Address a, const Range<Address>& r) { return a < r.first; });
  if (it == ranges.begin()) {
    return {};
  }
  --it;
  if (address > it->last) {
    return {};
  }
  return absl::string_view(it->country, 2);
}

absl::string_view CountryLookup::Lookup(absl::string_view address) const {
  uint32_t v4 = 0;
  if (ParseV4(address, &v4)) {
    return Find(v4_, v4_slices_, v4);
  }
  absl::uint128 v6 = 0;
  if (!ParseV6(address, &v6)) {
    return {};
  }
  if (absl::Uint128High64(v6) == 0 && (absl::Uint128Low64(v6) >> 32) == 0xffff) {
    return Find(v4_, v4_slices_, static_cast<uint32_t>(absl::Uint128Low64(v6)));
  }
  return Find(v6_, v6_slices_, v6);
}

}  // namespace kurt::links
