#include "edge/http_util.h"

#include "gtest/gtest.h"

namespace kurt::edge {
namespace {

// grpc-timeout is platform::ParseGrpcTimeout's (platform/grpc/grpc_wire_test.cc).
TEST(HttpUtilTest, Timeouts) {
  EXPECT_EQ(ParseRequestTimeout("1.5s"), absl::Milliseconds(1500));
  EXPECT_EQ(ParseRequestTimeout("250ms"), absl::Milliseconds(250));
  EXPECT_EQ(ParseRequestTimeout("2"), absl::Seconds(2));
  EXPECT_FALSE(ParseRequestTimeout("soon").has_value());
  EXPECT_FALSE(ParseRequestTimeout("0").has_value());
}

TEST(HttpUtilTest, TrustedProxiesParseCidrs) {
  absl::StatusOr<TrustedProxies> t =
      TrustedProxies::Parse({"10.0.0.0/8", "192.168.1.7", "fd00::/8", " 172.16.0.0/12 "});
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_TRUE(t->Contains("10.1.2.3"));
  EXPECT_TRUE(t->Contains("::ffff:10.1.2.3"));  // IPv4-mapped, as a dual-stack socket reports it
  EXPECT_TRUE(t->Contains("192.168.1.7"));
  EXPECT_FALSE(t->Contains("192.168.1.8"));
  EXPECT_TRUE(t->Contains("172.31.255.255"));
  EXPECT_FALSE(t->Contains("172.32.0.0"));
  EXPECT_TRUE(t->Contains("fd12::1"));
  EXPECT_FALSE(t->Contains("fe80::1"));
  EXPECT_FALSE(t->Contains("11.0.0.1"));
  EXPECT_FALSE(t->Contains("not-an-ip"));
  EXPECT_FALSE(TrustedProxies().Contains("10.0.0.1"));

  absl::StatusOr<TrustedProxies> bad = TrustedProxies::Parse({"10.0.0.0/33"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("10.0.0.0/33"), std::string::npos) << bad.status();
  EXPECT_FALSE(TrustedProxies::Parse({"proxy.example"}).ok());
  EXPECT_FALSE(TrustedProxies::Parse({"10.0.0.0/x"}).ok());
}

// A client writes what it likes into X-Forwarded-For; each trusted proxy appends its own peer.
// The client is the right-most address that is not a trusted proxy.
TEST(HttpUtilTest, ClientIpIsTheRightMostAddressThatIsNotATrustedProxy) {
  TrustedProxies none;
  absl::StatusOr<TrustedProxies> ingress = TrustedProxies::Parse({"10.0.0.0/8"});
  ASSERT_TRUE(ingress.ok());
  // No trusted proxy: the peer, whatever the header says.
  EXPECT_EQ(ClientIp("203.0.113.9", "1.2.3.4", none), "203.0.113.9");
  // The ingress (10.0.0.5) appended the client's real address to a forged entry.
  EXPECT_EQ(ClientIp("10.0.0.5", "1.2.3.4, 203.0.113.9", *ingress), "203.0.113.9");
  // Two trusted hops.
  EXPECT_EQ(ClientIp("10.0.0.5", "1.2.3.4, 203.0.113.9, 10.9.9.9", *ingress), "203.0.113.9");
  // A peer that is not a trusted proxy is the client; its header is not believed.
  EXPECT_EQ(ClientIp("198.51.100.7", "1.2.3.4", *ingress), "198.51.100.7");
  // No header: the peer.
  EXPECT_EQ(ClientIp("10.0.0.5", "", *ingress), "10.0.0.5");
  // Every entry trusted: the left-most.
  EXPECT_EQ(ClientIp("10.0.0.5", "10.1.1.1, 10.2.2.2", *ingress), "10.1.1.1");
  // Junk where a proxy would have written an address: the walk stops at the last trusted hop.
  EXPECT_EQ(ClientIp("10.0.0.5", "1.2.3.4, <script>", *ingress), "10.0.0.5");
  EXPECT_EQ(ClientIp("10.0.0.5", " 203.0.113.9 ,, ", *ingress), "203.0.113.9");
}

TEST(HttpUtilTest, Etags) {
  std::string a = StrongEtag("hello");
  EXPECT_EQ(a, StrongEtag("hello"));
  EXPECT_NE(a, StrongEtag("hellp"));
  EXPECT_EQ(a.front(), '"');
  EXPECT_TRUE(IfNoneMatch(a, a));
  EXPECT_TRUE(IfNoneMatch("\"x\", W/" + a, a));
  EXPECT_TRUE(IfNoneMatch("*", a));
  EXPECT_FALSE(IfNoneMatch("\"x\"", a));
}

TEST(HttpUtilTest, MetadataSafe) {
  EXPECT_EQ(MetadataSafe("Mozilla/5.0\r\n\x01ok", 100), "Mozilla/5.0ok");
  EXPECT_EQ(MetadataSafe("abcdef", 3), "abc");
}

}  // namespace
}  // namespace kurt::edge
