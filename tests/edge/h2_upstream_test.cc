// The edge's HTTP/2 gRPC client (edge/h2_upstream.h) against a real gRPC server (the test
// upstreams, grpc++) and against raw TCP servers that misbehave: metadata, errors, deadlines,
// replicas down, GOAWAY, flow control, lost connections and the retry of the retried methods.
#include "edge/h2_upstream.h"

#include <atomic>
#include <future>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/post.hpp"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"
#include "tests/edge/echo_service.h"
#include "tests/support/free_port.h"

namespace kurt::edge {
namespace {

namespace net = boost::asio;
using testing::TestUpstream;
namespace v1 = kurt::testing::v1;

const std::string kEcho = "kurt.testing.v1.EchoService";
const std::string kLinks = "kurt.links.v1.LinksService";
const std::string kHeaders = "/kurt.testing.v1.EchoService/Headers";
const std::string kFail = "/kurt.testing.v1.EchoService/Fail";
const std::string kSleep = "/kurt.testing.v1.EchoService/Sleep";
const std::string kGetThing = "/kurt.testing.v1.EchoService/GetThing";
const std::string kResolve = "/kurt.links.v1.LinksService/Resolve";

struct Result {
  grpc::Status status;
  std::string response;
};

// An H2Upstreams on one I/O thread of its own, as the edge's.
class Client {
 public:
  Client(const std::map<std::string, std::string>& targets, H2UpstreamOptions options = {})
      : h2_(targets, std::move(options)), work_(ioc_.get_executor()), thread_([this] {
          ioc_.run();
        }) {}
  ~Client() {
    work_.reset();
    ioc_.stop();
    thread_.join();
    h2_.Shutdown();
  }

  // Starts a call on the I/O thread; the future has its outcome.
  std::future<Result> Start(const std::string& service, const std::string& method,
                            const google::protobuf::Message& request,
                            absl::Duration timeout = absl::Seconds(5), H2Metadata metadata = {}) {
    auto promise = std::make_shared<std::promise<Result>>();
    std::future<Result> result = promise->get_future();
    net::post(ioc_, [this, promise, &service, &method, bytes = request.SerializeAsString(),
                     timeout, metadata = std::move(metadata)]() mutable {
      h2_.Unary(ioc_, service, method, std::move(metadata), absl::Now() + timeout,
                std::move(bytes), [promise](const grpc::Status& status, std::string response) {
                  promise->set_value({status, std::move(response)});
                });
    });
    return result;
  }
  Result Call(const std::string& service, const std::string& method,
              const google::protobuf::Message& request, absl::Duration timeout = absl::Seconds(5),
              H2Metadata metadata = {}) {
    return Start(service, method, request, timeout, std::move(metadata)).get();
  }

  H2Upstreams& h2() { return h2_; }

 private:
  net::io_context ioc_{1};
  H2Upstreams h2_;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work_;
  std::thread thread_;
};

std::map<std::string, std::string> Targets(const std::string& addresses) {
  return {{kEcho, addresses}, {kLinks, addresses}};
}

std::string Local(int port) { return absl::StrCat("127.0.0.1:", port); }

// A TCP server that accepts connections, reads what comes and then does what it is told: close
// the connection once it has read `close_after` bytes (a replica that dies mid-call), or never
// answer (a replica that hangs).
class RawServer {
 public:
  explicit RawServer(size_t close_after) : close_after_(close_after) {
    acceptor_.open(net::ip::tcp::v4());
    acceptor_.set_option(net::ip::tcp::acceptor::reuse_address(true));
    acceptor_.bind({net::ip::make_address("127.0.0.1"), 0});
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] {
      for (;;) {
        boost::system::error_code ec;
        net::ip::tcp::socket socket(ioc_);
        acceptor_.accept(socket, ec);
        if (ec || stop_) {
          return;
        }
        ++accepted_;
        std::string got;
        char buf[4096];
        while (got.size() < close_after_) {
          size_t n = socket.read_some(net::buffer(buf), ec);
          if (ec) {
            break;
          }
          got.append(buf, n);
        }
        if (close_after_ == SIZE_MAX) {
          continue;
        }
        socket.close(ec);
      }
    });
  }
  ~RawServer() {
    stop_ = true;
    boost::system::error_code ec;
    net::ip::tcp::socket poke(ioc_);
    poke.connect({net::ip::make_address("127.0.0.1"), static_cast<uint16_t>(port_)}, ec);
    thread_.join();
  }
  int port() const { return port_; }
  int accepted() const { return accepted_; }

 private:
  size_t close_after_;
  net::io_context ioc_;
  net::ip::tcp::acceptor acceptor_{ioc_};
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

TEST(H2UpstreamTest, UnaryCallCarriesMetadataAndDeadline) {
  TestUpstream upstream;
  Client client(Targets(Local(upstream.port())));
  Result r = client.Call(kEcho, kHeaders, google::protobuf::Empty(), absl::Seconds(5),
                         {{"x-kurt-request-id", "abc"}, {"x-test", "one two"}});
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  v1::HeadersResponse headers;
  ASSERT_TRUE(headers.ParseFromString(r.response));
  EXPECT_EQ(headers.metadata().at("x-kurt-request-id"), "abc");
  EXPECT_EQ(headers.metadata().at("x-test"), "one two");

  v1::SleepRequest sleep;
  sleep.mutable_duration()->set_nanos(1000000);
  r = client.Call(kEcho, kSleep, sleep, absl::Seconds(5));
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  v1::SleepResponse slept;
  ASSERT_TRUE(slept.ParseFromString(r.response));
  // grpc-timeout: the server saw the deadline.
  EXPECT_GT(slept.deadline_ms(), 4000);
  EXPECT_LE(slept.deadline_ms(), 5000);
  EXPECT_EQ(client.h2().in_flight(), 0);
}

TEST(H2UpstreamTest, ErrorStatusWithMessageAndDetailsInTrailersOnly) {
  TestUpstream upstream;
  Client client(Targets(Local(upstream.port())));
  v1::FailRequest fail;
  fail.set_code(static_cast<int>(grpc::StatusCode::NOT_FOUND));
  fail.set_message("no such link: «x» 100% gone\nreally");
  Result r = client.Call(kEcho, kFail, fail);
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(r.status.error_message(), fail.message());
  EXPECT_TRUE(r.response.empty());

  fail.set_code(static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  fail.set_bad_field("url");
  r = client.Call(kEcho, kFail, fail);
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  google::rpc::Status details;
  ASSERT_TRUE(details.ParseFromString(r.status.error_details()));
  EXPECT_EQ(details.code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_EQ(details.details_size(), 1);
}

TEST(H2UpstreamTest, DeadlineExceededByTheServerAndLocally) {
  TestUpstream upstream;
  Client client(Targets(Local(upstream.port())));
  v1::SleepRequest sleep;
  sleep.mutable_duration()->set_seconds(3);
  absl::Time start = absl::Now();
  Result r = client.Call(kEcho, kSleep, sleep, absl::Milliseconds(200));
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));

  // A replica that never answers: the edge's own expiry.
  RawServer hang(SIZE_MAX);
  Client hung(Targets(Local(hang.port())));
  start = absl::Now();
  r = hung.Call(kEcho, kSleep, sleep, absl::Milliseconds(300));
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(290));
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  EXPECT_EQ(hung.h2().in_flight(), 0);
}

TEST(H2UpstreamTest, CallsGoToTheReplicaThatIsUp) {
  TestUpstream upstream;
  const int down = kurt::testing::FreePort();
  Client client(Targets(absl::StrCat(Local(down), ",", Local(upstream.port()))));
  for (int i = 0; i < 20; ++i) {
    Result r = client.Call(kEcho, kHeaders, google::protobuf::Empty());
    ASSERT_TRUE(r.status.ok()) << i << ": " << r.status.error_message();
  }
  // Every replica down: UNAVAILABLE at once, not at the deadline.
  Client none(Targets(Local(down)));
  absl::Time start = absl::Now();
  Result r = none.Call(kEcho, kHeaders, google::protobuf::Empty(), absl::Seconds(10));
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

TEST(H2UpstreamTest, CallsSpreadOverReplicasRoundRobin) {
  TestUpstream a, b;
  Client client(Targets(absl::StrCat(Local(a.port()), ",", Local(b.port()))));
  for (int i = 0; i < 20; ++i) {
    kurt::links::v1::ResolveRequest resolve;
    resolve.set_code("x");
    ASSERT_TRUE(client.Call(kLinks, kResolve, resolve).status.ok());
  }
  EXPECT_GE(a.links().resolve_calls.load(), 8);
  EXPECT_GE(b.links().resolve_calls.load(), 8);
}

TEST(H2UpstreamTest, AResponseLargerThanTheWindowsArrivesWhole) {
  TestUpstream upstream;
  H2UpstreamOptions options;
  options.stream_window = 65535;
  options.connection_window = 65535;
  Client client(Targets(Local(upstream.port())), options);
  v1::Thing thing;
  thing.set_blob(std::string(3 << 20, 'x'));
  Result r = client.Call(kEcho, kGetThing, thing);
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  v1::Thing back;
  ASSERT_TRUE(back.ParseFromString(r.response));
  EXPECT_EQ(back.blob().size(), size_t{3} << 20);

  // Above the limit: RESOURCE_EXHAUSTED, and the connection serves on.
  thing.set_blob(std::string(5 << 20, 'x'));
  EXPECT_EQ(client.Call(kEcho, kGetThing, thing).status.error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(client.Call(kEcho, kHeaders, google::protobuf::Empty()).status.ok());
}

TEST(H2UpstreamTest, NothingIsLostAcrossGoawaysUnderLoad) {
  // The server ends each connection after 150 ms (GOAWAY), as Kurt's services do after two
  // minutes: the calls crossing it go on the next connection.
  TestUpstream upstream(/*max_connection_age_ms=*/150);
  Client client(Targets(Local(upstream.port())));
  v1::SleepRequest sleep;
  sleep.mutable_duration()->set_nanos(20 * 1000 * 1000);
  int failed = 0, done = 0;
  absl::Time end = absl::Now() + absl::Seconds(2);
  while (absl::Now() < end) {
    std::vector<std::future<Result>> batch;
    for (int i = 0; i < 16; ++i) {
      batch.push_back(client.Start(kEcho, kSleep, sleep));
    }
    for (auto& f : batch) {
      Result r = f.get();
      ++done;
      if (!r.status.ok()) {
        ++failed;
        ADD_FAILURE() << r.status.error_code() << ": " << r.status.error_message();
      }
    }
  }
  EXPECT_EQ(failed, 0) << "of " << done;
  EXPECT_GT(done, 100);
}

TEST(H2UpstreamTest, AGracefulShutdownOfAReplicaLosesNothing) {
  auto a = std::make_unique<TestUpstream>();
  TestUpstream b;
  Client client(Targets(absl::StrCat(Local(a->port()), ",", Local(b.port()))));
  v1::SleepRequest sleep;
  sleep.mutable_duration()->set_nanos(50 * 1000 * 1000);
  std::vector<std::future<Result>> calls;
  std::atomic<bool> stop{false};
  std::thread load([&] {
    while (!stop) {
      calls.push_back(client.Start(kEcho, kSleep, sleep));
      absl::SleepFor(absl::Milliseconds(2));
    }
  });
  absl::SleepFor(absl::Milliseconds(300));
  a->Shutdown(absl::Seconds(2));  // GOAWAY; the calls in flight finish
  absl::SleepFor(absl::Milliseconds(300));
  stop = true;
  load.join();
  int failed = 0;
  for (auto& f : calls) {
    Result r = f.get();
    if (!r.status.ok()) {
      ++failed;
      ADD_FAILURE() << r.status.error_code() << ": " << r.status.error_message();
    }
  }
  EXPECT_EQ(failed, 0) << "of " << calls.size();
}

TEST(H2UpstreamTest, AConnectionLostMidCallIsUnavailableAndRetriedMethodsGoElsewhere) {
  // The first replica reads the request and drops the connection.
  RawServer dies(/*close_after=*/100);
  TestUpstream up;
  H2UpstreamOptions options;
  options.retried_methods[kLinks] = {"Resolve"};
  const std::string targets = absl::StrCat(Local(dies.port()), ",", Local(up.port()));

  {
    Client client(Targets(Local(dies.port())), options);
    Result r = client.Call(kEcho, kHeaders, google::protobuf::Empty());
    EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNAVAILABLE) << r.status.error_message();
  }
  // Resolve is retried on the other replica; the first attempt went to the one that died.
  Client client(Targets(targets), options);
  kurt::links::v1::ResolveRequest resolve;
  resolve.set_code("abc");
  int accepted = dies.accepted();
  Result r = client.Call(kLinks, kResolve, resolve);
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_GT(dies.accepted(), accepted);
  EXPECT_EQ(up.links().resolve_calls.load(), 1);
  // A server's own UNAVAILABLE is retried too, once.
  up.links().fail_resolves = 1;
  for (int i = 0; i < 4; ++i) {
    r = client.Call(kLinks, kResolve, resolve);
    ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  }
}

TEST(H2UpstreamTest, ShutdownCancelsTheCallsInFlight) {
  TestUpstream upstream;
  auto client = std::make_unique<Client>(Targets(Local(upstream.port())));
  v1::SleepRequest sleep;
  sleep.mutable_duration()->set_seconds(3);
  std::future<Result> call = client->Start(kEcho, kSleep, sleep);
  absl::SleepFor(absl::Milliseconds(200));
  absl::Time start = absl::Now();
  client.reset();  // stops the thread, then Shutdown
  ASSERT_EQ(call.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  EXPECT_EQ(call.get().status.error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
}

TEST(H2UpstreamTest, TimeoutHeaderAndMessageDecoding) {
  EXPECT_EQ(GrpcTimeoutHeader(absl::Milliseconds(1500)), "1500m");
  EXPECT_EQ(GrpcTimeoutHeader(absl::Microseconds(10)), "1m");
  EXPECT_EQ(GrpcTimeoutHeader(absl::Hours(100)), "360000S");
  EXPECT_EQ(PercentDecode("a%20b%C2%ABc%"), "a b\xC2\xAB" "c%");
}

}  // namespace
}  // namespace kurt::edge
