#include "platform/redis/record_seal.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <atomic>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
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

// The seal's MAC starts each time from a prepared copy of the key's state: it must be, call after
// call, on every thread and for each of several seals, OpenSSL's one-shot HMAC-SHA256 of the
// key's length, ':', the key and the record, so that records sealed before (and by other
// replicas) still open.
TEST(RecordSealTest, TheMacIsOpenSslsHmacOfTheKeyLengthKeyAndRecordOnEveryThread) {
  auto one_shot = [](const std::string& secret, const std::string& key, const std::string& record) {
    const std::string message = absl::StrCat(key.size(), ":", key, record);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest, &size);
    return absl::StrCat(absl::BytesToHexString(absl::string_view(
                            reinterpret_cast<const char*>(digest), static_cast<size_t>(size))),
                        record);
  };
  const RecordSeal first("first-secret");
  const RecordSeal second("a-second-secret-longer-than-one-sha256-block-of-64-bytes-........");
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  threads.reserve(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        const std::string key = absl::StrCat("kurt:link:v1:code", t, "-", i);
        const std::string record = absl::StrCat("L||https://example.com/", i, std::string(i, 'x'));
        const RecordSeal& seal = i % 2 == 0 ? first : second;
        const std::string& secret =
            i % 2 == 0 ? "first-secret"
                       : "a-second-secret-longer-than-one-sha256-block-of-64-bytes-........";
        const std::string sealed = seal.Seal(key, record);
        if (sealed != one_shot(secret, key, record) || seal.Open(key, sealed) != record) {
          wrong.fetch_add(1);
        }
      }
    });
  }
  for (std::thread& t : threads) {
    t.join();
  }
  EXPECT_EQ(wrong.load(), 0);
  // A seal made after others are gone (its thread slots reused) still seals with its own key.
  for (int i = 0; i < 6; ++i) {
    const std::string secret = absl::StrCat("short-lived-", i);
    EXPECT_EQ(RecordSeal(secret).Seal("k", "r"), one_shot(secret, "k", "r")) << i;
  }
}

}  // namespace
}  // namespace kurt::redis
