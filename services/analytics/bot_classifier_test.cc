// The bot rules against the real uap-core regexes (Debian's uap-core, which tools/lib.sh
// installs), and what a classification costs with and without the cache.
#include "services/analytics/bot_classifier.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "services/common/timing_testing.h"

namespace kurt::analytics {
namespace {

constexpr char kRegexes[] = "/usr/share/uap-core/regexes.yaml";

constexpr char kChrome[] =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36";
constexpr char kIphoneSafari[] =
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.1 Mobile/15E148 Safari/604.1";
constexpr char kAndroidFirefox[] =
    "Mozilla/5.0 (Android 14; Mobile; rv:121.0) Gecko/121.0 Firefox/121.0";
constexpr char kGooglebot[] =
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
constexpr char kGooglebotSmartphone[] =
    "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like "
    "Gecko) Chrome/120.0.6099.129 Mobile Safari/537.36 (compatible; Googlebot/2.1; "
    "+http://www.google.com/bot.html)";
constexpr char kBingbot[] =
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)";

class BotClassifierTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto loaded = user_agent::UapRegexes::Load(kRegexes);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    rules_ = loaded->release();
  }
  static void TearDownTestSuite() {
    delete rules_;
    rules_ = nullptr;
  }
  static user_agent::UapRegexes* rules_;
};
user_agent::UapRegexes* BotClassifierTest::rules_ = nullptr;

TEST_F(BotClassifierTest, CompilesUapCoresParsersAndSaysWhichRe2Refuses) {
  // uap-core 0.16 (bookworm) has 640 device parsers; RE2 refuses those that use what only PCRE
  // has. Each refused one is listed so that a new uap-core version shows what changed.
  for (const user_agent::UapRegexes::Skipped& s : rules_->skipped()) {
    std::printf("skipped %s[%d]: %s (%s)\n", s.list.c_str(), s.index, s.regex.c_str(),
                s.error.c_str());
  }
  std::printf("parsers: %zu device and %zu os compiled, %zu skipped\n", rules_->device_parsers(),
              rules_->os_parsers(), rules_->skipped().size());
  EXPECT_GT(rules_->device_parsers(), 500u);
  EXPECT_GT(rules_->os_parsers(), 100u);
  EXPECT_EQ(rules_->skipped().size(), 0u);
}

TEST_F(BotClassifierTest, CrawlersAreSpidersAndBrowsersAreNot) {
  EXPECT_TRUE(rules_->IsSpider(kGooglebot));
  EXPECT_TRUE(rules_->IsSpider(kGooglebotSmartphone));
  EXPECT_TRUE(rules_->IsSpider(kBingbot));
  EXPECT_TRUE(rules_->IsSpider("Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)"));
  EXPECT_FALSE(rules_->IsSpider(kChrome));
  EXPECT_FALSE(rules_->IsSpider(kIphoneSafari));
  EXPECT_FALSE(rules_->IsSpider(kAndroidFirefox));
  EXPECT_FALSE(rules_->IsSpider(""));
}

TEST_F(BotClassifierTest, EveryKnownPreviewAgentIsABot) {
  // What each fetcher sends (as published by its maker or seen in access logs).
  const std::string facebook_safari = absl::StrCat(
      "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 (KHTML, like Gecko) ",
      "Version/9.0.1 Safari/601.2.4 facebookexternalhit/1.1 Facebot Twitterbot/1.0");
  const std::string applebot = absl::StrCat(
      "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) ",
      "Version/17.0 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)");
  const std::string microsoft_preview = absl::StrCat(
      "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) ",
      "Chrome/51.0.2704.103 Safari/537.36 MicrosoftPreview/2.0 +https://aka.ms/MicrosoftPreview");
  const std::string google_renderer = absl::StrCat(
      "Mozilla/5.0 (Linux; Android 11) Google-PageRenderer Google (+https://developers.google.com/",
      "+/web/snippet/)");
  const std::vector<std::string> previews = {
      "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
      "Slack-ImgProxy (+https://api.slack.com/robots)",
      "Twitterbot/1.0",
      "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
      "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
      "TelegramBot (like TwitterBot)",
      "WhatsApp/2.23.20.0 A",
      "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
      "Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5",
      "Iframely/1.3.1 (+https://iframely.com/docs/about)",
      "Mozilla/5.0 (compatible; Embedly/0.2; +http://support.embed.ly/)",
      "Mozilla/5.0 (compatible; Pinterestbot/1.0; +http://www.pinterest.com/bot.html)",
      facebook_safari,
      applebot,
      "http.rb/5.1.1 (Mastodon/4.2.1; +https://mastodon.social/)",
      "Mozilla/5.0 (compatible; redditbot/1.0; +http://www.reddit.com/feedback)",
      microsoft_preview,
      "Mozilla/5.0 (compatible; Bluesky Cardyb/1.1; +mailto:support@bsky.app)",
      "Mozilla/5.0 (compatible; vkShare; +http://vk.com/dev/Share)",
      "bitlybot/3.0 (+http://bit.ly/)",
      google_renderer,
  };
  BotClassifier classifier(rules_);
  for (const std::string& ua : previews) {
    EXPECT_TRUE(user_agent::IsPreviewAgent(ua)) << ua;
    EXPECT_TRUE(classifier.IsBot(ua, false)) << ua;
  }
  // Every entry of the list is matched by itself, whatever its case.
  for (absl::string_view agent : user_agent::kPreviewAgents) {
    EXPECT_TRUE(classifier.IsBot(absl::StrCat("Mozilla/5.0 (", agent, ")"), false)) << agent;
  }
}

TEST_F(BotClassifierTest, PeopleAreNotBotsUnlessTheyAskWithHead) {
  BotClassifier classifier(rules_);
  EXPECT_TRUE(classifier.IsBot(kGooglebot, false));
  for (const char* ua : {kChrome, kIphoneSafari, kAndroidFirefox}) {
    EXPECT_FALSE(classifier.IsBot(ua, false)) << ua;
    EXPECT_TRUE(classifier.IsBot(ua, true)) << ua;
  }
  // A missing User-Agent is not by itself a bot's (scripts and privacy tools send none).
  EXPECT_FALSE(classifier.IsBot("", false));
  EXPECT_TRUE(classifier.IsBot("", true));
}

TEST_F(BotClassifierTest, WithoutUapCoreOnlyPreviewAgentsAndHeadAreBots) {
  BotClassifier classifier(nullptr);
  EXPECT_FALSE(classifier.IsBot(kGooglebot, false));
  EXPECT_TRUE(classifier.IsBot("Twitterbot/1.0", false));
  EXPECT_TRUE(classifier.IsBot(kChrome, true));
}

TEST_F(BotClassifierTest, TheCacheIsABoundedLruThatKeepsTheAnswers) {
  BotClassifier classifier(rules_, 2);
  EXPECT_TRUE(classifier.IsBot(kGooglebot, false));      // miss
  EXPECT_FALSE(classifier.IsBot(kChrome, false));        // miss
  EXPECT_TRUE(classifier.IsBot(kGooglebot, false));      // hit; Chrome is now the oldest
  EXPECT_FALSE(classifier.IsBot(kIphoneSafari, false));  // miss; evicts Chrome
  EXPECT_EQ(classifier.hits(), 1);
  EXPECT_EQ(classifier.misses(), 3);
  EXPECT_TRUE(classifier.IsBot(kGooglebot, false));  // still there
  EXPECT_EQ(classifier.hits(), 2);
  EXPECT_FALSE(classifier.IsBot(kChrome, false));  // evicted: a miss again
  EXPECT_EQ(classifier.misses(), 4);
  // HEAD needs no cache.
  EXPECT_TRUE(classifier.IsBot("anything", true));
  EXPECT_EQ(classifier.hits() + classifier.misses(), 6);
}

TEST_F(BotClassifierTest, ACachedAgentCostsLittleAndANewOneIsBounded) {
  // A miss walks uap-core's device parsers (a browser's agent goes through all of them, since
  // none matches it early); a hit is a hash lookup and a list splice.
  const std::vector<std::string> agents = {kChrome, kIphoneSafari, kAndroidFirefox, kGooglebot,
                                           kBingbot};
  int sink = 0;
  const double miss_ns = timing_testing::NanosPerCall(200, [&](int i) {
    BotClassifier fresh(rules_, 4);
    // Distinct strings: every call is a miss.
    sink += fresh.IsBot(absl::StrCat(agents[i % agents.size()], " ", i), false);
  });
  BotClassifier classifier(rules_);
  for (const std::string& a : agents) {
    classifier.IsBot(a, false);
  }
  const double hit_ns = timing_testing::NanosPerCall(
      200000, [&](int i) { sink += classifier.IsBot(agents[i % agents.size()], false); });
  std::printf("bot classification: %.1f us per new agent (cache miss), %.0f ns per cached one\n",
              miss_ns / 1000, hit_ns);
  EXPECT_GT(sink, 0);
  EXPECT_LT(hit_ns, 2000.0);
  EXPECT_LT(miss_ns, 20e6);  // 20 ms: a guard against a pathological regex, not a target
}

}  // namespace
}  // namespace kurt::analytics
