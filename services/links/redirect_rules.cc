#include "services/links/redirect_rules.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "services/common/mesh.h"
#include "services/links/country_lookup.h"
#include "services/links/link_rules.h"

namespace kurt::links {
namespace {

using Kind = RuleCondition::Kind;
using user_agent::Device;
using user_agent::Os;

constexpr Device kDevices[] = {Device::kMobile, Device::kTablet, Device::kDesktop, Device::kBot};
constexpr Os kOses[] = {Os::kAndroid, Os::kIos,   Os::kWindows,
                        Os::kMacos,   Os::kLinux, Os::kChromeos};

// The letters of the kinds in the Redis record.
constexpr char kKindLetters[] = {'d', 'o', 'l', 'c'};

bool AllOf(absl::string_view s, size_t min, size_t max, bool (*ok)(unsigned char)) {
  return s.size() >= min && s.size() <= max && std::all_of(s.begin(), s.end(), [ok](char c) {
           return ok(static_cast<unsigned char>(c));
         });
}

bool IsAlpha(unsigned char c) { return absl::ascii_isalpha(c); }
bool IsAlnum(unsigned char c) { return absl::ascii_isalnum(c); }
bool IsUpper(unsigned char c) { return c >= 'A' && c <= 'Z'; }

// [A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})?, the proto's pattern.
bool IsLanguageTag(absl::string_view tag) {
  const size_t dash = tag.find('-');
  if (dash == absl::string_view::npos) {
    return AllOf(tag, 2, 3, IsAlpha);
  }
  return AllOf(tag.substr(0, dash), 2, 3, IsAlpha) && AllOf(tag.substr(dash + 1), 2, 8, IsAlnum);
}

template <typename T, size_t N>
bool Named(const T (&values)[N], absl::string_view (*name)(T), absl::string_view value) {
  return std::any_of(std::begin(values), std::end(values), [&](T v) { return name(v) == value; });
}

absl::StatusOr<RuleCondition> ConditionFromProto(const v1::RedirectCondition& c,
                                                 const std::string& field) {
  auto bad = [&](absl::string_view name, absl::string_view what, absl::string_view value) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ".", name, ": must be ", what, ", not '", value, "'"));
  };
  switch (c.condition_case()) {
    case v1::RedirectCondition::kDevice:
      if (!Named(kDevices, user_agent::DeviceName, c.device())) {
        return bad("device", "mobile, tablet, desktop or bot", c.device());
      }
      return RuleCondition{Kind::kDevice, c.device()};
    case v1::RedirectCondition::kOs:
      if (!Named(kOses, user_agent::OsName, c.os())) {
        return bad("os", "android, ios, windows, macos, linux or chromeos", c.os());
      }
      return RuleCondition{Kind::kOs, c.os()};
    case v1::RedirectCondition::kLanguage:
      if (!IsLanguageTag(c.language())) {
        return bad("language", "a language tag such as fr or pt-BR", c.language());
      }
      return RuleCondition{Kind::kLanguage, c.language()};
    case v1::RedirectCondition::kCountry:
      if (!AllOf(c.country(), 2, 2, IsUpper)) {
        return bad("country", "an ISO 3166-1 alpha-2 code in upper case such as FR", c.country());
      }
      return RuleCondition{Kind::kCountry, c.country()};
    case v1::RedirectCondition::CONDITION_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError(
      absl::StrCat(field, ": give one of device, os, language or country"));
}

}  // namespace

absl::StatusOr<std::vector<RedirectRule>> RulesFromProto(
    const google::protobuf::RepeatedPtrField<v1::RedirectRule>& rules, absl::string_view field) {
  if (static_cast<size_t>(rules.size()) > kMaxRedirectRules) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": at most ", kMaxRedirectRules, " rules, not ", rules.size()));
  }
  std::vector<RedirectRule> out;
  out.reserve(rules.size());
  for (int i = 0; i < rules.size(); ++i) {
    const v1::RedirectRule& given = rules[i];
    const std::string at = absl::StrCat(field, "[", i, "]");
    if (given.conditions().empty() ||
        static_cast<size_t>(given.conditions_size()) > kMaxRuleConditions) {
      return absl::InvalidArgumentError(absl::StrCat(at, ".conditions: 1 to ", kMaxRuleConditions,
                                                     " conditions, not ", given.conditions_size()));
    }
    RedirectRule rule;
    for (int j = 0; j < given.conditions_size(); ++j) {
      absl::StatusOr<RuleCondition> c =
          ConditionFromProto(given.conditions(j), absl::StrCat(at, ".conditions[", j, "]"));
      if (!c.ok()) {
        return c.status();
      }
      rule.conditions.push_back(*std::move(c));
    }
    if (absl::Status s = ValidateTargetUrl(given.target_url(), absl::StrCat(at, ".target_url"));
        !s.ok()) {
      return s;
    }
    rule.target_url = given.target_url();
    out.push_back(std::move(rule));
  }
  return out;
}

void RulesToProto(const std::vector<RedirectRule>& rules,
                  google::protobuf::RepeatedPtrField<v1::RedirectRule>* out) {
  for (const RedirectRule& rule : rules) {
    v1::RedirectRule* r = out->Add();
    r->set_target_url(rule.target_url);
    for (const RuleCondition& c : rule.conditions) {
      v1::RedirectCondition* p = r->add_conditions();
      switch (c.kind) {
        case Kind::kDevice:
          p->set_device(c.value);
          break;
        case Kind::kOs:
          p->set_os(c.value);
          break;
        case Kind::kLanguage:
          p->set_language(c.value);
          break;
        case Kind::kCountry:
          p->set_country(c.value);
          break;
      }
    }
  }
}

bool AcceptsLanguage(absl::string_view accept_language, absl::string_view tag) {
  accept_language = accept_language.substr(0, mesh::kMaxForwardedAcceptLanguage);
  for (absl::string_view entry : absl::StrSplit(accept_language, ',')) {
    const size_t semicolon = entry.find(';');
    const absl::string_view language = absl::StripAsciiWhitespace(entry.substr(0, semicolon));
    if (language.size() < tag.size() ||
        !absl::EqualsIgnoreCase(language.substr(0, tag.size()), tag) ||
        (language.size() > tag.size() && language[tag.size()] != '-')) {
      continue;
    }
    // RFC 9110 12.4.2: q=0 means "not acceptable"; a weight that is no number makes the entry
    // malformed, and it is skipped.
    bool acceptable = true;
    const absl::string_view params =
        semicolon == absl::string_view::npos ? absl::string_view() : entry.substr(semicolon + 1);
    for (absl::string_view param : absl::StrSplit(params, ';', absl::SkipEmpty())) {
      param = absl::StripAsciiWhitespace(param);
      if (param.size() >= 2 && (param[0] == 'q' || param[0] == 'Q') && param[1] == '=') {
        double q = 0;
        acceptable = absl::SimpleAtod(param.substr(2), &q) && q > 0 && q <= 1;
      }
    }
    if (acceptable) {
      return true;
    }
  }
  return false;
}

std::optional<size_t> ChooseRule(const std::vector<RedirectRule>& rules, const Visitor& visitor,
                                 const VisitorSources& sources) {
  // Each fact is found once, and only when a condition asks for it.
  std::optional<user_agent::Classification> agent;
  std::optional<absl::string_view> country;
  auto classified = [&]() -> const user_agent::Classification& {
    if (!agent) {
      agent = sources.agents != nullptr && !visitor.user_agent.empty()
                  ? sources.agents->Get(visitor.user_agent)
                  : user_agent::Classification{};
    }
    return *agent;
  };
  auto holds = [&](const RuleCondition& c) {
    switch (c.kind) {
      case Kind::kDevice:
        return user_agent::DeviceName(classified().device) == c.value;
      case Kind::kOs:
        return user_agent::OsName(classified().os) == c.value;
      case Kind::kLanguage:
        return AcceptsLanguage(visitor.accept_language, c.value);
      case Kind::kCountry:
        if (!country) {
          country = sources.countries != nullptr ? sources.countries->Lookup(visitor.client_ip)
                                                 : absl::string_view();
        }
        return *country == c.value;
    }
    return false;
  };
  for (size_t i = 0; i < rules.size(); ++i) {
    if (std::all_of(rules[i].conditions.begin(), rules[i].conditions.end(), holds)) {
      return i;
    }
  }
  return std::nullopt;
}

std::string EncodeRules(const std::vector<RedirectRule>& rules) {
  std::string out;
  for (const RedirectRule& rule : rules) {
    for (size_t j = 0; j < rule.conditions.size(); ++j) {
      const RuleCondition& c = rule.conditions[j];
      absl::StrAppend(&out, j == 0 ? "" : ",",
                      absl::string_view(&kKindLetters[static_cast<int>(c.kind)], 1), "=", c.value);
    }
    absl::StrAppend(&out, "|", rule.target_url.size(), "|", rule.target_url);
  }
  return out;
}

std::optional<std::vector<RedirectRule>> DecodeRules(absl::string_view data, size_t count) {
  std::vector<RedirectRule> rules(count);
  for (RedirectRule& rule : rules) {
    const size_t bar = data.find('|');
    const size_t bar2 = bar == absl::string_view::npos ? bar : data.find('|', bar + 1);
    size_t length = 0;
    if (bar2 == absl::string_view::npos ||
        !absl::SimpleAtoi(data.substr(bar + 1, bar2 - bar - 1), &length) ||
        length > data.size() - bar2 - 1) {
      return std::nullopt;
    }
    for (absl::string_view c : absl::StrSplit(data.substr(0, bar), ',')) {
      const char* letter =
          std::find(std::begin(kKindLetters), std::end(kKindLetters), c.empty() ? '\0' : c[0]);
      if (c.size() < 3 || c[1] != '=' || letter == std::end(kKindLetters)) {
        return std::nullopt;
      }
      rule.conditions.push_back(
          RuleCondition{static_cast<Kind>(letter - kKindLetters), std::string(c.substr(2))});
    }
    rule.target_url = std::string(data.substr(bar2 + 1, length));
    data.remove_prefix(bar2 + 1 + length);
  }
  if (!data.empty()) {
    return std::nullopt;
  }
  return rules;
}

}  // namespace kurt::links
