// The edge's HTTP/2 gRPC client (edge/h2_upstream.h) against a real gRPC server (the test
// upstreams, grpc++) and against raw TCP servers that misbehave: metadata, errors, deadlines,
// replicas down, GOAWAY, flow control, lost connections and the retry of the retried methods.
#include "edge/h2_upstream.h"

#include <atomic>
#include <future>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/write.hpp"
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
  explicit Client(const std::map<std::string, std::string>& targets, H2UpstreamOptions options = {})
      : h2_(targets, std::move(options)),
        work_(ioc_.get_executor()),
        thread_([this] { ioc_.run(); }) {}
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
    net::post(ioc_, [this, promise, &service, &method, bytes = request.SerializeAsString(), timeout,
                     metadata = std::move(metadata)]() mutable {
      h2_.Unary(ioc_, service, method, std::move(metadata), absl::Now() + timeout, bytes,
                [promise](const grpc::Status& status, std::string response) {
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

// A TCP proxy in front of a real upstream that meddles: a connection whose client sends bytes
// holding "die-now" is closed before they go on (a replica that dies mid-call); from bytes holding
// "hang-now" on, nothing more of the client's goes on (a replica that hangs).
class MeddlingProxy {
 public:
  explicit MeddlingProxy(int upstream_port) : upstream_port_(upstream_port) {
    acceptor_.open(net::ip::tcp::v4());
    acceptor_.set_option(net::ip::tcp::acceptor::reuse_address(true));
    acceptor_.bind({net::ip::make_address("127.0.0.1"), 0});
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    accept_thread_ = std::thread([this] {
      for (;;) {
        auto client = std::make_shared<net::ip::tcp::socket>(ioc_);
        boost::system::error_code ec;
        acceptor_.accept(*client, ec);
        if (ec || stop_) {
          return;
        }
        ++accepted_;
        auto server = std::make_shared<net::ip::tcp::socket>(ioc_);
        server->connect({net::ip::make_address("127.0.0.1"), static_cast<uint16_t>(upstream_port_)},
                        ec);
        if (ec) {
          continue;
        }
        std::lock_guard<std::mutex> lock(mu_);
        pumps_.emplace_back([this, client, server] { Pump(client, server, true); });
        pumps_.emplace_back([this, client, server] { Pump(server, client, false); });
        sockets_.push_back(client);
        sockets_.push_back(server);
      }
    });
  }
  ~MeddlingProxy() {
    stop_ = true;
    boost::system::error_code ec;
    net::ip::tcp::socket poke(ioc_);
    poke.connect({net::ip::make_address("127.0.0.1"), static_cast<uint16_t>(port_)}, ec);
    accept_thread_.join();
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& s : sockets_) {
      s->shutdown(net::ip::tcp::socket::shutdown_both, ec);
    }
    for (std::thread& t : pumps_) {
      t.join();
    }
  }
  int port() const { return port_; }
  int accepted() const { return accepted_; }

 private:
  void Pump(const std::shared_ptr<net::ip::tcp::socket>& from,
            const std::shared_ptr<net::ip::tcp::socket>& to, bool from_client) {
    char buf[65536];
    bool hung = false;
    boost::system::error_code ec;
    for (;;) {
      size_t n = from->read_some(net::buffer(buf), ec);
      if (ec) {
        break;
      }
      absl::string_view bytes(buf, n);
      if (from_client && absl::StrContains(bytes, "die-now")) {
        break;
      }
      hung = hung || (from_client && absl::StrContains(bytes, "hang-now"));
      if (!hung) {
        net::write(*to, net::buffer(buf, n), ec);
      }
    }
    from->shutdown(net::ip::tcp::socket::shutdown_both, ec);
    to->shutdown(net::ip::tcp::socket::shutdown_both, ec);
  }

  int upstream_port_;
  net::io_context ioc_;
  net::ip::tcp::acceptor acceptor_{ioc_};
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread accept_thread_;
  std::mutex mu_;
  std::vector<std::thread> pumps_;
  std::vector<std::shared_ptr<net::ip::tcp::socket>> sockets_;
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

  // A replica that never answers: the edge's own expiry (and RST_STREAM).
  MeddlingProxy proxy(upstream.port());
  Client hung(Targets(Local(proxy.port())));
  ASSERT_TRUE(hung.Call(kEcho, kHeaders, google::protobuf::Empty()).status.ok());
  v1::Thing thing;
  thing.set_id("hang-now");
  start = absl::Now();
  r = hung.Call(kEcho, kGetThing, thing, absl::Milliseconds(300));
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

TEST(H2UpstreamTest, ANameIsResolvedAndResolvedAgainWhenItsReplicaGoes) {
  // localhost: 127.0.0.1, and ::1 where nothing listens (skipped) if the resolver gives it.
  auto upstream = std::make_unique<TestUpstream>();
  const int port = upstream->port();
  Client client(Targets(absl::StrCat("localhost:", port)));
  for (int i = 0; i < 5; ++i) {
    Result r = client.Call(kEcho, kHeaders, google::protobuf::Empty());
    ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  }
  upstream.reset();
  EXPECT_EQ(client.Call(kEcho, kHeaders, google::protobuf::Empty()).status.error_code(),
            grpc::StatusCode::UNAVAILABLE);
  // Back on the same port: found again within the backoff.
  grpc::ServerBuilder builder;
  testing::EchoServiceImpl echo;
  builder.AddListeningPort(absl::StrCat("127.0.0.1:", port), grpc::InsecureServerCredentials());
  builder.RegisterService(&echo);
  std::unique_ptr<grpc::Server> again = builder.BuildAndStart();
  ASSERT_NE(again, nullptr);
  absl::Time end = absl::Now() + absl::Seconds(3);
  grpc::Status status;
  while (absl::Now() < end) {
    status = client.Call(kEcho, kHeaders, google::protobuf::Empty()).status;
    if (status.ok()) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_TRUE(status.ok()) << status.error_message();
  again->Shutdown(std::chrono::system_clock::now());
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
    batch.reserve(16);
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
    // A call the server had taken but not begun when it shut down may be cancelled by it (a
    // gRPC channel's call is too); none may be refused or lost.
    if (!r.status.ok() && r.status.error_code() != grpc::StatusCode::CANCELLED) {
      ++failed;
      ADD_FAILURE() << r.status.error_code() << ": " << r.status.error_message();
    }
  }
  EXPECT_EQ(failed, 0) << "of " << calls.size();
}

TEST(H2UpstreamTest, AConnectionLostMidCallIsUnavailableAndRetriedMethodsGoElsewhere) {
  TestUpstream up;
  MeddlingProxy dies(up.port());  // the first replica: drops the connection mid-call
  H2UpstreamOptions options;
  options.retried_methods[kLinks] = {"Resolve"};
  {
    Client client(Targets(Local(dies.port())), options);
    v1::Thing thing;
    thing.set_id("die-now");
    Result r = client.Call(kEcho, kGetThing, thing);
    EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNAVAILABLE) << r.status.error_message();
  }
  // Resolve is retried on the other replica; round robin starts with the one that dies.
  Client client(Targets(absl::StrCat(Local(dies.port()), ",", Local(up.port()))), options);
  kurt::links::v1::ResolveRequest resolve;
  resolve.set_code("die-now");
  Result r = client.Call(kLinks, kResolve, resolve);
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(up.links().resolve_calls.load(), 1);
  // A server's own UNAVAILABLE is retried too, once.
  up.links().fail_resolves = 1;
  resolve.set_code("abc");
  for (int i = 0; i < 4; ++i) {
    r = client.Call(kLinks, kResolve, resolve);
    ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  }
}

TEST(H2UpstreamTest, AReplicaNotServingGetsNoCalls) {
  TestUpstream starting, serving;
  starting.SetServing(false);
  Client client(Targets(absl::StrCat(Local(starting.port()), ",", Local(serving.port()))));
  kurt::links::v1::ResolveRequest resolve;
  resolve.set_code("x");
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(client.Call(kLinks, kResolve, resolve).status.ok());
  }
  EXPECT_EQ(starting.links().resolve_calls.load(), 0);
  // Serving: heard on the Watch stream, and it gets its share.
  starting.SetServing(true);
  absl::SleepFor(absl::Milliseconds(100));
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(client.Call(kLinks, kResolve, resolve).status.ok());
  }
  EXPECT_GE(starting.links().resolve_calls.load(), 4);
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
  EXPECT_EQ(PercentDecode("a%20b%C2%ABc%"),
            "a b\xC2\xAB"
            "c%");
}

}  // namespace
}  // namespace kurt::edge
