#include "platform/redis/record_seal.h"

#include "gtest/gtest.h"

namespace kurt::redis {
namespace {

TEST(RecordSealTest, ASealedRecordOpensUnderItsKeyOnly) {
  RecordSeal seal("the-service-secret");
  const std::string sealed = seal.Seal("kurt:link:v1:abc", "L||https://example.com/a");
  EXPECT_EQ(seal.Open("kurt:link:v1:abc", sealed), "L||https://example.com/a");
  // Copied to another key (another code), it does not verify.
  EXPECT_EQ(seal.Open("kurt:link:v1:abd", sealed), std::nullopt);
}

TEST(RecordSealTest, ForgedChangedOrForeignRecordsDoNotOpen) {
  RecordSeal seal("the-service-secret");
  const std::string key = "kurt:apikey:kurt_abcdefgh";
  const std::string sealed = seal.Seal(key, "key-1|acct-1|hash|0");
  // What someone who can write Redis but lacks the secret might store.
  EXPECT_EQ(seal.Open(key, "key-1|acct-evil|hash|0"), std::nullopt);
  EXPECT_EQ(seal.Open(key, ""), std::nullopt);
  std::string changed = sealed;
  changed[changed.size() - 7] = 'X';  // the account id, changed after sealing
  EXPECT_EQ(seal.Open(key, changed), std::nullopt);
  std::string mac_changed = sealed;
  mac_changed[0] = mac_changed[0] == '0' ? '1' : '0';
  EXPECT_EQ(seal.Open(key, mac_changed), std::nullopt);
  // Sealed under another secret (another deployment, the development key).
  EXPECT_EQ(RecordSeal(kDevelopmentRecordSecret).Open(key, sealed), std::nullopt);
  EXPECT_EQ(seal.Open(key, RecordSeal("other").Seal(key, "key-1|acct-evil|hash|0")), std::nullopt);
}

TEST(RecordSealTest, TheKeyAndTheRecordCannotTradeBytes) {
  RecordSeal seal("s");
  // "ab" + "c" and "a" + "bc" are different pairs with the same concatenation.
  EXPECT_EQ(seal.Open("a", seal.Seal("ab", "c")), std::nullopt);
}

}  // namespace
}  // namespace kurt::redis
