#include "services/notifications/webhook_target.h"

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace kurt::notifications {
namespace {

namespace ip = boost::asio::ip;

TEST(WebhookUrlTest, ParsesHttpAndHttps) {
  auto u = ParseWebhookUrl("https://hooks.example.com/kurt?x=1#frag");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_TRUE(u->https);
  EXPECT_EQ(u->host, "hooks.example.com");
  EXPECT_EQ(u->port, 443);
  EXPECT_EQ(u->target, "/kurt?x=1");
  u = ParseWebhookUrl("http://127.0.0.1:8099");
  ASSERT_TRUE(u.ok());
  EXPECT_FALSE(u->https);
  EXPECT_EQ(u->port, 8099);
  EXPECT_EQ(u->target, "/");
  u = ParseWebhookUrl("http://[::1]:81/h");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 81);
  u = ParseWebhookUrl("HTTP://example.com?q");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->target, "/?q");
}

TEST(WebhookUrlTest, RejectsWhatIsNotAWebhook) {
  for (const char* bad :
       {"", "ftp://example.com/", "javascript:alert(1)", "http://", "http://user:pw@example.com/",
        "http://example.com:0/", "http://example.com:99999/", "http://exa mple.com/",
        "http://example.com:port/", "http://[::1/", "http://ex%61mple.com/", "//example.com/"}) {
    auto u = ParseWebhookUrl(bad);
    EXPECT_TRUE(absl::IsInvalidArgument(u.status())) << bad;
    if (!u.ok()) {
      EXPECT_EQ(u.status().message().rfind("url:", 0), 0u) << u.status();
    }
  }
  EXPECT_FALSE(ParseWebhookUrl("http://example.com/" + std::string(2048, 'a')).ok());
}

TEST(WebhookUrlTest, InternalAddressesAreRecognised) {
  for (const char* a :
       {"127.0.0.1", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.169.254",
        "0.0.0.0", "100.64.0.1", "224.0.0.1", "255.255.255.255", "::1", "::", "fe80::1", "fc00::1",
        "fd12::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "64:ff9b::a00:1"}) {
    EXPECT_TRUE(IsInternalAddress(ip::make_address(a))) << a;
  }
  for (const char* a :
       {"93.184.216.34", "8.8.8.8", "172.32.0.1", "2606:4700::1111", "::ffff:8.8.8.8"}) {
    EXPECT_FALSE(IsInternalAddress(ip::make_address(a))) << a;
  }
}

TEST(WebhookUrlTest, LoopbackIsRefusedUnlessAllowed) {
  auto u = ParseWebhookUrl("http://127.0.0.1:9/");
  ASSERT_TRUE(u.ok());
  auto refused = ResolveWebhook(*u, /*allow_internal=*/false);
  EXPECT_TRUE(absl::IsInvalidArgument(refused.status()));
  EXPECT_NE(refused.status().message().find("loopback"), std::string::npos);
  auto allowed = ResolveWebhook(*u, /*allow_internal=*/true);
  ASSERT_TRUE(allowed.ok());
  EXPECT_EQ(allowed->size(), 1u);
  u = ParseWebhookUrl("http://localhost:9/");
  ASSERT_TRUE(u.ok());
  EXPECT_FALSE(ResolveWebhook(*u, false).ok()) << "names resolving to loopback are refused too";
}

TEST(ResolveWebhookTest, AResolverThatHangsIsGivenUpOnAfterTheTimeout) {
  auto u = ParseWebhookUrl("https://hangs.example.com/hook");
  ASSERT_TRUE(u.ok());
  HostLookup hangs = [](const std::string&, int) -> absl::StatusOr<std::vector<ip::tcp::endpoint>> {
    absl::SleepFor(absl::Seconds(3));
    return std::vector<ip::tcp::endpoint>{};
  };
  const absl::Time start = absl::Now();
  auto resolved = ResolveWebhook(*u, false, absl::Milliseconds(200), hangs);
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(resolved.status().code(), absl::StatusCode::kDeadlineExceeded) << resolved.status();
  EXPECT_EQ(resolved.status().message(),
            "url: resolving host 'hangs.example.com' took longer than 200ms");
  EXPECT_LT(took, absl::Seconds(1));
}

}  // namespace
}  // namespace kurt::notifications
