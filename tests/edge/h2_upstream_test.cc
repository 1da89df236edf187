// The edge's HTTP/2 gRPC client (edge/h2_upstream.h) against a real gRPC server (the test
// upstreams, grpc++) and against raw TCP servers that misbehave: metadata, errors, deadlines,
// replicas down, GOAWAY, flow control, lost connections and the retry of the retried methods;
// names whose lookups the test answers (FakeDns), for what a re-resolution and a slow one do;
// and mutual TLS against servers with the services' own credentials and certificates from
// tools/certs (a server of another CA, of another name, one that does not speak h2).
#include "edge/h2_upstream.h"

#include <dlfcn.h>
#include <netdb.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <future>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/ssl/context.hpp"
#include "boost/asio/ssl/stream.hpp"
#include "boost/asio/write.hpp"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"
#include "platform/grpc/edge_trust.h"
#include "platform/grpc/tls.h"
#include "tests/edge/echo_service.h"
#include "tests/support/free_port.h"
#include "tests/support/stack_env.h"
#include "tests/support/stderr_capture.h"

// The names under .kurt-test are answered by the test instead of the system's resolver: the
// client resolves with Asio, whose getaddrinfo is this one (the test binary's definition comes
// before libc's). Every other name goes to libc's.
namespace kurt::edge::testing {

// The answers (IPv4 addresses) the next lookups of a .kurt-test name get, one answer per lookup
// in order; a lookup with no answer queued waits for one.
class FakeDns {
 public:
  static FakeDns& Get() {
    static FakeDns dns;
    return dns;
  }
  void Answer(std::vector<std::string> addresses) {
    std::lock_guard<std::mutex> lock(mu_);
    answers_.push_back(std::move(addresses));
    cv_.notify_all();
  }
  // Every lookup from now on, held ones included, gets `addresses` once the queue is empty.
  void AnswerAlways(std::vector<std::string> addresses) {
    std::lock_guard<std::mutex> lock(mu_);
    always_ = std::move(addresses);
    cv_.notify_all();
  }
  void Reset() {
    std::lock_guard<std::mutex> lock(mu_);
    answers_.clear();
    always_.reset();
    lookups_ = 0;
  }
  // Waits until `n` lookups have begun (answered or not).
  bool WaitForLookups(int n, absl::Duration timeout = absl::Seconds(5)) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout), [&] { return lookups_ >= n; });
  }
  std::vector<std::string> Lookup() {
    std::unique_lock<std::mutex> lock(mu_);
    ++lookups_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return !answers_.empty() || always_.has_value(); });
    if (answers_.empty()) {
      return *always_;
    }
    std::vector<std::string> answer = std::move(answers_.front());
    answers_.pop_front();
    return answer;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::vector<std::string>> answers_;
  std::optional<std::vector<std::string>> always_;
  int lookups_ = 0;
};

}  // namespace kurt::edge::testing

extern "C" int getaddrinfo(const char* node, const char* service, const addrinfo* hints,
                           addrinfo** res) {
  using Libc = int (*)(const char*, const char*, const addrinfo*, addrinfo**);
  static const Libc libc = reinterpret_cast<Libc>(dlsym(RTLD_NEXT, "getaddrinfo"));
  if (node == nullptr || !absl::EndsWith(node, ".kurt-test")) {
    return libc(node, service, hints, res);
  }
  addrinfo numeric{};
  numeric.ai_family = AF_INET;
  numeric.ai_socktype = SOCK_STREAM;
  numeric.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  *res = nullptr;
  addrinfo** tail = res;
  // libc's nodes, chained: its freeaddrinfo frees them one by one.
  for (const std::string& address : kurt::edge::testing::FakeDns::Get().Lookup()) {
    if (int rc = libc(address.c_str(), service, &numeric, tail); rc != 0) {
      if (*res != nullptr) {
        freeaddrinfo(*res);
        *res = nullptr;
      }
      return rc;
    }
    while (*tail != nullptr) {
      tail = &(*tail)->ai_next;
    }
  }
  return *res == nullptr ? EAI_NONAME : 0;
}

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

  // Calls Headers every 50 ms until one succeeds or `within` has passed: the last one's status.
  grpc::Status HeadersUntilOk(absl::Duration within) {
    const absl::Time end = absl::Now() + within;
    grpc::Status status;
    while (absl::Now() < end) {
      status = Call(kEcho, kHeaders, google::protobuf::Empty()).status;
      if (status.ok()) {
        break;
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
    return status;
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
// "hang-now" on, nothing more of the client's goes on (a replica that hangs); bytes holding
// "garbage-now" do not go on, and the client gets a malformed SETTINGS frame instead (a protocol
// error: nghttp2 ends the session itself). With `goaway_first`, the first connection never reaches
// the upstream: a moment after the client's first bytes it gets a server's SETTINGS and a GOAWAY
// (last stream 0) before any health answer, and the socket stays open.
class MeddlingProxy {
 public:
  explicit MeddlingProxy(int upstream_port, bool goaway_first = false)
      : upstream_port_(upstream_port) {
    acceptor_.open(net::ip::tcp::v4());
    acceptor_.set_option(net::ip::tcp::acceptor::reuse_address(true));
    acceptor_.bind({net::ip::make_address("127.0.0.1"), 0});
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    accept_thread_ = std::thread([this, goaway_first] {
      for (;;) {
        auto client = std::make_shared<net::ip::tcp::socket>(ioc_);
        boost::system::error_code ec;
        acceptor_.accept(*client, ec);
        if (ec || stop_) {
          return;
        }
        if (accepted_++ == 0 && goaway_first) {
          std::lock_guard<std::mutex> lock(mu_);
          pumps_.emplace_back([client] { GoAwayAtOnce(*client); });
          sockets_.push_back(client);
          continue;
        }
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
      if (from_client && absl::StrContains(bytes, "garbage-now")) {
        // SETTINGS whose length is no multiple of 6: a connection error (FRAME_SIZE_ERROR). The
        // upstream is quiet meanwhile (one call at a time), so no frame of its is cut.
        static constexpr char kBadSettings[] = {0, 0, 3, 0x4, 0, 0, 0, 0, 0, 0, 0, 0};
        net::write(*from, net::buffer(kBadSettings, sizeof(kBadSettings)), ec);
        continue;
      }
      hung = hung || (from_client && absl::StrContains(bytes, "hang-now"));
      if (!hung) {
        net::write(*to, net::buffer(buf, n), ec);
      }
    }
    from->shutdown(net::ip::tcp::socket::shutdown_both, ec);
    to->shutdown(net::ip::tcp::socket::shutdown_both, ec);
  }

  static void GoAwayAtOnce(net::ip::tcp::socket& client) {
    char buf[65536];
    boost::system::error_code ec;
    client.read_some(net::buffer(buf), ec);
    // The calls made meanwhile wait on the connection for its health answer.
    absl::SleepFor(absl::Milliseconds(200));
    static constexpr char kSettingsAndGoaway[] = {
        0, 0, 0, 0x4, 0, 0, 0, 0, 0,                          // SETTINGS, empty
        0, 0, 8, 0x7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  // GOAWAY, last stream 0, NO_ERROR
    };
    net::write(client, net::buffer(kSettingsAndGoaway, sizeof(kSettingsAndGoaway)), ec);
    while (!ec) {
      client.read_some(net::buffer(buf), ec);
    }
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

// A replica that takes connections and never says a word: the client's calls wait on it for
// its first health answer. At `ip`:`port`, beside a TestUpstream on 127.0.0.1 at the same port
// (a name's addresses share one port).
class SilentServer {
 public:
  SilentServer(const std::string& ip, int port) {
    acceptor_.open(net::ip::tcp::v4());
    acceptor_.bind({net::ip::make_address(ip), static_cast<uint16_t>(port)});
    acceptor_.listen();
    accept_thread_ = std::thread([this] {
      for (;;) {
        auto socket = std::make_unique<net::ip::tcp::socket>(ioc_);
        boost::system::error_code ec;
        acceptor_.accept(*socket, ec);
        if (ec || stop_) {
          return;
        }
        ++accepted_;
        sockets_.push_back(std::move(socket));
      }
    });
  }
  ~SilentServer() {
    stop_ = true;
    boost::system::error_code ec;
    net::ip::tcp::socket poke(ioc_);
    poke.connect(acceptor_.local_endpoint(), ec);
    accept_thread_.join();
  }
  int accepted() const { return accepted_; }

 private:
  net::io_context ioc_;
  net::ip::tcp::acceptor acceptor_{ioc_};
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::vector<std::unique_ptr<net::ip::tcp::socket>> sockets_;  // the accept thread's
  std::thread accept_thread_;
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
  grpc::Status status = client.HeadersUntilOk(absl::Seconds(3));
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

// kurt-links' Resolve on its h2 port: a method with a target of its own goes there, every other
// method of its service to the service's target.
TEST(H2UpstreamTest, AMethodWithATargetOfItsOwnGoesThereAndTheRestOfItsServiceDoesNot) {
  TestUpstream service, method;
  std::map<std::string, std::string> targets = {{kLinks, Local(service.port())},
                                                {kResolve.substr(1), Local(method.port())}};
  Client client(targets);
  kurt::links::v1::ResolveRequest resolve;
  resolve.set_code("x");
  for (int i = 0; i < 5; ++i) {
    Result r = client.Call(kLinks, kResolve, resolve);
    ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  }
  Result list = client.Call(kLinks, "/kurt.links.v1.LinksService/ListLinks",
                            kurt::links::v1::ListLinksRequest());
  ASSERT_TRUE(list.status.ok()) << list.status.error_message();
  EXPECT_EQ(method.links().resolve_calls.load(), 5);
  EXPECT_EQ(service.links().resolve_calls.load(), 0);
  EXPECT_EQ(method.links().list_calls.load(), 0);
  EXPECT_EQ(service.links().list_calls.load(), 1);
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

// Batches of 16 short calls for `how_long`: every one succeeds, at least `at_least` in all.
void ExpectNothingLostUnderLoad(Client& client, absl::Duration how_long, int at_least) {
  v1::SleepRequest sleep;
  sleep.mutable_duration()->set_nanos(20 * 1000 * 1000);
  int failed = 0, done = 0;
  absl::Time end = absl::Now() + how_long;
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
  EXPECT_GT(done, at_least);
}

TEST(H2UpstreamTest, NothingIsLostAcrossGoawaysUnderLoad) {
  // The server ends each connection after 150 ms (GOAWAY), as Kurt's services do after two
  // minutes: the calls crossing it go on the next connection.
  TestUpstream upstream(/*max_connection_age_ms=*/150);
  Client client(Targets(Local(upstream.port())));
  ExpectNothingLostUnderLoad(client, absl::Seconds(2), 100);
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

// A call in flight when the client goes: CANCELLED at once.
void ExpectShutdownCancelsAtOnce(std::unique_ptr<Client> client) {
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

TEST(H2UpstreamTest, ShutdownCancelsTheCallsInFlight) {
  TestUpstream upstream;
  ExpectShutdownCancelsAtOnce(std::make_unique<Client>(Targets(Local(upstream.port()))));
}

// Fix-by-fix tests of the review fixes in the client (each fails without its fix).

TEST(H2UpstreamTest, ShutdownCancelsTheCallsWaitingForAnAddress) {
  testing::FakeDns& dns = testing::FakeDns::Get();
  dns.Reset();  // no answer queued: the lookup waits
  auto client = std::make_unique<Client>(Targets("slow.kurt-test:1"));
  std::future<Result> a = client->Start(kEcho, kHeaders, google::protobuf::Empty());
  std::future<Result> b = client->Start(kEcho, kHeaders, google::protobuf::Empty());
  ASSERT_TRUE(dns.WaitForLookups(1));
  absl::Time end = absl::Now() + absl::Seconds(2);
  while (client->h2().in_flight() < 2 && absl::Now() < end) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_EQ(client->h2().in_flight(), 2);
  // The lookup is answered once Shutdown has answered the calls (the io_context, destroyed last,
  // waits for its resolver thread).
  std::thread answer([&] {
    a.wait();
    b.wait();
    dns.AnswerAlways({"127.0.0.1"});
  });
  client.reset();  // stops the thread, then Shutdown
  answer.join();
  EXPECT_EQ(a.get().status.error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_EQ(b.get().status.error_code(), grpc::StatusCode::CANCELLED);
}

TEST(H2UpstreamTest, AReResolutionThatKeepsOneAddressAndDropsAnotherMovesItsQueuedCalls) {
  TestUpstream a;  // 127.0.0.1: not serving at first, then serving
  const int port = a.port();
  SilentServer b("127.0.0.2", port);  // takes the call, for its health answer, and never gives it
  // 127.0.0.3: nothing listens; its refused connection makes the client look the name up again.
  testing::FakeDns& dns = testing::FakeDns::Get();
  dns.Reset();
  dns.Answer({"127.0.0.1", "127.0.0.2", "127.0.0.3"});
  a.SetServing(false);
  Client client(Targets(absl::StrCat("replicas.kurt-test:", port)));
  std::future<Result> call =
      client.Start(kEcho, kHeaders, google::protobuf::Empty(), absl::Seconds(5));
  // The call went to a (not serving), then to b, where it waits; the second lookup waits too.
  ASSERT_TRUE(dns.WaitForLookups(2));
  absl::Time end = absl::Now() + absl::Seconds(2);
  while (b.accepted() == 0 && absl::Now() < end) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_EQ(b.accepted(), 1);
  absl::SleepFor(absl::Milliseconds(200));
  a.SetServing(true);
  absl::SleepFor(absl::Milliseconds(200));  // heard on a's Watch stream
  ASSERT_EQ(call.wait_for(std::chrono::seconds(0)), std::future_status::timeout);
  // The name now stands for a alone: b's connection goes, and the call waiting on it goes to a.
  dns.Answer({"127.0.0.1"});
  dns.AnswerAlways({"127.0.0.1"});
  ASSERT_EQ(call.wait_for(std::chrono::seconds(3)), std::future_status::ready);
  Result r = call.get();
  EXPECT_TRUE(r.status.ok()) << r.status.error_code() << ": " << r.status.error_message();
  EXPECT_TRUE(client.Call(kEcho, kHeaders, google::protobuf::Empty()).status.ok());
}

TEST(H2UpstreamTest, ASessionNghttp2EndsOnAProtocolErrorFailsItsCallsAndIsReconnected) {
  TestUpstream upstream;
  MeddlingProxy proxy(upstream.port());
  Client client(Targets(Local(proxy.port())));
  ASSERT_TRUE(client.Call(kEcho, kHeaders, google::protobuf::Empty()).status.ok());
  v1::Thing thing;
  thing.set_id("garbage-now");
  absl::Time start = absl::Now();
  Result r = client.Call(kEcho, kGetThing, thing, absl::Seconds(3));
  // Failed with its connection, not left to its deadline.
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNAVAILABLE) << r.status.error_message();
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  // A new connection once the backoff is over: calls on this thread work again.
  grpc::Status status = client.HeadersUntilOk(absl::Seconds(3));
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(proxy.accepted(), 2);
}

TEST(H2UpstreamTest, CallsWaitingForTheFirstHealthAnswerGoOnAtAGoaway) {
  TestUpstream upstream;
  MeddlingProxy proxy(upstream.port(), /*goaway_first=*/true);
  Client client(Targets(Local(proxy.port())));
  absl::Time start = absl::Now();
  std::vector<std::future<Result>> calls;
  calls.reserve(8);
  for (int i = 0; i < 8; ++i) {
    calls.push_back(client.Start(kEcho, kHeaders, google::protobuf::Empty(), absl::Seconds(3)));
  }
  for (auto& call : calls) {
    Result r = call.get();
    EXPECT_TRUE(r.status.ok()) << r.status.error_code() << ": " << r.status.error_message();
  }
  // On the connection that replaced the first, not at their deadline.
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  EXPECT_EQ(proxy.accepted(), 2);
}

// --- Mutual TLS ---------------------------------------------------------------------------------

// Certificates made by the project's tools/certs: Kurt's CA with the edge, links and reports (each
// also names localhost and 127.0.0.1), and a stranger's CA with an edge and a links of its own.
class H2UpstreamTlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(std::filesystem::temp_directory_path() /
                           kurt::testing::RandomName("kurt-h2tls-test-"));
    for (const auto& [ca, identities] : {std::pair{"kurt", "kurt-edge kurt-links kurt-reports"},
                                         std::pair{"stranger", "kurt-edge kurt-links"}}) {
      std::string cmd = absl::StrCat(kurt::testing::SourceDir(), "/tools/certs ", *dir_, "/", ca,
                                     " ", identities);
      ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    }
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*dir_);
    delete dir_;
  }

  // The certificate and key of `identity` from `ca`'s directory, trusting `trusted`'s CA.
  static platform::TlsConfig Tls(const std::string& ca, const std::string& identity,
                                 const std::string& trusted = "") {
    const std::string d = absl::StrCat(*dir_, "/", ca);
    absl::StatusOr<std::optional<platform::TlsConfig>> tls = platform::LoadTls(
        {absl::StrCat(d, "/", identity, ".crt"), absl::StrCat(d, "/", identity, ".key"),
         absl::StrCat(*dir_, "/", trusted.empty() ? ca : trusted, "/ca.crt")});
    EXPECT_TRUE(tls.ok() && tls->has_value()) << tls.status();
    return tls.ok() && tls->has_value() ? **tls : platform::TlsConfig{};
  }
  // A server as Kurt's services are with mTLS: a client certificate of its CA required.
  static std::unique_ptr<TestUpstream> Server(const std::string& ca, const std::string& identity,
                                              int max_connection_age_ms = 0) {
    return std::make_unique<TestUpstream>(
        max_connection_age_ms, platform::EdgeTrustingServerCredentials("", Tls(ca, identity), {}));
  }
  // The edge's side, as upstream.cc configures it: links' replicas at IP addresses must be
  // kurt-links; the test service (not one of Kurt's) is checked against the address dialled.
  static H2UpstreamOptions Options(const platform::TlsConfig& tls) {
    H2UpstreamOptions options;
    options.tls = tls;
    options.tls_server_names[kLinks] = "kurt-links";
    return options;
  }

  static std::string* dir_;
};
std::string* H2UpstreamTlsTest::dir_ = nullptr;

kurt::links::v1::ResolveRequest AResolve() {
  kurt::links::v1::ResolveRequest resolve;
  resolve.set_code("x");
  return resolve;
}

TEST_F(H2UpstreamTlsTest, CallsGoThroughMutualTls) {
  std::unique_ptr<TestUpstream> upstream = Server("kurt", "kurt-links");
  Client client(Targets(Local(upstream->port())), Options(Tls("kurt", "kurt-edge")));
  Result r = client.Call(kEcho, kHeaders, google::protobuf::Empty(), absl::Seconds(5),
                         {{"x-test", "over tls"}});
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  v1::HeadersResponse headers;
  ASSERT_TRUE(headers.ParseFromString(r.response));
  EXPECT_EQ(headers.metadata().at("x-test"), "over tls");
  // Links' replica proves to be kurt-links; a large answer crosses many TLS records.
  ASSERT_TRUE(client.Call(kLinks, kResolve, AResolve()).status.ok());
  EXPECT_EQ(upstream->links().resolve_calls.load(), 1);
  v1::Thing thing;
  thing.set_blob(std::string(3 << 20, 'x'));
  r = client.Call(kEcho, kGetThing, thing);
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  ASSERT_TRUE(thing.ParseFromString(r.response));
  EXPECT_EQ(thing.blob().size(), size_t{3} << 20);

  // A DNS name is checked as dialled (SNI and the certificate's localhost).
  Client by_name(Targets(absl::StrCat("localhost:", upstream->port())),
                 Options(Tls("kurt", "kurt-edge")));
  r = by_name.Call(kLinks, kResolve, AResolve());
  EXPECT_TRUE(r.status.ok()) << r.status.error_message();
}

TEST_F(H2UpstreamTlsTest, AServerOfAnotherCaIsRefused) {
  std::unique_ptr<TestUpstream> upstream = Server("stranger", "kurt-links");
  Client client(Targets(Local(upstream->port())), Options(Tls("kurt", "kurt-edge")));
  Result r = client.Call(kLinks, kResolve, AResolve());
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(absl::StrContains(r.status.error_message(), "the server's certificate is refused"))
      << r.status.error_message();
  EXPECT_EQ(upstream->links().resolve_calls.load(), 0);
}

TEST_F(H2UpstreamTlsTest, AServerWithAnotherNameIsRefused) {
  // kurt-reports' certificate (Kurt's CA, and 127.0.0.1) is no kurt-links: links' calls are
  // refused, the test service's (checked against the address) go through.
  std::unique_ptr<TestUpstream> upstream = Server("kurt", "kurt-reports");
  Client client(Targets(Local(upstream->port())), Options(Tls("kurt", "kurt-edge")));
  Result r = client.Call(kLinks, kResolve, AResolve());
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(absl::StrContains(r.status.error_message(), "mismatch")) << r.status.error_message();
  EXPECT_EQ(upstream->links().resolve_calls.load(), 0);
  r = client.Call(kEcho, kHeaders, google::protobuf::Empty());
  EXPECT_TRUE(r.status.ok()) << r.status.error_message();

  // The same server as another service's identity.
  H2UpstreamOptions named = Options(Tls("kurt", "kurt-edge"));
  named.tls_server_names[kEcho] = "kurt-links";
  Client wrong(Targets(Local(upstream->port())), named);
  r = wrong.Call(kEcho, kHeaders, google::protobuf::Empty());
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(H2UpstreamTlsTest, AnEdgeWhoseCertificateTheServersCaDidNotSignIsRefused) {
  std::unique_ptr<TestUpstream> upstream = Server("kurt", "kurt-links");
  // The stranger's edge certificate, trusting Kurt's CA: the server refuses it.
  Client client(Targets(Local(upstream->port())),
                Options(Tls("stranger", "kurt-edge", /*trusted=*/"kurt")));
  Result r = client.Call(kLinks, kResolve, AResolve());
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNAVAILABLE) << r.status.error_message();
  EXPECT_EQ(upstream->links().resolve_calls.load(), 0);
}

// With TLS 1.3 the server refuses the edge's certificate only after the edge's handshake is done,
// at the first read: the reconnections still back off (100 ms, then 1.6 times longer each, up to
// a second), rather than starting from the shortest wait each time a handshake completes.
TEST_F(H2UpstreamTlsTest, AServerThatRefusesTheEdgeAfterTheHandshakeIsRetriedWithBackoff) {
  std::unique_ptr<TestUpstream> upstream = Server("kurt", "kurt-links");
  MeddlingProxy proxy(upstream->port());
  Client client(Targets(Local(proxy.port())),
                Options(Tls("stranger", "kurt-edge", /*trusted=*/"kurt")));
  const absl::Time end = absl::Now() + absl::Milliseconds(1500);
  while (absl::Now() < end) {
    EXPECT_EQ(client.Call(kLinks, kResolve, AResolve()).status.error_code(),
              grpc::StatusCode::UNAVAILABLE);
    absl::SleepFor(absl::Milliseconds(10));
  }
  // Backing off: attempts at about 0, 0.1, 0.26, 0.52, 0.93 s (5); without: one per 100 ms (15).
  EXPECT_GE(proxy.accepted(), 2);
  EXPECT_LE(proxy.accepted(), 8);
}

// A TLS server that speaks no HTTP/2 (its handshake selects no ALPN protocol): counts the bytes
// the client sends it once the handshake is done.
class TlsServerWithoutH2 {
 public:
  explicit TlsServerWithoutH2(const platform::TlsConfig& tls) {
    context_.use_certificate_chain(net::buffer(tls.cert_pem));
    context_.use_private_key(net::buffer(tls.key_pem), net::ssl::context::pem);
    acceptor_.open(net::ip::tcp::v4());
    acceptor_.bind({net::ip::make_address("127.0.0.1"), 0});
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] {
      for (;;) {
        net::ip::tcp::socket socket(ioc_);
        boost::system::error_code ec;
        acceptor_.accept(socket, ec);
        if (ec || stop_) {
          return;
        }
        net::ssl::stream<net::ip::tcp::socket&> stream(socket, context_);
        stream.handshake(net::ssl::stream_base::server, ec);
        if (!ec) {
          ++handshakes_;
        }
        std::array<char, 4096> buf;
        while (!ec) {
          received_ += stream.read_some(net::buffer(buf), ec);
        }
        ++closed_;
      }
    });
  }
  ~TlsServerWithoutH2() {
    stop_ = true;
    boost::system::error_code ec;
    net::ip::tcp::socket poke(ioc_);
    poke.connect({net::ip::make_address("127.0.0.1"), static_cast<uint16_t>(port_)}, ec);
    thread_.join();
  }
  int port() const { return port_; }
  int handshakes() const { return handshakes_; }
  size_t received() const { return received_; }
  int closed() const { return closed_; }

 private:
  net::io_context ioc_;
  net::ssl::context context_{net::ssl::context::tls_server};
  net::ip::tcp::acceptor acceptor_{ioc_};
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> handshakes_{0};
  std::atomic<size_t> received_{0};
  std::atomic<int> closed_{0};
  std::thread thread_;
};

TEST_F(H2UpstreamTlsTest, AServerThatDoesNotSelectH2IsRefused) {
  TlsServerWithoutH2 server(Tls("kurt", "kurt-links"));
  {
    Client client(Targets(Local(server.port())), Options(Tls("kurt", "kurt-edge")));
    Result r = client.Call(kLinks, kResolve, AResolve());
    EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNAVAILABLE);
    EXPECT_TRUE(absl::StrContains(r.status.error_message(), "ALPN")) << r.status.error_message();
  }
  // The server's side of the first connection ends a moment later.
  for (int i = 0; i < 200 && server.closed() < 1; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_GE(server.handshakes(), 1);
  EXPECT_GE(server.closed(), 1);
  EXPECT_EQ(server.received(), 0u) << "no HTTP/2 preface, no call";
}

TEST_F(H2UpstreamTlsTest, AHandshakeThatNeverEndsTimesOutAsAConnect) {
  // Connections are taken (the listen backlog) and never answered.
  net::io_context ioc;
  net::ip::tcp::acceptor silent(ioc, {net::ip::make_address("127.0.0.1"), 0});
  H2UpstreamOptions options = Options(Tls("kurt", "kurt-edge"));
  options.connect_timeout = absl::Milliseconds(300);
  Client client(Targets(Local(silent.local_endpoint().port())), options);
  absl::Time start = absl::Now();
  Result r = client.Call(kLinks, kResolve, AResolve(), absl::Seconds(10));
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(absl::StrContains(r.status.error_message(), "TLS handshake"))
      << r.status.error_message();
  EXPECT_TRUE(absl::StrContains(r.status.error_message(), "timed out")) << r.status.error_message();
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

TEST_F(H2UpstreamTlsTest, NothingIsLostAcrossGoawaysUnderLoad) {
  std::unique_ptr<TestUpstream> upstream = Server("kurt", "kurt-links", 150);
  Client client(Targets(Local(upstream->port())), Options(Tls("kurt", "kurt-edge")));
  ExpectNothingLostUnderLoad(client, absl::Seconds(1), 50);
}

TEST_F(H2UpstreamTlsTest, ShutdownDoesNotWaitForThePeer) {
  std::unique_ptr<TestUpstream> upstream = Server("kurt", "kurt-links");
  auto client =
      std::make_unique<Client>(Targets(Local(upstream->port())), Options(Tls("kurt", "kurt-edge")));
  ASSERT_TRUE(client->Call(kLinks, kResolve, AResolve()).status.ok());
  ExpectShutdownCancelsAtOnce(std::move(client));
}

TEST_F(H2UpstreamTlsTest, AReplicaThatKeepsRefusingIsLoggedOnce) {
  std::unique_ptr<TestUpstream> upstream = Server("stranger", "kurt-links");
  H2UpstreamOptions options = Options(Tls("kurt", "kurt-edge"));
  options.max_reconnect_backoff = absl::Milliseconds(20);
  kurt::testing::StderrCapture capture;
  {
    Client client(Targets(Local(upstream->port())), options);
    absl::Time end = absl::Now() + absl::Milliseconds(500);
    int calls = 0;
    while (absl::Now() < end) {
      EXPECT_EQ(client.Call(kLinks, kResolve, AResolve()).status.error_code(),
                grpc::StatusCode::UNAVAILABLE);
      ++calls;
      absl::SleepFor(absl::Milliseconds(25));
    }
    EXPECT_GT(calls, 5);
  }
  std::string logged = capture.Stop();
  int lines = 0;
  for (absl::string_view line : absl::StrSplit(logged, '\n')) {
    lines += absl::StrContains(line, "h2 upstream: connection failed") &&
             absl::StrContains(line, kLinks);
  }
  EXPECT_EQ(lines, 1) << logged;
}

TEST_F(H2UpstreamTlsTest, FilesOpenSslCannotUseAreRefusedUpFront) {
  platform::TlsConfig tls = Tls("kurt", "kurt-edge");
  EXPECT_TRUE(H2ClientTlsContext(tls).ok());
  tls.key_pem = Tls("kurt", "kurt-links").key_pem;
  absl::Status status = H2ClientTlsContext(tls).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(status.message(), "--tls_key: key values mismatch")) << status;
  tls.cert_pem = "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n";
  status = H2ClientTlsContext(tls).status();
  EXPECT_TRUE(absl::StrContains(status.message(), "--tls_cert")) << status;
}

}  // namespace
}  // namespace kurt::edge
