// A link's redirect rules (docs/links.md): ordered (conditions, target) pairs by device kind,
// operating system, browser language and country; the first rule whose conditions all hold for
// the visitor gives the redirect's target. Checking what the API gives, choosing a rule, and the
// rules' compact form in the redirect's Redis record. No I/O.
//
// Choosing costs nothing for a link without rules (Resolve does not get here), and for a link with
// rules only what its conditions ask: the User-Agent is classified only for a device or os
// condition (through a shared cache), the address looked up only for a country condition.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "kurt/links/v1/links.pb.h"
#include "services/common/user_agent.h"

namespace kurt::links {

class CountryLookup;

inline constexpr size_t kMaxRedirectRules = 10;
inline constexpr size_t kMaxRuleConditions = 5;

struct RuleCondition {
  enum class Kind : uint8_t { kDevice, kOs, kLanguage, kCountry };
  Kind kind = Kind::kDevice;
  // As the API spells it: device and os names (user_agent::DeviceName, OsName), a language tag as
  // given, a country in upper case.
  std::string value;

  bool operator==(const RuleCondition&) const = default;
};

struct RedirectRule {
  std::vector<RuleCondition> conditions;
  std::string target_url;

  bool operator==(const RedirectRule&) const = default;
};

// What the redirect knows of its visitor (views into the call's metadata).
struct Visitor {
  absl::string_view user_agent;
  absl::string_view accept_language;
  absl::string_view client_ip;
};

// Where the facts about a visitor come from; either may be null (then conditions of its kinds
// never hold). Both outlive every call.
struct VisitorSources {
  user_agent::ClassificationCache* agents = nullptr;
  const CountryLookup* countries = nullptr;
};

// The rules of a request, checked: at most kMaxRedirectRules, each with 1 to kMaxRuleConditions
// conditions of exactly one kind each, with values as the proto's field rules say, and a target as
// ValidateTargetUrl says. The error names the field, e.g. "redirect_rules[1].conditions[0].os".
absl::StatusOr<std::vector<RedirectRule>> RulesFromProto(
    const google::protobuf::RepeatedPtrField<v1::RedirectRule>& rules,
    absl::string_view field = "redirect_rules");
void RulesToProto(const std::vector<RedirectRule>& rules,
                  google::protobuf::RepeatedPtrField<v1::RedirectRule>* out);

// The index of the first rule whose conditions all hold for `visitor`; nullopt when none does.
std::optional<size_t> ChooseRule(const std::vector<RedirectRule>& rules, const Visitor& visitor,
                                 const VisitorSources& sources);

// Whether `accept_language` (an Accept-Language header) accepts `tag` (a rule's language): one of
// its languages with a q above 0 is `tag`, or begins with `tag` and a '-', compared without case.
// "*" accepts nothing in particular. Malformed entries are skipped.
bool AcceptsLanguage(absl::string_view accept_language, absl::string_view tag);

// The rules as one string for the redirect's Redis record, and back (nullopt: malformed).
// Per rule: "<conditions>|<target length>|<target>", conditions as "d=mobile,l=fr,..." (values
// hold no ',', '|' nor '=').
std::string EncodeRules(const std::vector<RedirectRule>& rules);
std::optional<std::vector<RedirectRule>> DecodeRules(absl::string_view data, size_t count);

}  // namespace kurt::links
