#include "platform/grpc_server.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "grpcpp/generic/generic_stub.h"
#include "gtest/gtest.h"

namespace kurt::platform {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;

std::pair<int, std::string> HttpGet(int port, const std::string& target) {
  boost::asio::io_context io;
  beast::tcp_stream stream(io);
  stream.connect(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"),
                                                static_cast<unsigned short>(port)));
  http::request<http::empty_body> req{http::verb::get, target, 11};
  req.set(http::field::host, "127.0.0.1");
  http::write(stream, req);
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::read(stream, buf, res);
  return {res.result_int(), res.body()};
}

// grpc.health.v1.Health/Check with an empty request; returns the status enum (1 = SERVING).
int HealthStatus(int port) {
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                     grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  grpc::ByteBuffer request, response;
  grpc::Slice empty("");
  request = grpc::ByteBuffer(&empty, 1);
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status status;
  stub.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                 [&](grpc::Status s) {
                   std::lock_guard<std::mutex> l(mu);
                   status = s;
                   done = true;
                   cv.notify_one();
                 });
  std::unique_lock<std::mutex> l(mu);
  cv.wait(l, [&] { return done; });
  if (!status.ok()) return -status.error_code();
  std::vector<grpc::Slice> slices;
  response.Dump(&slices);
  std::string bytes;
  for (auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  // HealthCheckResponse { status = 1 }: field 1 varint.
  return bytes.size() == 2 && bytes[0] == 0x08 ? bytes[1] : 0;
}

TEST(GrpcServerTest, ServesHealthMetricsAndReadiness) {
  metrics::Registry registry;
  GrpcServerOptions options;
  options.name = "test";
  options.shutdown_grace = absl::Seconds(1);
  GrpcServer server(options, &registry);
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

TEST(GrpcServerTest, StatusConversionKeepsCodeAndMessage) {
  grpc::Status s = ToGrpcStatus(absl::InvalidArgumentError("target_url: must be http or https"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "target_url: must be http or https");
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
}

}  // namespace
}  // namespace kurt::platform
