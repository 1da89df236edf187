#include "services/links/link_cache.h"

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace kurt::links {
namespace {

TEST(CachedLinkTest, EncodesAndDecodesLinksAndMisses) {
  CachedLink link{true, "https://example.com/a|b", absl::FromUnixMicros(1700000000123456), {}};
  auto back = CachedLink::Decode(link.Encode());
  ASSERT_TRUE(back.has_value());
  EXPECT_TRUE(back->exists);
  EXPECT_EQ(back->target_url, "https://example.com/a|b");
  EXPECT_EQ(back->expire_time, link.expire_time);

  CachedLink forever{true, "http://x.y", std::nullopt, {}};
  EXPECT_FALSE(CachedLink::Decode(forever.Encode())->expire_time.has_value());
  EXPECT_FALSE(CachedLink::Decode(CachedLink{}.Encode())->exists);
  EXPECT_FALSE(CachedLink::Decode("garbage").has_value());
  EXPECT_FALSE(CachedLink::Decode("L|notanumber|http://x").has_value());
}

TEST(CachedLinkTest, EncodesLimitsAndKeepsTheShortFormWithoutThem) {
  CachedLink plain{true, "http://x.y", std::nullopt, {}};
  EXPECT_EQ(plain.Encode(), "L||http://x.y");

  CachedLink link{true, "https://example.com/a|b?c=1", absl::FromUnixMicros(1700000000123456), {}};
  link.limits.valid_since = absl::FromUnixMicros(1600000000000001);
  link.limits.max_clicks = 3;
  link.limits.fallback_url = "https://fallback.example/|x";
  link.limits.forward_query = true;
  auto back = CachedLink::Decode(link.Encode());
  ASSERT_TRUE(back.has_value()) << link.Encode();
  EXPECT_TRUE(back->exists);
  EXPECT_EQ(back->target_url, link.target_url);
  EXPECT_EQ(back->expire_time, link.expire_time);
  EXPECT_EQ(back->limits.valid_since, link.limits.valid_since);
  EXPECT_EQ(back->limits.max_clicks, 3);
  EXPECT_EQ(back->limits.fallback_url, link.limits.fallback_url);
  EXPECT_TRUE(back->limits.forward_query);

  // One limit alone; the others stay unset.
  CachedLink only_forward{true, "http://x.y/?a=1", std::nullopt, {}};
  only_forward.limits.forward_query = true;
  back = CachedLink::Decode(only_forward.Encode());
  ASSERT_TRUE(back.has_value());
  EXPECT_TRUE(back->limits.forward_query);
  EXPECT_FALSE(back->limits.max_clicks || back->limits.valid_since || back->limits.fallback_url ||
               back->expire_time);
  EXPECT_EQ(back->target_url, "http://x.y/?a=1");

  EXPECT_FALSE(CachedLink::Decode("X|||||-|99|http://short").has_value());
  EXPECT_FALSE(CachedLink::Decode("X|||abc|0|-|4|http").has_value());
}

TEST(CachedLinkTest, EncodesRedirectRulesInTheirOwnRecordAndStillReadsTheOldOnes) {
  CachedLink link{true, "https://example.com/a|b", absl::FromUnixMicros(1700000000123456), {}};
  link.limits.fallback_url = "https://fallback.example/|x";
  link.limits.max_clicks = 9;
  link.limits.redirect_rules = {
      RedirectRule{{{RuleCondition::Kind::kOs, "ios"}, {RuleCondition::Kind::kLanguage, "pt-BR"}},
                   "https://ios.example/|1"},
      RedirectRule{{{RuleCondition::Kind::kCountry, "FR"}}, "https://fr.example/"}};
  const std::string encoded = link.Encode();
  EXPECT_TRUE(absl::StartsWith(encoded, "R|")) << encoded;
  auto back = CachedLink::Decode(encoded);
  ASSERT_TRUE(back.has_value()) << encoded;
  EXPECT_EQ(back->target_url, link.target_url);
  EXPECT_EQ(back->expire_time, link.expire_time);
  EXPECT_EQ(back->limits.fallback_url, link.limits.fallback_url);
  EXPECT_EQ(back->limits.max_clicks, 9);
  EXPECT_EQ(back->limits.redirect_rules, link.limits.redirect_rules);

  // Rules alone, without a fallback.
  CachedLink only_rules{true, "http://x.y/", std::nullopt, {}};
  only_rules.limits.redirect_rules = {
      RedirectRule{{{RuleCondition::Kind::kDevice, "mobile"}}, "http://m.x.y/"}};
  back = CachedLink::Decode(only_rules.Encode());
  ASSERT_TRUE(back.has_value()) << only_rules.Encode();
  EXPECT_FALSE(back->limits.fallback_url.has_value());
  EXPECT_EQ(back->limits.redirect_rules, only_rules.limits.redirect_rules);
  EXPECT_EQ(back->target_url, "http://x.y/");

  // Records written before rules existed read as they did.
  back = CachedLink::Decode("X||||1|F|11|http://x.y/http://f.y/");
  ASSERT_TRUE(back.has_value());
  EXPECT_TRUE(back->limits.redirect_rules.empty());
  EXPECT_EQ(back->limits.fallback_url, "http://f.y/");
  EXPECT_TRUE(back->limits.forward_query);
  EXPECT_EQ(CachedLink::Decode("L||http://x.y")->target_url, "http://x.y");

  // A cut or padded record is a miss, never a link with half its rules.
  EXPECT_FALSE(CachedLink::Decode(encoded.substr(0, encoded.size() - 1)).has_value());
  EXPECT_FALSE(CachedLink::Decode(encoded + "x").has_value());
  EXPECT_FALSE(CachedLink::Decode("R|||||0|-|4|0|0|http").has_value());
}

TEST(LinkCacheTtlTest, JittersAroundTheTtlAndNeverOutlivesExpiry) {
  LinkCacheOptions options;
  options.ttl = absl::Seconds(100);
  options.jitter = 0.2;
  RedisLinkCache cache(nullptr, options);
  absl::Time now = absl::Now();
  CachedLink link{true, "http://x.y", std::nullopt, {}};
  absl::Duration lo = absl::InfiniteDuration(), hi = absl::ZeroDuration();
  for (int i = 0; i < 200; ++i) {
    absl::Duration ttl = cache.TtlFor(link, now);
    lo = std::min(lo, ttl);
    hi = std::max(hi, ttl);
  }
  EXPECT_GE(lo, absl::Seconds(80));
  EXPECT_LE(hi, absl::Seconds(120));
  EXPECT_GT(hi - lo, absl::Seconds(10)) << "TTLs must spread out";
  link.expire_time = now + absl::Seconds(3);
  EXPECT_LE(cache.TtlFor(link, now), absl::Seconds(3));
  EXPECT_EQ(cache.TtlFor(CachedLink{}, now), options.miss_ttl);
}

TEST(CachedLinkTest, AProtectedLinkIsMarkedSoThatNoOlderProcessServesItsTarget) {
  CachedLink link{true, "https://example.com/secret", std::nullopt, {}};
  link.limits.password_protected = true;
  const std::string encoded = link.Encode();
  EXPECT_EQ(encoded.substr(0, 2), "P|") << "none of the L, X or R forms of older processes";
  EXPECT_EQ(encoded.find("argon2"), std::string::npos);
  auto back = CachedLink::Decode(encoded);
  ASSERT_TRUE(back.has_value()) << encoded;
  EXPECT_TRUE(back->limits.password_protected);
  EXPECT_EQ(back->target_url, "https://example.com/secret");

  link.limits.max_clicks = 7;
  back = CachedLink::Decode(link.Encode());
  ASSERT_TRUE(back.has_value());
  EXPECT_TRUE(back->limits.password_protected);
  EXPECT_EQ(back->limits.max_clicks, 7);
  // Without a password, the forms are the ones older processes read.
  link.limits.password_protected = false;
  EXPECT_EQ(link.Encode().substr(0, 2), "X|");
  EXPECT_FALSE(CachedLink::Decode(link.Encode())->limits.password_protected);
}

TEST(CachedLinkTest, ALinkWithBothAPasswordAndRulesKeepsBothInOneRecord) {
  CachedLink link{true, "https://example.com/a|b", absl::FromUnixMicros(1700000000123456), {}};
  link.limits.password_protected = true;
  link.limits.fallback_url = "https://fallback.example/|x";
  link.limits.forward_query = true;
  link.limits.redirect_rules = {
      RedirectRule{{{RuleCondition::Kind::kOs, "ios"}}, "https://ios.example/|1"},
      RedirectRule{
          {{RuleCondition::Kind::kCountry, "FR"}, {RuleCondition::Kind::kDevice, "mobile"}},
          "https://fr.example/"}};
  const std::string encoded = link.Encode();
  // Not "R|": a process that knows rules but not passwords must not serve the target.
  EXPECT_TRUE(absl::StartsWith(encoded, "P|")) << encoded;
  auto back = CachedLink::Decode(encoded);
  ASSERT_TRUE(back.has_value()) << encoded;
  EXPECT_TRUE(back->limits.password_protected);
  EXPECT_EQ(back->limits.redirect_rules, link.limits.redirect_rules);
  EXPECT_EQ(back->target_url, link.target_url);
  EXPECT_EQ(back->expire_time, link.expire_time);
  EXPECT_EQ(back->limits.fallback_url, link.limits.fallback_url);
  EXPECT_TRUE(back->limits.forward_query);

  // The same record without rules (a count of 0) is a protected link without rules.
  link.limits.redirect_rules.clear();
  back = CachedLink::Decode(link.Encode());
  ASSERT_TRUE(back.has_value()) << link.Encode();
  EXPECT_TRUE(back->limits.password_protected);
  EXPECT_TRUE(back->limits.redirect_rules.empty());
  EXPECT_EQ(back->limits.fallback_url, link.limits.fallback_url);

  // Rules without a password stay "R|" and unprotected; a cut "P|" record is a miss.
  link.limits.password_protected = false;
  link.limits.redirect_rules = {
      RedirectRule{{{RuleCondition::Kind::kLanguage, "fr"}}, "http://f/"}};
  EXPECT_TRUE(absl::StartsWith(link.Encode(), "R|")) << link.Encode();
  EXPECT_FALSE(CachedLink::Decode(link.Encode())->limits.password_protected);
  EXPECT_FALSE(CachedLink::Decode(encoded.substr(0, encoded.size() - 1)).has_value());
  EXPECT_FALSE(CachedLink::Decode(encoded + "x").has_value());
}

}  // namespace
}  // namespace kurt::links
