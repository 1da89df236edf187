// Redirect rules against the real uap-core regexes and country tables (Debian's uap-core and
// tor-geoipdb, which tools/lib.sh installs): what real browsers' agents are classified as, how
// Accept-Language is read, which rule a visitor gets, the checks of the API's rules, the Redis
// form, and what choosing costs.
#include "services/links/redirect_rules.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "services/common/timing_testing.h"
#include "services/common/user_agent.h"
#include "services/links/country_lookup.h"
#include "services/links/visitor_sources_testing.h"

namespace kurt::links {
namespace {

using user_agent::Device;
using user_agent::Os;

constexpr char kIphone[] =
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.1 Mobile/15E148 Safari/604.1";
constexpr char kIpad[] =
    "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/16.6 Mobile/15E148 Safari/604.1";
constexpr char kAndroidPhone[] =
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.6099.144 Mobile Safari/537.36";
constexpr char kAndroidTablet[] =
    "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.6099.144 Safari/537.36";
constexpr char kWindowsChrome[] =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36";
constexpr char kMacSafari[] =
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.1 Safari/605.1.15";
constexpr char kLinuxFirefox[] =
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0";
constexpr char kChromebook[] =
    "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36";
constexpr char kGooglebot[] =
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
constexpr char kSlack[] = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)";

class RedirectRulesTest : public ::testing::Test {
 protected:
  static inline const user_agent::UapRegexes* const uap_ = visitor_testing::RealUapRegexes();
  static inline const CountryLookup* const countries_ = visitor_testing::RealCountries();

  // A rule made of conditions written "device=mobile", "language=fr"...
  static v1::RedirectRule Rule(const std::vector<std::string>& conditions,
                               const std::string& target) {
    v1::RedirectRule r;
    r.set_target_url(target);
    for (const std::string& c : conditions) {
      v1::RedirectCondition* p = r.add_conditions();
      const std::string kind = c.substr(0, c.find('='));
      const std::string value = c.substr(c.find('=') + 1);
      if (kind == "device") {
        p->set_device(value);
      } else if (kind == "os") {
        p->set_os(value);
      } else if (kind == "language") {
        p->set_language(value);
      } else if (kind == "country") {
        p->set_country(value);
      }
    }
    return r;
  }

  static std::vector<RedirectRule> Rules(const std::vector<v1::RedirectRule>& given) {
    google::protobuf::RepeatedPtrField<v1::RedirectRule> field(given.begin(), given.end());
    absl::StatusOr<std::vector<RedirectRule>> rules = RulesFromProto(field);
    EXPECT_TRUE(rules.ok()) << rules.status();
    return rules.ok() ? *rules : std::vector<RedirectRule>();
  }

  static absl::Status Check(const std::vector<v1::RedirectRule>& given) {
    google::protobuf::RepeatedPtrField<v1::RedirectRule> field(given.begin(), given.end());
    return RulesFromProto(field).status();
  }

  user_agent::ClassificationCache agents_{uap_};
  VisitorSources sources_{&agents_, countries_};
};

TEST_F(RedirectRulesTest, RealBrowsersAgentsAreClassifiedByDeviceAndOs) {
  struct Case {
    const char* agent;
    Device device;
    Os os;
  };
  const Case cases[] = {
      {kIphone, Device::kMobile, Os::kIos},
      {kIpad, Device::kTablet, Os::kIos},
      {kAndroidPhone, Device::kMobile, Os::kAndroid},
      {kAndroidTablet, Device::kTablet, Os::kAndroid},
      {kWindowsChrome, Device::kDesktop, Os::kWindows},
      {kMacSafari, Device::kDesktop, Os::kMacos},
      {kLinuxFirefox, Device::kDesktop, Os::kLinux},
      {kChromebook, Device::kDesktop, Os::kChromeos},
      {kGooglebot, Device::kBot, Os::kOther},
      {kSlack, Device::kBot, Os::kOther},
      {"curl/8.5.0", Device::kUnknown, Os::kOther},
      {"", Device::kUnknown, Os::kOther},
  };
  for (const Case& c : cases) {
    const user_agent::Classification got = agents_.Get(c.agent);
    EXPECT_EQ(user_agent::DeviceName(got.device), user_agent::DeviceName(c.device)) << c.agent;
    EXPECT_EQ(user_agent::OsName(got.os), user_agent::OsName(c.os)) << c.agent;
  }
  // Asked again, each is a cache hit with the same answer.
  const user_agent::ClassificationCache::Counts before = agents_.counts();
  EXPECT_EQ(agents_.Get(kIpad).device, Device::kTablet);
  EXPECT_EQ(agents_.counts().misses, before.misses);
  EXPECT_EQ(agents_.counts().hits, before.hits + 1);
}

TEST_F(RedirectRulesTest, AcceptLanguageIsReadWithItsWeightsAndPrimarySubtags) {
  EXPECT_TRUE(AcceptsLanguage("fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5", "fr"));
  EXPECT_TRUE(AcceptsLanguage("fr-CH, fr;q=0.9, en;q=0.8", "en"));
  EXPECT_TRUE(AcceptsLanguage("fr-CH", "fr")) << "a primary tag matches its regional variants";
  EXPECT_TRUE(AcceptsLanguage("FR-ch", "fr-CH")) << "without case";
  EXPECT_FALSE(AcceptsLanguage("fr", "fr-CH")) << "a region asks for that region";
  EXPECT_FALSE(AcceptsLanguage("pt-PT,pt;q=0.5", "pt-BR"));
  EXPECT_TRUE(AcceptsLanguage("en-US,pt-BR;q=0.3", "pt-BR"));
  EXPECT_FALSE(AcceptsLanguage("en-US,fr;q=0", "fr")) << "q=0: not acceptable";
  EXPECT_FALSE(AcceptsLanguage("en, fr ; q=0.000", "fr"));
  EXPECT_TRUE(AcceptsLanguage("en, fr ; Q=0.001", "fr"));
  EXPECT_FALSE(AcceptsLanguage("en,fr;q=abc", "fr")) << "a malformed weight skips the entry";
  EXPECT_FALSE(AcceptsLanguage("frisian", "fr")) << "a prefix is not a subtag";
  EXPECT_FALSE(AcceptsLanguage("*", "fr"));
  EXPECT_FALSE(AcceptsLanguage("", "fr"));
  EXPECT_FALSE(AcceptsLanguage(",,;;,", "fr"));
}

TEST_F(RedirectRulesTest, TheFirstRuleWhoseConditionsAllHoldWinsAndNoneLeavesTheDefault) {
  // An address of France's in the real table.
  const std::string french = "2.4.0.1";
  ASSERT_EQ(countries_->Lookup(french), "FR");
  const std::vector<RedirectRule> rules = Rules({
      Rule({"os=ios"}, "https://a.example/"),
      Rule({"language=fr"}, "https://b.example/"),
      Rule({"country=FR", "device=desktop"}, "https://c.example/"),
      Rule({"device=bot"}, "https://d.example/"),
  });
  auto choose = [&](absl::string_view agent, absl::string_view languages,
                    absl::string_view ip) -> std::string {
    std::optional<size_t> i = ChooseRule(rules, Visitor{agent, languages, ip}, sources_);
    return i ? rules[*i].target_url : "default";
  };
  EXPECT_EQ(choose(kIphone, "fr", french), "https://a.example/") << "the first rule wins";
  EXPECT_EQ(choose(kIpad, "", ""), "https://a.example/");
  EXPECT_EQ(choose(kWindowsChrome, "fr-FR,en;q=0.5", ""), "https://b.example/");
  EXPECT_EQ(choose(kWindowsChrome, "en", french), "https://c.example/");
  EXPECT_EQ(choose(kAndroidPhone, "en", french), "default") << "country holds, device not";
  EXPECT_EQ(choose(kGooglebot, "", "127.0.0.1"), "https://d.example/");
  EXPECT_EQ(choose(kWindowsChrome, "en", "127.0.0.1"), "default");
  EXPECT_EQ(choose("", "", ""), "default") << "an unknown visitor gets the link's target";

  // Without sources, device, os and country conditions never hold; languages still do.
  EXPECT_EQ(ChooseRule(rules, Visitor{kIphone, "", french}, VisitorSources{}), std::nullopt);
  EXPECT_EQ(ChooseRule(rules, Visitor{kIphone, "fr", french}, VisitorSources{}), 1u);
}

TEST_F(RedirectRulesTest, BadRulesAreRefusedNamingTheField) {
  auto names = [](const absl::Status& s, absl::string_view field) {
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_TRUE(absl::StartsWith(s.message(), field)) << s.message() << " should name " << field;
  };
  const v1::RedirectRule ok = Rule({"device=mobile"}, "https://m.example/");
  names(Check(std::vector<v1::RedirectRule>(11, ok)), "redirect_rules: at most 10");
  EXPECT_TRUE(Check(std::vector<v1::RedirectRule>(10, ok)).ok());
  names(Check({ok, Rule({}, "https://x.example/")}), "redirect_rules[1].conditions: 1 to 5");
  names(Check({Rule(std::vector<std::string>(6, "os=ios"), "https://x.example/")}),
        "redirect_rules[0].conditions: 1 to 5");
  EXPECT_TRUE(Check({Rule(std::vector<std::string>(5, "os=ios"), "https://x.example/")}).ok());
  names(Check({ok, Rule({"os=ios", "device=phone"}, "https://x.example/")}),
        "redirect_rules[1].conditions[1].device: must be mobile, tablet, desktop or bot");
  names(Check({Rule({"os=iOS"}, "https://x.example/")}), "redirect_rules[0].conditions[0].os");
  names(Check({Rule({"language=french"}, "https://x.example/")}),
        "redirect_rules[0].conditions[0].language");
  names(Check({Rule({"language=f"}, "https://x.example/")}),
        "redirect_rules[0].conditions[0].language");
  names(Check({Rule({"country=fr"}, "https://x.example/")}),
        "redirect_rules[0].conditions[0].country");
  names(Check({Rule({"country=FRA"}, "https://x.example/")}),
        "redirect_rules[0].conditions[0].country");
  v1::RedirectRule empty_condition = ok;
  empty_condition.add_conditions();
  names(Check({empty_condition}), "redirect_rules[0].conditions[1]: give one of");
  names(Check({ok, ok, Rule({"os=ios"}, "ftp://x.example/")}), "redirect_rules[2].target_url");
  names(Check({Rule({"os=ios"}, "")}), "redirect_rules[0].target_url");
  names(Check({Rule({"os=ios"}, "https://user:pw@x.example/")}), "redirect_rules[0].target_url");
  EXPECT_TRUE(Check({Rule({"language=pt-BR", "country=BR", "os=android", "device=tablet"},
                          "https://x.example/")})
                  .ok());
}

TEST_F(RedirectRulesTest, TheRedisFormKeepsEveryRuleAndRefusesGarbage) {
  const std::vector<RedirectRule> rules = Rules({
      Rule({"os=ios", "language=pt-BR"}, "https://a.example/x|y?q=1,2"),
      Rule({"country=FR"}, "https://b.example/"),
  });
  const std::string encoded = EncodeRules(rules);
  std::optional<std::vector<RedirectRule>> back = DecodeRules(encoded, 2);
  ASSERT_TRUE(back.has_value()) << encoded;
  EXPECT_EQ(*back, rules);
  EXPECT_FALSE(DecodeRules(encoded, 3).has_value());
  EXPECT_FALSE(DecodeRules(encoded, 1).has_value()) << "trailing bytes";
  EXPECT_FALSE(DecodeRules("x=ios|5|https", 1).has_value());
  EXPECT_FALSE(DecodeRules("o=ios|500|https", 1).has_value());
  EXPECT_FALSE(DecodeRules("o=ios|-1|", 1).has_value());

  // Back to the API's form, as given.
  google::protobuf::RepeatedPtrField<v1::RedirectRule> out;
  RulesToProto(rules, &out);
  ASSERT_EQ(out.size(), 2);
  EXPECT_EQ(out[0].conditions(1).language(), "pt-BR");
  EXPECT_EQ(out[1].conditions(0).country(), "FR");
  EXPECT_EQ(out[0].target_url(), "https://a.example/x|y?q=1,2");
}

TEST_F(RedirectRulesTest, ChoosingCostsLittleOnceTheAgentIsKnown) {
  // The figures the redirect pays per call for a link with rules (reported, not a gate but for a
  // pathological bound): a device rule (a cached classification), a language rule, a country
  // rule (a lookup in memory), and all three missing before the default.
  const std::vector<RedirectRule> device = Rules({Rule({"device=mobile"}, "https://a.example/")});
  const std::vector<RedirectRule> language = Rules({Rule({"language=fr"}, "https://b.example/")});
  const std::vector<RedirectRule> country = Rules({Rule({"country=FR"}, "https://c.example/")});
  const std::vector<RedirectRule> three = Rules({
      Rule({"os=ios"}, "https://a.example/"),
      Rule({"language=fr"}, "https://b.example/"),
      Rule({"country=FR"}, "https://c.example/"),
  });
  const Visitor visitor{kWindowsChrome, "en-US,en;q=0.9,de;q=0.8", "8.8.8.8"};
  agents_.Get(kWindowsChrome);
  size_t sink = 0;
  constexpr int kCalls = 200000;
  auto cost = [&](const std::vector<RedirectRule>& rules) {
    return timing_testing::NanosPerCall(
        kCalls, [&](int) { sink += ChooseRule(rules, visitor, sources_).value_or(7); });
  };
  const double device_ns = cost(device);
  const double language_ns = cost(language);
  const double country_ns = cost(country);
  const double three_ns = cost(three);
  const double miss_us =
      timing_testing::NanosPerCall(
          100,
          [&](int i) {
            sink += agents_.Get(absl::StrCat(kWindowsChrome, " x/", i)).os == Os::kWindows;
          }) /
      1000;
  std::printf(
      "choosing a rule: device %.0f ns, language %.0f ns, country %.0f ns, three rules missed "
      "%.0f ns; a new agent's classification %.1f us\n",
      device_ns, language_ns, country_ns, three_ns, miss_us);
  EXPECT_GT(sink, 0u);
  EXPECT_LT(three_ns, 20000.0);  // a guard against a pathological path, not a target
}

}  // namespace
}  // namespace kurt::links
