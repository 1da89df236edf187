#include "platform/core/text.h"

#include <string>

#include "gtest/gtest.h"

namespace kurt::platform {
namespace {

TEST(Utf8LengthTest, CountsCharactersNotBytes) {
  EXPECT_EQ(Utf8Length(""), 0u);
  EXPECT_EQ(Utf8Length("abc"), 3u);
  EXPECT_EQ(Utf8Length("\xC3\xA9t\xC3\xA9"), 3u);             // "été"
  EXPECT_EQ(Utf8Length("\xE6\x97\xA5\xF0\x9F\x98\x80"), 2u);  // a CJK character, an emoji
}

TEST(HasControlCharacterTest, TheValidationNamesTheField) {
  EXPECT_TRUE(ValidateNoControlCharacter("caf\xc3\xa9 ok", "name").ok());
  absl::Status s = ValidateNoControlCharacter("two\nlines", "query");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "query: must not hold control characters");
}

TEST(HasControlCharacterTest, FindsAsciiControlsAnywhereAndNothingElse) {
  EXPECT_FALSE(HasControlCharacter(""));
  EXPECT_FALSE(HasControlCharacter("Acme, Inc. ~ caf\xc3\xa9 \xf0\x9f\x98\x80"));
  EXPECT_TRUE(HasControlCharacter(std::string("\0Q", 2)));  // what PostgreSQL's text refuses
  EXPECT_TRUE(HasControlCharacter("two\nlines"));
  EXPECT_TRUE(HasControlCharacter("tab\t"));
  EXPECT_TRUE(HasControlCharacter("\x1f"));
  EXPECT_TRUE(HasControlCharacter("del\x7f"));
  EXPECT_FALSE(HasControlCharacter("\xc2\x80"));  // U+0080: a C1 control, outside ASCII's
}

TEST(IsValidUtf8Test, AcceptsWellFormedText) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));  // é € 😀
  EXPECT_TRUE(IsValidUtf8("\xf4\x8f\xbf\xbf"));                           // U+10FFFF
}

TEST(IsValidUtf8Test, RefusesWhatPostgresAndProtobufRefuse) {
  EXPECT_FALSE(IsValidUtf8("\xff"));              // never in UTF-8
  EXPECT_FALSE(IsValidUtf8("\x80"));              // a stray continuation byte
  EXPECT_FALSE(IsValidUtf8("caf\xc3"));           // cut short
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));          // overlong "/"
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // a surrogate
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // past U+10FFFF
  EXPECT_FALSE(IsValidUtf8(std::string("ok\xe2\x82", 4)));
}

TEST(AppendJsonEscapedTest, EscapesQuotesBackslashesAndControlsAndKeepsUtf8) {
  std::string out = "x";
  AppendJsonEscaped(std::string("a\"b\\c\n\r\t\x01\x1f\0z \xc3\xa4", 15), &out);
  EXPECT_EQ(out, std::string("xa\\\"b\\\\c\\n\\r\\t\\u0001\\u001f\\u0000z \xc3\xa4"));
}

// A request body with bytes that are not UTF-8 is quoted in the edge's 400: the JSON must stay
// valid UTF-8, so each such byte becomes \ufffd and well-formed characters around it survive.
TEST(AppendJsonEscapedTest, ReplacesBytesThatAreNotUtf8) {
  std::string out;
  AppendJsonEscaped(
      std::string("a\xff b\xc3\xa4 \xe2\x82 \xed\xa0\x80 \xc0\xaf \xf0\x9f\x98\x80 \x80z"), &out);
  EXPECT_EQ(out,
            "a\\ufffd b\xc3\xa4 \\ufffd\\ufffd \\ufffd\\ufffd\\ufffd \\ufffd\\ufffd "
            "\xf0\x9f\x98\x80 \\ufffdz");
  EXPECT_TRUE(IsValidUtf8(out));
}

}  // namespace
}  // namespace kurt::platform
