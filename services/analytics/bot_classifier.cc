#include "services/analytics/bot_classifier.h"

#include <re2/re2.h>
#include <yaml-cpp/yaml.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "platform/core/log.h"

namespace kurt::analytics {
namespace {

constexpr absl::string_view kSpider = "Spider";

// What a parser's device_replacement says about the family, before any match.
enum class Family {
  kSpider,     // a literal "Spider"
  kNotSpider,  // a literal of anything else
  kComputed,   // from the match: no replacement (group 1), or one with $1..$9 in it
};

}  // namespace

struct UapSpiderRules::Parser {
  std::unique_ptr<RE2> re;
  Family family = Family::kNotSpider;
  std::string replacement;  // kComputed: "" means group 1
};

UapSpiderRules::UapSpiderRules() = default;
UapSpiderRules::~UapSpiderRules() = default;
size_t UapSpiderRules::parsers() const { return parsers_.size(); }

bool IsPreviewAgent(absl::string_view user_agent) {
  std::string lower = absl::AsciiStrToLower(user_agent);
  for (absl::string_view agent : kPreviewAgents) {
    if (absl::StrContains(lower, absl::AsciiStrToLower(agent))) {
      return true;
    }
  }
  return false;
}

absl::StatusOr<std::unique_ptr<UapSpiderRules>> UapSpiderRules::Load(const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot read uap-core's regexes from ", path, ": ", e.what()));
  }
  YAML::Node devices = root["device_parsers"];
  if (!devices.IsSequence() || devices.size() == 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": no device_parsers list"));
  }
  auto rules = std::unique_ptr<UapSpiderRules>(new UapSpiderRules());
  for (size_t i = 0; i < devices.size(); ++i) {
    const YAML::Node& d = devices[i];
    if (!d["regex"] || !d["regex"].IsScalar()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": device parser ", i, " has no regex"));
    }
    const std::string regex = d["regex"].as<std::string>();
    RE2::Options options;
    options.set_log_errors(false);
    if (d["regex_flag"] && d["regex_flag"].as<std::string>() == "i") {
      options.set_case_sensitive(false);
    }
    auto re = std::make_unique<RE2>(regex, options);
    if (!re->ok()) {
      rules->skipped_.push_back({static_cast<int>(i), regex, re->error()});
      KURT_LOG(kWarn, "uap-core device parser skipped: RE2 cannot compile it",
               {"index", static_cast<int64_t>(i)}, {"error", re->error()});
      continue;
    }
    Parser parser;
    parser.re = std::move(re);
    if (d["device_replacement"]) {
      parser.replacement = d["device_replacement"].as<std::string>();
      if (absl::StrContains(parser.replacement, '$')) {
        parser.family = Family::kComputed;
      } else {
        parser.family = absl::StripAsciiWhitespace(parser.replacement) == kSpider
                            ? Family::kSpider
                            : Family::kNotSpider;
      }
    } else {
      parser.family = Family::kComputed;
    }
    rules->parsers_.push_back(std::move(parser));
  }
  return rules;
}

bool UapSpiderRules::IsSpider(absl::string_view user_agent_view) const {
  const re2::StringPiece user_agent(user_agent_view.data(), user_agent_view.size());
  for (const Parser& p : parsers_) {
    if (p.family != Family::kComputed) {
      if (RE2::PartialMatch(user_agent, *p.re)) {
        return p.family == Family::kSpider;
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
    return absl::StripAsciiWhitespace(family) == kSpider;
  }
  return false;
}

BotClassifier::BotClassifier(const UapSpiderRules* spiders, size_t max_entries)
    : spiders_(spiders), max_entries_(std::max<size_t>(1, max_entries)) {}

bool BotClassifier::Classify(absl::string_view user_agent) const {
  return IsPreviewAgent(user_agent) || (spiders_ != nullptr && spiders_->IsSpider(user_agent));
}

bool BotClassifier::IsBot(absl::string_view user_agent, bool head) {
  if (head) {
    return true;
  }
  if (auto it = index_.find(user_agent); it != index_.end()) {
    ++hits_;
    lru_.splice(lru_.begin(), lru_, it->second);
    return it->second->second;
  }
  ++misses_;
  const bool bot = Classify(user_agent);
  if (lru_.size() >= max_entries_) {
    index_.erase(lru_.back().first);
    lru_.pop_back();
  }
  lru_.emplace_front(std::string(user_agent), bot);
  index_.emplace(lru_.front().first, lru_.begin());
  return bot;
}

}  // namespace kurt::analytics
