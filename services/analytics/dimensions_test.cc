#include "services/analytics/dimensions.h"

#include "gtest/gtest.h"

namespace kurt::analytics {
namespace {

struct Case {
  const char* ua;
  AgentFamily family;
};

TEST(ClassifyUserAgentTest, RealWorldAgents) {
  const Case cases[] = {
      // Browsers.
      {"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
       "Chrome/120.0.0.0 Safari/537.36",
       AgentFamily::kChrome},
      {"Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
       "Chrome/120.0.0.0 Mobile Safari/537.36",
       AgentFamily::kChrome},
      {"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
       "Gecko) CriOS/120.0.6099.119 Mobile/15E148 Safari/604.1",
       AgentFamily::kChrome},
      {"Mozilla/5.0 (Linux; Android 13; SM-S901B) AppleWebKit/537.36 (KHTML, like Gecko) "
       "SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
       AgentFamily::kChrome},
      {"Mozilla/5.0 (Linux; Android 9; Cubot X18) AppleWebKit/537.36 (KHTML, like Gecko) "
       "Chrome/119.0 Mobile Safari/537.36",
       AgentFamily::kChrome},
      {"Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
       AgentFamily::kFirefox},
      {"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
       "Gecko) FxiOS/121.0 Mobile/15E148 Safari/605.1.15",
       AgentFamily::kFirefox},
      {"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
       "Version/17.1 Safari/605.1.15",
       AgentFamily::kSafari},
      {"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
       "Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
       AgentFamily::kSafari},
      // An in-app WebView on iOS: no Safari token, still WebKit on an iPhone.
      {"Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
       "Gecko) Mobile/15E148",
       AgentFamily::kSafari},
      {"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
       "Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91",
       AgentFamily::kEdge},
      {"Mozilla/5.0 (Linux; Android 10; HD1913) AppleWebKit/537.36 (KHTML, like Gecko) "
       "Chrome/120.0 Mobile Safari/537.36 EdgA/120.0.2210.115",
       AgentFamily::kEdge},
      {"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
       "Chrome/120.0.0.0 Safari/537.36 OPR/106.0.0.0",
       AgentFamily::kOpera},
      {"Opera/9.80 (Windows NT 6.1; WOW64) Presto/2.12.388 Version/12.18", AgentFamily::kOpera},
      // Bots, including those that pose as a browser.
      {"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
       AgentFamily::kBot},
      {"Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Googlebot/2.1; "
       "+http://www.google.com/bot.html) Chrome/120.0.6099.129 Safari/537.36",
       AgentFamily::kBot},
      {"Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
       AgentFamily::kBot},
      {"Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", AgentFamily::kBot},
      {"Twitterbot/1.0", AgentFamily::kBot},
      {"facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
       AgentFamily::kBot},
      {"Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
       AgentFamily::kBot},
      {"Mozilla/5.0 (compatible; Yahoo! Slurp; http://help.yahoo.com/help/us/ysearch/slurp)",
       AgentFamily::kBot},
      {"WhatsApp/2.23.20.0", AgentFamily::kBot},
      {"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
       "HeadlessChrome/120.0.0.0 Safari/537.36",
       AgentFamily::kBot},
      {"Mozilla/5.0 (compatible; DuckDuckBot-Https/1.1; https://duckduckgo.com/duckduckbot)",
       AgentFamily::kBot},
      // Tools and libraries.
      {"curl/8.4.0", AgentFamily::kHttpLibrary},
      {"Wget/1.21.3", AgentFamily::kHttpLibrary},
      {"python-requests/2.31.0", AgentFamily::kHttpLibrary},
      {"Python-urllib/3.11", AgentFamily::kHttpLibrary},
      {"Go-http-client/1.1", AgentFamily::kHttpLibrary},
      {"okhttp/4.12.0", AgentFamily::kHttpLibrary},
      {"Java/17.0.9", AgentFamily::kHttpLibrary},
      {"Apache-HttpClient/4.5.14 (Java/17.0.9)", AgentFamily::kHttpLibrary},
      {"axios/1.6.2", AgentFamily::kHttpLibrary},
      {"node-fetch/1.0 (+https://github.com/bitinn/node-fetch)", AgentFamily::kHttpLibrary},
      {"PostmanRuntime/7.36.0", AgentFamily::kHttpLibrary},
      {"HTTPie/3.2.2", AgentFamily::kHttpLibrary},
      {"libwww-perl/6.72", AgentFamily::kHttpLibrary},
      // Everything else.
      {"Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko", AgentFamily::kOther},
      {"Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 6.1)", AgentFamily::kOther},
      {"SomethingElse/1.0", AgentFamily::kOther},
      {"", AgentFamily::kOther},
      {"\x01\xff garbage \t", AgentFamily::kOther},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(AgentFamilyName(ClassifyUserAgent(c.ua)), AgentFamilyName(c.family)) << c.ua;
  }
}

TEST(ClassifyUserAgentTest, CaseDoesNotMatter) {
  EXPECT_EQ(ClassifyUserAgent("CURL/7.0"), AgentFamily::kHttpLibrary);
  EXPECT_EQ(ClassifyUserAgent("mozilla/5.0 FIREFOX/100.0"), AgentFamily::kFirefox);
  EXPECT_EQ(ClassifyUserAgent("GOOGLEBOT"), AgentFamily::kBot);
}

TEST(ClassifyUserAgentTest, VeryLongAgentsAreClassifiedByTheirStart) {
  std::string ua = "Mozilla/5.0 Firefox/121.0 " + std::string(100000, 'x');
  EXPECT_EQ(ClassifyUserAgent(ua), AgentFamily::kFirefox);
}

TEST(AgentFamilyNameTest, EveryFamilyHasADistinctName) {
  const AgentFamily all[] = {AgentFamily::kChrome,      AgentFamily::kFirefox, AgentFamily::kSafari,
                             AgentFamily::kEdge,        AgentFamily::kOpera,   AgentFamily::kBot,
                             AgentFamily::kHttpLibrary, AgentFamily::kOther};
  std::set<std::string> names;
  for (AgentFamily f : all) {
    names.insert(std::string(AgentFamilyName(f)));
  }
  EXPECT_EQ(names.size(), std::size(all));
  EXPECT_EQ(AgentFamilyName(AgentFamily::kHttpLibrary), "HTTP library");
}

TEST(ReferrerHostTest, HostOfUrls) {
  EXPECT_EQ(ReferrerHost("https://news.ycombinator.com/item?id=1"), "news.ycombinator.com");
  EXPECT_EQ(ReferrerHost("https://WWW.Google.COM/search?q=x"), "www.google.com");
  EXPECT_EQ(ReferrerHost("http://example.com"), "example.com");
  EXPECT_EQ(ReferrerHost("http://example.com:8080/a"), "example.com");
  EXPECT_EQ(ReferrerHost("http://user:pw@example.com/a"), "example.com");
  EXPECT_EQ(ReferrerHost("http://example.com./"), "example.com");
  EXPECT_EQ(ReferrerHost("https://example.com?x=1"), "example.com");
  EXPECT_EQ(ReferrerHost("https://example.com#frag"), "example.com");
  EXPECT_EQ(ReferrerHost("http://[2001:db8::1]:80/x"), "[2001:db8::1]");
  EXPECT_EQ(ReferrerHost("android-app://com.slack/"), "com.slack");
  EXPECT_EQ(ReferrerHost("  https://padded.example/  "), "padded.example");
}

TEST(ReferrerHostTest, NoReferrerIsEmpty) {
  EXPECT_EQ(ReferrerHost(""), "");
  EXPECT_EQ(ReferrerHost("   "), "");
}

TEST(ReferrerHostTest, NonUrlsAreUnknown) {
  for (const char* r : {"not a url", "example.com/path", "/relative", "https://", "https:///x",
                        "1http://x.example/", "ht tp://x.example/", "mailto:someone@example.com",
                        "http://exa mple.com/", "http://[::1/", "http://ex\"ample.com/"}) {
    EXPECT_EQ(ReferrerHost(r), kUnknownReferrer) << r;
  }
  EXPECT_EQ(ReferrerHost("http://" + std::string(300, 'a') + ".com/"), kUnknownReferrer);
}

}  // namespace
}  // namespace kurt::analytics
