#include "services/accounts/api_key.h"

#include <set>
#include <vector>

#include "gtest/gtest.h"

namespace kurt::accounts {
namespace {

TEST(ApiKeyTest, GeneratedKeyParsesBackAndHashesItsSecret) {
  auto key = GenerateApiKey();
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(key->full_key.size(), 5u + 12 + 1 + 64);
  auto parsed = ParseApiKey(key->full_key);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->prefix, key->prefix);
  EXPECT_EQ(Sha256Hex(parsed->secret), key->secret_hash);
  EXPECT_EQ(key->full_key.find(key->secret_hash), std::string::npos);
}

TEST(ApiKeyTest, KeysAreUnique) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    seen.insert(GenerateApiKey()->full_key);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(ApiKeyTest, MalformedKeysAreRejectedWithoutEchoingThem) {
  std::string good = GenerateApiKey()->full_key;
  std::vector<std::string> bads = {"",
                                   "kurt_",
                                   good.substr(1),
                                   good.substr(0, good.size() - 1),
                                   good + "0",
                                   "kurt_abc_def",
                                   "kurt_" + std::string(12, 'G') + "_" + std::string(64, 'a')};
  for (const std::string& bad : bads) {
    auto parsed = ParseApiKey(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    if (bad.size() > 20) {  // long enough to be a real key
      EXPECT_EQ(parsed.status().message().find(bad), std::string::npos);
    }
  }
}

TEST(ApiKeyTest, Sha256KnownAnswer) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(ApiKeyTest, ConstantTimeEquals) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abcd"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
}

}  // namespace
}  // namespace kurt::accounts
