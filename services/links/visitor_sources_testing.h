// Test helper: the real sources of redirect rules' facts about a visitor, Debian's uap-core
// regexes and tor-geoipdb tables (tools/lib.sh installs both), loaded once per test binary and
// kept for its life.
#pragma once

#include "gtest/gtest.h"
#include "services/common/user_agent.h"
#include "services/links/country_lookup.h"

namespace kurt::links::visitor_testing {

inline const user_agent::UapRegexes* RealUapRegexes() {
  static const user_agent::UapRegexes* const regexes = [] {
    auto loaded = user_agent::UapRegexes::Load("/usr/share/uap-core/regexes.yaml");
    EXPECT_TRUE(loaded.ok()) << loaded.status();
    return loaded.ok() ? loaded->release() : nullptr;
  }();
  return regexes;
}

inline const CountryLookup* RealCountries() {
  static const CountryLookup* const countries = [] {
    auto loaded = CountryLookup::Load("/usr/share/tor/geoip", "/usr/share/tor/geoip6");
    EXPECT_TRUE(loaded.ok()) << loaded.status();
    return loaded.ok() ? loaded->release() : nullptr;
  }();
  return countries;
}

}  // namespace kurt::links::visitor_testing
