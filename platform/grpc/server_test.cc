#include "platform/grpc/server.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/generic/generic_stub.h"
#include "gtest/gtest.h"
#include "platform/core/backend_error.h"
#include "platform/core/log.h"
#include "platform/grpc/handler.h"

namespace kurt::platform {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;

std::pair<int, std::string> HttpGet(int port, const std::string& target) {
  boost::asio::io_context io;
  beast::tcp_stream stream(io);
  stream.connect(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"),
                                                static_cast<uint16_t>(port)));
  http::request<http::empty_body> req{http::verb::get, target, 11};
  req.set(http::field::host, "127.0.0.1");
  http::write(stream, req);
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::read(stream, buf, res);
  return {res.result_int(), res.body()};
}

// A unary call with an empty request and the given metadata on `channel`; the response's bytes
// in `out`.
grpc::Status Call(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                  const std::vector<std::pair<std::string, std::string>>& metadata = {},
                  std::string* out = nullptr) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  for (const auto& [key, value] : metadata) {
    ctx.AddMetadata(key, value);
  }
  grpc::ByteBuffer request, response;
  grpc::Slice empty("");
  request = grpc::ByteBuffer(&empty, 1);
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status status;
  stub.UnaryCall(&ctx, method, grpc::StubOptions(), &request, &response, [&](grpc::Status s) {
    std::lock_guard<std::mutex> l(mu);
    status = std::move(s);
    done = true;
    cv.notify_one();
  });
  std::unique_lock<std::mutex> l(mu);
  cv.wait(l, [&] { return done; });
  if (status.ok() && out != nullptr) {
    std::vector<grpc::Slice> slices;
    response.Dump(&slices);
    for (auto& s : slices) {
      out->append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
  }
  return status;
}

// The same on a new channel to 127.0.0.1:`port`.
grpc::Status Call(int port, const std::string& method,
                  const std::vector<std::pair<std::string, std::string>>& metadata = {},
                  std::string* out = nullptr) {
  return Call(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()),
      method, metadata, out);
}

// grpc.health.v1.Health/Check with an empty request; returns the status enum (1 = SERVING).
int HealthStatus(int port, const std::vector<std::pair<std::string, std::string>>& metadata = {}) {
  std::string bytes;
  grpc::Status status = Call(port, "/grpc.health.v1.Health/Check", metadata, &bytes);
  if (!status.ok()) {
    return -status.error_code();
  }
  // HealthCheckResponse { status = 1 }: field 1 varint.
  return bytes.size() == 2 && bytes[0] == 0x08 ? bytes[1] : 0;
}

// A server on ephemeral ports that shuts down quickly.
GrpcServerOptions TestOptions(std::string edge_secret = "") {
  GrpcServerOptions options;
  options.name = "test";
  options.shutdown_grace = absl::Seconds(1);
  options.edge_secret = std::move(edge_secret);
  return options;
}

TEST(GrpcServerTest, ServesHealthMetricsAndReadiness) {
  metrics::Registry registry;
  GrpcServer server(TestOptions(), &registry);
  bool hook_ran = false;
  server.OnShutdown([&] { hook_ran = true; });
  ASSERT_TRUE(server.Start().ok());
  ASSERT_GT(server.grpc_port(), 0);
  ASSERT_GT(server.metrics_port(), 0);

  EXPECT_EQ(HealthStatus(server.grpc_port()), 1);
  EXPECT_EQ(HttpGet(server.metrics_port(), "/healthz").first, 200);
  EXPECT_EQ(HttpGet(server.metrics_port(), "/readyz").first, 200);
  EXPECT_EQ(HttpGet(server.metrics_port(), "/nope").first, 404);
  auto [code, body] = HttpGet(server.metrics_port(), "/metrics");
  EXPECT_EQ(code, 200);
  EXPECT_NE(body.find("kurt_grpc_server_requests_total{service=\"grpc.health.v1.Health\","
                      "method=\"Check\",code=\"OK\"} 1"),
            std::string::npos)
      << body;
  EXPECT_NE(body.find("kurt_grpc_server_latency_seconds_count{service=\"grpc.health.v1.Health\""),
            std::string::npos);

  server.Shutdown();
  EXPECT_TRUE(hook_ran);
}

// Clients only resolve a service again when a connection ends: the server ends each one after
// max_connection_age, so that replicas added later get calls too. Calls keep working throughout.
TEST(GrpcServerTest, ConnectionsEndAfterTheirMaximumAgeAndClientsReconnect) {
  metrics::Registry registry;
  GrpcServerOptions options = TestOptions();
  options.max_connection_age = absl::Seconds(1);
  GrpcServer server(options, &registry);
  ASSERT_TRUE(server.Start().ok());
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server.grpc_port()),
                                     grpc::InsecureChannelCredentials());
  auto check = [&] { return Call(channel, "/grpc.health.v1.Health/Check"); };
  ASSERT_TRUE(check().ok());
  ASSERT_EQ(channel->GetState(false), GRPC_CHANNEL_READY);
  // Within the age (1 s, +10 % jitter, + its grace for the GOAWAY) the connection goes.
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (channel->GetState(false) == GRPC_CHANNEL_READY && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_NE(channel->GetState(false), GRPC_CHANNEL_READY) << "the connection outlived its age";
  EXPECT_TRUE(check().ok()) << "a new connection serves the next call";

  GrpcServerOptions ageless = TestOptions();
  ageless.max_connection_age = absl::ZeroDuration();
  GrpcServer forever(ageless, &registry);
  ASSERT_TRUE(forever.Start().ok());
  auto kept = grpc::CreateChannel(absl::StrCat("127.0.0.1:", forever.grpc_port()),
                                  grpc::InsecureChannelCredentials());
  ASSERT_TRUE(kept->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(5)));
  absl::SleepFor(absl::Seconds(3));
  EXPECT_EQ(kept->GetState(false), GRPC_CHANNEL_READY) << "zero: connections are kept";
}

TEST(GrpcServerTest, WithAnEdgeSecretAnAccountNeedsIt) {
  metrics::Registry registry;
  GrpcServer server(TestOptions("edge-secret"), &registry);
  ASSERT_TRUE(server.Start().ok());
  const int port = server.grpc_port();
  // No such method: a call the check lets through gets UNIMPLEMENTED from the server.
  const std::string method = "/kurt.testing.v1.Nothing/Here";

  grpc::Status without = Call(port, method, {{"x-kurt-account-id", "acct-1"}});
  EXPECT_EQ(without.error_code(), grpc::StatusCode::UNAUTHENTICATED) << without.error_message();
  EXPECT_NE(without.error_message().find("x-kurt-edge-secret"), std::string::npos);
  grpc::Status wrong =
      Call(port, method, {{"x-kurt-account-id", "acct-1"}, {"x-kurt-edge-secret", "nope"}});
  EXPECT_EQ(wrong.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(
      Call(port, method, {{"x-kurt-account-id", "acct-1"}, {"x-kurt-edge-secret", "edge-secret"}})
          .error_code(),
      grpc::StatusCode::UNIMPLEMENTED);
  // Without an account the service decides (internal callers, public routes).
  EXPECT_EQ(Call(port, method).error_code(), grpc::StatusCode::UNIMPLEMENTED);
  // Health checks never need the secret.
  EXPECT_EQ(HealthStatus(port), 1);
  EXPECT_EQ(HealthStatus(port, {{"x-kurt-account-id", "acct-1"}}), 1);

  std::string body = HttpGet(server.metrics_port(), "/metrics").second;
  EXPECT_NE(body.find("kurt_grpc_server_untrusted_calls_total 2"), std::string::npos) << body;
  server.Shutdown();
}

TEST(GrpcServerTest, WithoutAnEdgeSecretNothingIsChecked) {
  metrics::Registry registry;
  GrpcServer server(TestOptions(), &registry);
  ASSERT_TRUE(server.Start().ok());
  EXPECT_EQ(
      Call(server.grpc_port(), "/kurt.testing.v1.Nothing/Here", {{"x-kurt-account-id", "acct-1"}})
          .error_code(),
      grpc::StatusCode::UNIMPLEMENTED);
  server.Shutdown();
}

// The edges' channels watch each replica's health: SERVING, then NOT_SERVING once it shuts down,
// and the watch ends then rather than holding the shutdown up for its grace period.
TEST(GrpcServerTest, AHealthWatchSeesServingThenNotServingAndEndsAtShutdown) {
  metrics::Registry registry;
  GrpcServerOptions options = TestOptions();
  options.shutdown_grace = absl::Seconds(20);
  GrpcServer server(options, &registry);
  ASSERT_TRUE(server.Start().ok());
  auto health = grpc::health::v1::Health::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", server.grpc_port()), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  auto watch = health->Watch(&context, grpc::health::v1::HealthCheckRequest());
  grpc::health::v1::HealthCheckResponse status;
  ASSERT_TRUE(watch->Read(&status));
  EXPECT_EQ(status.status(), grpc::health::v1::HealthCheckResponse::SERVING);

  grpc::ClientContext unknown_context;
  grpc::health::v1::HealthCheckRequest unknown;
  unknown.set_service("kurt.testing.v1.Nothing");
  EXPECT_EQ(health->Check(&unknown_context, unknown, &status).error_code(),
            grpc::StatusCode::NOT_FOUND);

  const absl::Time start = absl::Now();
  server.Shutdown();
  EXPECT_LT(absl::Now() - start, absl::Seconds(10)) << "the watch held the shutdown up";
  ASSERT_TRUE(watch->Read(&status));
  EXPECT_EQ(status.status(), grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  EXPECT_FALSE(watch->Read(&status));
  EXPECT_TRUE(watch->Finish().ok());
}

TEST(GrpcServerTest, StatusConversionKeepsCodeAndMessage) {
  grpc::Status s = ToGrpcStatus(absl::InvalidArgumentError("target_url: must be http or https"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "target_url: must be http or https");
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
}

// What a database or Redis says (tables, constraints, hosts) is logged, not answered: the caller
// gets the code, a generic message and the request id to quote.
TEST(GrpcServerTest, StatusConversionHidesBackendTexts) {
  log::RequestScope scope("req-42");
  grpc::Status s = ToGrpcStatus(absl::UnavailableError(
      "insert link: database connection lost: server closed the connection unexpectedly"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(s.error_message(), "temporarily unavailable; retry later (request id req-42)");
  s = ToGrpcStatus(absl::InternalError("redis: ERR wrong number of arguments for 'hset' command"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_EQ(s.error_message(), "internal error; it has been logged (request id req-42)");
  s = ToGrpcStatus(BackendError(absl::AlreadyExistsError(
      "insert link: ERROR: duplicate key value violates unique constraint \"links_pkey\"")));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(s.error_message().find("links_pkey"), std::string::npos) << s.error_message();
  EXPECT_NE(s.error_message().find("req-42"), std::string::npos) << s.error_message();
  // A caller's own mistake keeps its message.
  s = ToGrpcStatus(absl::AlreadyExistsError("alias \"promo\" is taken"));
  EXPECT_EQ(s.error_message(), "alias \"promo\" is taken");
}

}  // namespace
}  // namespace kurt::platform
