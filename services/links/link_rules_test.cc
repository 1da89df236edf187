#include "services/links/link_rules.h"

#include <set>

#include "gtest/gtest.h"

namespace kurt::links {
namespace {

TEST(TargetUrlTest, AcceptsHttpAndHttpsUrls) {
  for (const char* ok : {"http://example.com", "https://example.com/a/b?c=d#e",
                         "HTTPS://EXAMPLE.COM:8443/x", "http://[::1]:8080/", "https://a.b/%20"}) {
    EXPECT_TRUE(ValidateTargetUrl(ok).ok()) << ok;
  }
}

TEST(TargetUrlTest, RejectsDangerousOrMalformedUrlsNamingTheField) {
  for (const char* bad :
       {"", "javascript:alert(1)", "data:text/html,hi", "ftp://example.com", "example.com",
        "//example.com", "http://", "http://user:pw@example.com/", "http://a@b",
        "http://example.com:0/", "http://example.com:99999/", "http://example.com:x/",
        "http://exa mple.com", "http://example.com/\n", "http://\xc3\xa9.com", "http:///path"}) {
    absl::Status s = ValidateTargetUrl(bad);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(s.message().find("target_url"), 0u) << s;
  }
  EXPECT_FALSE(ValidateTargetUrl("http://a.b/" + std::string(2048, 'x')).ok());
  EXPECT_TRUE(ValidateTargetUrl("http://a.b/" + std::string(2048 - 11, 'x')).ok());
}

TEST(AliasTest, AcceptsTheDocumentedAlphabetAndLength) {
  EXPECT_TRUE(ValidateAlias("abc").ok());
  EXPECT_TRUE(ValidateAlias("My-Link_2026").ok());
  EXPECT_TRUE(ValidateAlias(std::string(64, 'a')).ok());
  EXPECT_TRUE(ValidateAlias("vx1").ok());
}

TEST(AliasTest, RejectsBadCharactersLengthsAndReservedWords) {
  for (const char* bad : {"ab", "a/b", "a.b", "a b", "héllo", "v1", "V2", "v10", "healthz",
                          "Metrics", "readyz", "api"}) {
    absl::Status s = ValidateAlias(bad);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(s.message().find("alias"), 0u) << s;
  }
  EXPECT_FALSE(ValidateAlias(std::string(65, 'a')).ok());
}

TEST(RandomCodeTest, IsUrlSafeAndVaried) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string c = RandomCode();
    EXPECT_EQ(c.size(), kRandomCodeLength);
    EXPECT_TRUE(IsWellFormedCode(c)) << c;
    seen.insert(c);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

}  // namespace
}  // namespace kurt::links
