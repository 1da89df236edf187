#include "services/common/user_agent.h"

#include <re2/re2.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>

#include "absl/hash/hash.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "platform/core/log.h"

namespace kurt::user_agent {

struct UapRegexes::Parser {
  std::unique_ptr<RE2> re;
  // The family's replacement; "" means group 1. `literal`: it names no group, so a match alone
  // decides the family (no groups to capture).
  std::string replacement;
  bool literal = false;
};

UapRegexes::UapRegexes() = default;
UapRegexes::~UapRegexes() = default;
size_t UapRegexes::device_parsers() const { return devices_.size(); }
size_t UapRegexes::os_parsers() const { return oses_.size(); }

bool IsPreviewAgent(absl::string_view user_agent) {
  auto same = [](char a, char b) { return absl::ascii_tolower(a) == absl::ascii_tolower(b); };
  for (absl::string_view agent : kPreviewAgents) {
    if (std::search(user_agent.begin(), user_agent.end(), agent.begin(), agent.end(), same) !=
        user_agent.end()) {
      return true;
    }
  }
  return false;
}

absl::StatusOr<std::unique_ptr<UapRegexes>> UapRegexes::Load(const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot read uap-core's regexes from ", path, ": ", e.what()));
  }
  auto regexes = std::unique_ptr<UapRegexes>(new UapRegexes());
  for (auto [list, key, out] :
       {std::tuple{"device_parsers", "device_replacement", &regexes->devices_},
        std::tuple{"os_parsers", "os_replacement", &regexes->oses_}}) {
    YAML::Node parsers = root[list];
    if (!parsers.IsSequence() || parsers.size() == 0) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": no ", list, " list"));
    }
    for (size_t i = 0; i < parsers.size(); ++i) {
      const YAML::Node& p = parsers[i];
      if (!p["regex"] || !p["regex"].IsScalar()) {
        return absl::InvalidArgumentError(absl::StrCat(path, ": ", list, "[", i, "] has no regex"));
      }
      const std::string regex = p["regex"].as<std::string>();
      RE2::Options options;
      options.set_log_errors(false);
      if (p["regex_flag"] && p["regex_flag"].as<std::string>() == "i") {
        options.set_case_sensitive(false);
      }
      auto re = std::make_unique<RE2>(regex, options);
      if (!re->ok()) {
        regexes->skipped_.push_back({list, static_cast<int>(i), regex, re->error()});
        KURT_LOG(kWarn, "uap-core parser skipped: RE2 cannot compile it", {"list", list},
                 {"index", static_cast<int64_t>(i)}, {"error", re->error()});
        continue;
      }
      Parser parser;
      parser.re = std::move(re);
      if (p[key]) {
        parser.replacement = p[key].as<std::string>();
        parser.literal = !absl::StrContains(parser.replacement, '$');
        if (parser.literal) {
          parser.replacement = std::string(absl::StripAsciiWhitespace(parser.replacement));
        }
      }
      out->push_back(std::move(parser));
    }
  }
  return regexes;
}

std::string UapRegexes::Family(const std::vector<Parser>& parsers,
                               absl::string_view user_agent_view) {
  const re2::StringPiece user_agent(user_agent_view.data(), user_agent_view.size());
  for (const Parser& p : parsers) {
    if (p.literal) {
      if (RE2::PartialMatch(user_agent, *p.re)) {
        return p.replacement;
      }
      continue;
    }
    // The family comes from the match: groups 0 to 9 are all a replacement can name.
    const int groups = std::min(p.re->NumberOfCapturingGroups(), 9) + 1;
    re2::StringPiece match[10];
    if (!p.re->Match(user_agent, 0, user_agent.size(), RE2::UNANCHORED, match, groups)) {
      continue;
    }
    std::string family;
    if (p.replacement.empty()) {
      family = groups > 1 ? std::string(match[1].data(), match[1].size()) : "";
    } else {
      for (size_t i = 0; i < p.replacement.size(); ++i) {
        const char c = p.replacement[i];
        if (c == '$' && i + 1 < p.replacement.size() && absl::ascii_isdigit(p.replacement[i + 1])) {
          const int g = p.replacement[++i] - '0';
          if (g < groups) {
            family.append(match[g].data(), match[g].size());
          }
        } else {
          family.push_back(c);
        }
      }
    }
    return std::string(absl::StripAsciiWhitespace(family));
  }
  return "Other";
}

std::string UapRegexes::DeviceFamily(absl::string_view user_agent) const {
  return Family(devices_, user_agent);
}

std::string UapRegexes::OsFamily(absl::string_view user_agent) const {
  return Family(oses_, user_agent);
}

bool UapRegexes::IsSpider(absl::string_view user_agent) const {
  return DeviceFamily(user_agent) == "Spider";
}

absl::string_view DeviceName(Device device) {
  switch (device) {
    case Device::kMobile:
      return "mobile";
    case Device::kTablet:
      return "tablet";
    case Device::kDesktop:
      return "desktop";
    case Device::kBot:
      return "bot";
    case Device::kUnknown:
      break;
  }
  return "";
}

absl::string_view OsName(Os os) {
  switch (os) {
    case Os::kAndroid:
      return "android";
    case Os::kIos:
      return "ios";
    case Os::kWindows:
      return "windows";
    case Os::kMacos:
      return "macos";
    case Os::kLinux:
      return "linux";
    case Os::kChromeos:
      return "chromeos";
    case Os::kOther:
      break;
  }
  return "";
}

namespace {

// The Linux distributions uap-core's os parsers name (their family is the group they match).
constexpr absl::string_view kLinuxFamilies[] = {
    "Linux",     "Ubuntu",  "Kubuntu",  "Xubuntu", "Lubuntu",  "Debian",
    "Fedora",    "Red Hat", "CentOS",   "Gentoo",  "openSUSE", "SUSE",
    "Slackware", "Mint",    "Mandriva", "Mageia",  "Arch",     "PCLinuxOS"};

Os OsOf(absl::string_view family) {
  if (family == "iOS" || family == "iPadOS") {
    return Os::kIos;
  }
  if (family == "Android") {
    return Os::kAndroid;
  }
  if (absl::StartsWith(family, "Windows") && !absl::StrContains(family, "Phone") &&
      !absl::StrContains(family, "Mobile") && !absl::StrContains(family, "CE")) {
    return Os::kWindows;
  }
  if (family == "Mac OS X" || family == "macOS" || family == "Mac OS") {
    return Os::kMacos;
  }
  if (family == "Chrome OS") {
    return Os::kChromeos;
  }
  for (absl::string_view linux : kLinuxFamilies) {
    if (absl::StartsWith(family, linux)) {
      return Os::kLinux;
    }
  }
  return Os::kOther;
}

// Operating systems only phones (and a few tablets, told apart before) run.
bool IsMobileOs(absl::string_view family) {
  return family == "iOS" || family == "Android" || absl::StartsWith(family, "Windows Phone") ||
         family == "Windows Mobile" || family == "KaiOS" || family == "Firefox OS" ||
         absl::StartsWith(family, "BlackBerry OS") || absl::StartsWith(family, "Symbian") ||
         absl::StartsWith(family, "Nokia Series");
}

}  // namespace

Classification Classify(const UapRegexes* regexes, absl::string_view user_agent) {
  Classification out;
  if (user_agent.empty()) {
    return out;
  }
  if (IsPreviewAgent(user_agent)) {
    out.device = Device::kBot;
  }
  std::string device = "Other";
  std::string os = "Other";
  if (regexes != nullptr) {
    os = regexes->OsFamily(user_agent);
    if (out.device != Device::kBot) {
      device = regexes->DeviceFamily(user_agent);
    }
  }
  out.os = OsOf(os);
  if (out.device == Device::kBot) {
    return out;
  }
  if (device == "Spider") {
    out.device = Device::kBot;
  } else if (device == "iPad" || absl::StartsWith(device, "Kindle") ||
             absl::StrContains(device, "Tablet") || os == "BlackBerry Tablet OS" ||
             (out.os == Os::kAndroid && !absl::StrContains(user_agent, "Mobile"))) {
    out.device = Device::kTablet;
  } else if (device == "iPhone" || device == "iPod" || device == "Generic Smartphone" ||
             device == "Generic Feature Phone" || IsMobileOs(os) ||
             absl::StrContains(user_agent, "Mobi")) {
    out.device = Device::kMobile;
  } else if (out.os == Os::kWindows || out.os == Os::kMacos || out.os == Os::kLinux ||
             out.os == Os::kChromeos) {
    out.device = Device::kDesktop;
  }
  return out;
}

ClassificationCache::ClassificationCache(const UapRegexes* regexes, size_t max_entries)
    : regexes_(regexes), max_per_shard_(std::max<size_t>(1, max_entries / kShards)) {}

Classification ClassificationCache::Get(absl::string_view user_agent) {
  Shard& shard = shards_[absl::HashOf(user_agent) % kShards];
  {
    std::lock_guard<std::mutex> lock(shard.mu);
    if (auto it = shard.index.find(user_agent); it != shard.index.end()) {
      ++shard.counts.hits;
      shard.order.splice(shard.order.begin(), shard.order, it->second);
      return it->second->second;
    }
    ++shard.counts.misses;
  }
  // Outside the lock: a new agent's walk over the regexes holds up no other agent of the shard.
  // Two threads may classify the same new agent at once; the second insert finds the first's.
  const Classification answer = Classify(regexes_, user_agent);
  std::lock_guard<std::mutex> lock(shard.mu);
  if (shard.index.contains(user_agent)) {
    return answer;
  }
  if (shard.order.size() >= max_per_shard_) {
    shard.index.erase(shard.order.back().first);
    shard.order.pop_back();
  }
  shard.order.emplace_front(std::string(user_agent), answer);
  shard.index.emplace(shard.order.front().first, shard.order.begin());
  return answer;
}

ClassificationCache::Counts ClassificationCache::counts() const {
  Counts total;
  for (const Shard& s : shards_) {
    std::lock_guard<std::mutex> lock(s.mu);
    total.hits += s.counts.hits;
    total.misses += s.counts.misses;
  }
  return total;
}

}  // namespace kurt::user_agent
