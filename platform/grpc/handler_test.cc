#include "platform/grpc/handler.h"

#include "google/protobuf/empty.pb.h"
#include "google/protobuf/timestamp.pb.h"
#include "grpcpp/test/server_context_test_spouse.h"
#include "gtest/gtest.h"
#include "platform/grpc/h2_server.h"

namespace kurt::platform {
namespace {

using google::protobuf::Empty;
using google::protobuf::Timestamp;

// An RPCs object as a service writes one: plain functions of (Caller, request).
struct FakeRpcs {
  absl::StatusOr<Timestamp> Echo(const Caller& caller, const Timestamp& request) {
    seen_account = caller.account_id();
    seen_request_id = std::string(caller.request_id());
    seen_log_request_id = std::string(log::RequestScope::Current());
    seen_referer = caller.Metadata("x-kurt-referer");
    if (request.seconds() < 0) {
      return absl::InvalidArgumentError("seconds: must not be negative");
    }
    Timestamp out = request;
    out.set_nanos(7);
    return out;
  }
  absl::Status Forget(const Caller&, const Timestamp& request) {
    return request.seconds() == 0 ? absl::NotFoundError("nothing to forget") : absl::OkStatus();
  }
  std::string seen_account, seen_request_id, seen_log_request_id, seen_referer;
};

TEST(HandlerTest, CallsTheRpcWithTheCallerAndReturnsItsResponse) {
  grpc::ServerContext context;
  grpc::testing::ServerContextTestSpouse spouse(&context);
  spouse.AddClientMetadata("x-kurt-account-id", "acct-1");
  spouse.AddClientMetadata("x-request-id", "req-42");
  spouse.AddClientMetadata("x-kurt-referer", "https://example.com/");
  FakeRpcs rpcs;
  Timestamp request, response;
  request.set_seconds(5);

  grpc::Status status = Handle(&context, request, &response, rpcs, &FakeRpcs::Echo);

  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.seconds(), 5);
  EXPECT_EQ(response.nanos(), 7);
  EXPECT_EQ(rpcs.seen_account, "acct-1");
  EXPECT_EQ(rpcs.seen_request_id, "req-42");
  EXPECT_EQ(rpcs.seen_log_request_id, "req-42");  // logs inside the RPC carry the request id
  EXPECT_EQ(rpcs.seen_referer, "https://example.com/");
}

TEST(HandlerTest, AnAccountRpcWithoutAnAccountIsUnauthenticatedAndNotCalled) {
  grpc::ServerContext context;
  FakeRpcs rpcs;
  Timestamp request, response;

  grpc::Status status = Handle(&context, request, &response, rpcs, &FakeRpcs::Echo);

  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(status.error_message(), "no authenticated account (x-kurt-account-id)");
  EXPECT_TRUE(rpcs.seen_request_id.empty());
}

TEST(HandlerTest, AnyCallerRpcRunsWithoutAnAccountAndGetsARequestId) {
  grpc::ServerContext context;
  FakeRpcs rpcs;
  Timestamp request, response;

  grpc::Status status =
      Handle(&context, request, &response, rpcs, &FakeRpcs::Echo, Access::kAnyCaller);

  EXPECT_TRUE(status.ok());
  EXPECT_EQ(rpcs.seen_account, "");
  EXPECT_EQ(rpcs.seen_request_id.size(), 32u);  // a new one, since the call carried none
}

// The server's edge-trust processor leaves x-kurt-edge-secret on a call only when it proved the
// edge (edge_trust.h); without it, and without the edge's certificate, an edge-only RPC is refused
// and not called.
TEST(HandlerTest, AnEdgeOnlyRpcRunsOnlyForTheEdge) {
  FakeRpcs rpcs;
  Timestamp request, response;
  request.set_seconds(1);

  grpc::ServerContext stranger;
  grpc::testing::ServerContextTestSpouse stranger_spouse(&stranger);
  stranger_spouse.AddClientMetadata("x-kurt-account-id", "acct-1");
  grpc::Status refused =
      Handle(&stranger, request, &response, rpcs, &FakeRpcs::Echo, Access::kEdge);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(refused.error_message(),
            "only the edge may make this call: it needs the edge's x-kurt-edge-secret or its "
            "client certificate (kurt-edge)");
  EXPECT_TRUE(rpcs.seen_request_id.empty());

  grpc::ServerContext edge;
  grpc::testing::ServerContextTestSpouse edge_spouse(&edge);
  edge_spouse.AddClientMetadata("x-kurt-edge-secret", "");
  grpc::Status ok = Handle(&edge, request, &response, rpcs, &FakeRpcs::Echo, Access::kEdge);
  EXPECT_TRUE(ok.ok()) << ok.error_message();
  EXPECT_FALSE(rpcs.seen_request_id.empty());

  EXPECT_TRUE(CheckAccess(Caller("", {{"x-kurt-edge-secret", "s"}}), Access::kEdge).ok());
  EXPECT_EQ(CheckAccess(Caller("acct-1"), Access::kEdge).code(),
            absl::StatusCode::kPermissionDenied);
}

TEST(HandlerTest, MapsTheRpcsStatusWithItsCodeAndMessage) {
  grpc::ServerContext context;
  grpc::testing::ServerContextTestSpouse spouse(&context);
  spouse.AddClientMetadata("x-kurt-account-id", "acct-1");
  FakeRpcs rpcs;
  Timestamp request, response;
  request.set_seconds(-1);

  grpc::Status status = Handle(&context, request, &response, rpcs, &FakeRpcs::Echo);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "seconds: must not be negative");

  Empty empty;
  request.set_seconds(0);
  status = Handle(&context, request, &empty, rpcs, &FakeRpcs::Forget);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  request.set_seconds(1);
  EXPECT_TRUE(Handle(&context, request, &empty, rpcs, &FakeRpcs::Forget).ok());
}

TEST(CallerTest, AMadeUpCallerCarriesItsAccountMetadataAndDeadline) {
  const absl::Time deadline = absl::FromUnixSeconds(1800000000);
  Caller caller("acct-9", {{"x-request-id", "r-1"}, {"x-kurt-user-agent", "curl/8"}}, deadline);
  EXPECT_EQ(caller.account_id(), "acct-9");
  EXPECT_EQ(caller.request_id(), "r-1");
  EXPECT_EQ(caller.Metadata("x-kurt-user-agent"), "curl/8");
  EXPECT_EQ(caller.Metadata("x-kurt-referer"), "");
  EXPECT_EQ(caller.deadline(), deadline);
  EXPECT_EQ(caller.context(), nullptr);
  EXPECT_TRUE(CheckAccess(caller, Access::kAccount).ok());
  EXPECT_EQ(CheckAccess(Caller(""), Access::kAccount).code(), absl::StatusCode::kUnauthenticated);
}

TEST(CallerTest, AnH2CallsCallerHasItsAccountRequestIdAndTheFirstOfARepeatedName) {
  const absl::Time deadline = absl::FromUnixSeconds(1800000000);
  H2Request request;
  request.metadata = {{"x-kurt-account-id", "acct-3"},
                      {"x-request-id", "r-7"},
                      {"x-kurt-user-agent", "Agent/1"},
                      {"x-kurt-user-agent", "Agent/2"}};
  request.deadline = deadline;
  request.from_edge = true;
  Caller caller(std::move(request));
  EXPECT_EQ(caller.account_id(), "acct-3");
  EXPECT_EQ(caller.request_id(), "r-7");
  EXPECT_EQ(caller.Metadata("x-kurt-user-agent"), "Agent/1");  // as gRPC's find() gives
  EXPECT_EQ(caller.Metadata("x-kurt-referer"), "");
  EXPECT_EQ(caller.deadline(), deadline);
  EXPECT_TRUE(caller.from_edge());
  EXPECT_TRUE(CheckAccess(caller, Access::kEdge).ok());

  // Without an account or a request id: unauthenticated, and a request id of its own.
  H2Request bare;
  bare.metadata = {{"x-request-id", ""}};
  Caller anonymous(std::move(bare));
  EXPECT_EQ(anonymous.account_id(), "");
  EXPECT_FALSE(anonymous.request_id().empty());
  EXPECT_FALSE(anonymous.from_edge());
  EXPECT_EQ(CheckAccess(anonymous, Access::kAccount).code(), absl::StatusCode::kUnauthenticated);
}

}  // namespace
}  // namespace kurt::platform
