#include "platform/grpc/edge_trust.h"

#include "gtest/gtest.h"

namespace kurt::platform {
namespace {

// One check against a secret given as text.
bool FromTrustedEdge(absl::string_view presented, absl::string_view expected) {
  return EdgeSecret(expected).Matches(presented);
}
absl::Status CheckEdgeTrust(absl::string_view method, bool has_account_id,
                            absl::string_view presented_secret, absl::string_view expected) {
  return platform::CheckEdgeTrust(method, has_account_id, presented_secret, EdgeSecret(expected));
}

// Outside development a binary with no secret would believe x-kurt-account-id from anyone.
TEST(EdgeTrustTest, AnEmptySecretIsRefusedOutsideDevMode) {
  absl::Status refused = CheckEdgeSecretConfigured("", /*dev_mode=*/false);
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(refused.message().find("--edge_secret"), absl::string_view::npos) << refused;
  EXPECT_NE(refused.message().find("--dev_mode"), absl::string_view::npos) << refused;
  EXPECT_TRUE(CheckEdgeSecretConfigured("", /*dev_mode=*/true).ok());
  EXPECT_TRUE(CheckEdgeSecretConfigured("s3cret", /*dev_mode=*/false).ok());
}

TEST(EdgeTrustTest, SecretIsComparedExactly) {
  EXPECT_TRUE(FromTrustedEdge("s3cret", "s3cret"));
  EXPECT_FALSE(FromTrustedEdge("", "s3cret"));
  EXPECT_FALSE(FromTrustedEdge("s3creT", "s3cret"));
  EXPECT_FALSE(FromTrustedEdge("s3cret ", "s3cret"));
  EXPECT_FALSE(FromTrustedEdge("s3cre", "s3cret"));
  // An embedded NUL is a byte like any other.
  EXPECT_FALSE(FromTrustedEdge(absl::string_view("s3cret\0x", 8), "s3cret"));
}

TEST(EdgeTrustTest, EmptyExpectedSecretDisablesTheCheck) {
  EXPECT_TRUE(FromTrustedEdge("", ""));
  EXPECT_TRUE(FromTrustedEdge("anything", ""));
  EXPECT_TRUE(CheckEdgeTrust("/kurt.links.v1.LinksService/CreateLink", true, "", "").ok());
}

TEST(EdgeTrustTest, AnAccountNeedsTheSecret) {
  constexpr absl::string_view kMethod = "/kurt.links.v1.LinksService/CreateLink";
  EXPECT_TRUE(CheckEdgeTrust(kMethod, true, "shh", "shh").ok());
  absl::Status missing = CheckEdgeTrust(kMethod, true, "", "shh");
  EXPECT_TRUE(absl::IsUnauthenticated(missing)) << missing;
  EXPECT_NE(missing.message().find("x-kurt-edge-secret"), absl::string_view::npos) << missing;
  EXPECT_EQ(std::string(missing.message()).find("shh"), std::string::npos)
      << "the message must not echo the secret";
  EXPECT_TRUE(absl::IsUnauthenticated(CheckEdgeTrust(kMethod, true, "wrong", "shh")));
}

// With mutual TLS the edge's certificate proves it as well as the secret (the processor decides
// from_edge from both).
TEST(EdgeTrustTest, AnAccountFromTheEdgeByAnyProofPasses) {
  constexpr absl::string_view kMethod = "/kurt.links.v1.LinksService/CreateLink";
  EXPECT_TRUE(platform::CheckEdgeTrust(kMethod, true, /*from_edge=*/true).ok());
  absl::Status refused = platform::CheckEdgeTrust(kMethod, true, /*from_edge=*/false);
  EXPECT_TRUE(absl::IsUnauthenticated(refused)) << refused;
  EXPECT_NE(refused.message().find("or its client certificate (kurt-edge)"),
            absl::string_view::npos)
      << refused;
  EXPECT_TRUE(platform::CheckEdgeTrust("/kurt.links.v1.LinksService/Resolve", false, false).ok());
}

TEST(EdgeTrustTest, CallsWithoutAnAccountAreLeftToTheService) {
  // Public routes (Resolve, CreateAccount) and internal callers name no account.
  EXPECT_TRUE(CheckEdgeTrust("/kurt.links.v1.LinksService/Resolve", false, "", "shh").ok());
  EXPECT_TRUE(CheckEdgeTrust("/kurt.links.v1.LinksService/Resolve", false, "wrong", "shh").ok());
}

TEST(EdgeTrustTest, HealthAndReflectionNeverNeedTheSecret) {
  EXPECT_TRUE(CheckEdgeTrust("/grpc.health.v1.Health/Check", true, "", "shh").ok());
  EXPECT_TRUE(CheckEdgeTrust("/grpc.health.v1.Health/Watch", true, "", "shh").ok());
  EXPECT_TRUE(CheckEdgeTrust("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", true,
                             "", "shh")
                  .ok());
  // A look-alike service name is not exempt.
  EXPECT_FALSE(CheckEdgeTrust("/grpc.healthz.Evil/Check", true, "", "shh").ok());
}

}  // namespace
}  // namespace kurt::platform
