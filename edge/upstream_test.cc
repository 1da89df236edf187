// What --upstream means: services and their addresses, and a method's own target.
#include "edge/upstream.h"

#include "gtest/gtest.h"

namespace kurt::edge {
namespace {

TEST(ParseUpstreamsTest, ServicesTheirAddressesAndAMethodsOwnTarget) {
  absl::StatusOr<std::map<std::string, std::string>> targets =
      ParseUpstreams({"kurt.links.v1.LinksService=10.0.0.1:7101,10.0.0.2:7101",
                      "kurt.links.v1.LinksService/Resolve=10.0.0.1:7111,10.0.0.2:7111,"
                      "kurt.accounts.v1.AccountsService=kurt-accounts:7102"});
  ASSERT_TRUE(targets.ok()) << targets.status();
  EXPECT_EQ(*targets, (std::map<std::string, std::string>{
                          {"kurt.links.v1.LinksService", "10.0.0.1:7101,10.0.0.2:7101"},
                          {"kurt.links.v1.LinksService/Resolve", "10.0.0.1:7111,10.0.0.2:7111"},
                          {"kurt.accounts.v1.AccountsService", "kurt-accounts:7102"}}));
  // gRPC's channels (and the health checks) are the services'; the method's target is the h2
  // transport's alone.
  EXPECT_EQ(ServiceTargets(*targets),
            (std::map<std::string, std::string>{
                {"kurt.links.v1.LinksService", "10.0.0.1:7101,10.0.0.2:7101"},
                {"kurt.accounts.v1.AccountsService", "kurt-accounts:7102"}}));
  // Checked under TLS as its service's replicas are.
  EXPECT_EQ(ServerIdentityToCheck(ChannelTarget("10.0.0.1:7111,10.0.0.2:7111"),
                                  "kurt.links.v1.LinksService/Resolve"),
            "kurt-links");

  for (const char* bad : {"10.0.0.1:7101", "=10.0.0.1:7101", "kurt.links.v1.LinksService="}) {
    EXPECT_TRUE(absl::IsInvalidArgument(ParseUpstreams({bad}).status())) << bad;
  }
}

}  // namespace
}  // namespace kurt::edge
