#include "services/links/password_page.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kurt::links {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(PasswordTest, FourTo128CharactersCountedAsCodePoints) {
  EXPECT_TRUE(ValidatePassword("abcd").ok());
  EXPECT_TRUE(ValidatePassword("\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9").ok());  // "éééé": 8 bytes, 4
  EXPECT_TRUE(ValidatePassword(std::string(128, 'x')).ok());
  absl::Status short_one = ValidatePassword("abc");
  EXPECT_TRUE(absl::IsInvalidArgument(short_one));
  EXPECT_THAT(short_one.message(), HasSubstr("password: must be 4 to 128 characters, not 3"));
  EXPECT_FALSE(ValidatePassword(std::string(129, 'x')).ok());
  EXPECT_FALSE(ValidatePassword("\xE9\xE9\xE9\xE9").ok());  // Latin-1, not UTF-8
  // One tried may be shorter (it is just wrong), never longer.
  EXPECT_TRUE(ValidatePassword("a", "password", 1).ok());
  EXPECT_FALSE(ValidatePassword("", "password", 1).ok());
  EXPECT_FALSE(ValidatePassword(std::string(129, 'x'), "password", 1).ok());
}

TEST(PasswordPageTest, AFormPostingBackToItsOwnUrlWithEverythingEscaped) {
  google::api::HttpBody page = PasswordPage("<b>&'\"", PasswordPageState::kAsk);
  EXPECT_EQ(page.content_type(), "text/html; charset=utf-8");
  EXPECT_THAT(page.data(), HasSubstr("&lt;b&gt;&amp;&#39;&quot;"));
  EXPECT_THAT(page.data(), Not(HasSubstr("<b>")));
  // No action: the browser posts to the page's own URL, its query string included.
  EXPECT_THAT(page.data(), HasSubstr("<form method=\"post\">"));
  EXPECT_THAT(page.data(), HasSubstr("name=\"password\" type=\"password\""));
  EXPECT_THAT(page.data(), Not(HasSubstr("Wrong password")));
  EXPECT_THAT(PasswordPage("abc", PasswordPageState::kWrong).data(), HasSubstr("Wrong password"));
}

TEST(PasswordPageTest, TooManySaysWhenAndHasNoForm) {
  google::api::HttpBody page =
      PasswordPage("abc", PasswordPageState::kTooMany, absl::Minutes(14) + absl::Seconds(1));
  EXPECT_THAT(page.data(), HasSubstr("Try again in 15 minutes"));
  EXPECT_THAT(page.data(), Not(HasSubstr("<form")));
}

}  // namespace
}  // namespace kurt::links
