// The Kurt-Signature scheme against values computed independently (Python's hmac module).
#include "services/notifications/webhook_signature.h"

#include <regex>

#include "gtest/gtest.h"

namespace kurt::notifications {
namespace {

TEST(WebhookSignatureTest, IsStripesSchemeOverTheTimeAndTheBody) {
  // python3 -c 'import hmac,hashlib;
  //   print(hmac.new(b"whsec_test", b"1700000000.{\"a\":1}", hashlib.sha256).hexdigest())'
  EXPECT_EQ(SignWebhook("whsec_test", absl::FromUnixSeconds(1700000000), R"({"a":1})"),
            "t=1700000000,v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789");
}

TEST(WebhookSignatureTest, SecretsAre256RandomBitsInHex) {
  const std::string a = NewWebhookSecret();
  EXPECT_TRUE(std::regex_match(a, std::regex("whsec_[0-9a-f]{64}"))) << a;
  EXPECT_NE(a, NewWebhookSecret());
}

}  // namespace
}  // namespace kurt::notifications
