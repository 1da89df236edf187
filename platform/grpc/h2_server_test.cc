// Kurt's own HTTP/2 server on GrpcServer's h2 port, called by gRPC's own C++ client: what a
// client of a gRPC server sees (responses, status codes, messages and details, deadlines,
// cancellation, a graceful shutdown, mutual TLS, the trust in the edge), the same as on the gRPC
// port.
#include "platform/grpc/h2_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "kurt/notifications/v1/notifications.grpc.pb.h"
#include "platform/grpc/edge_trust.h"
#include "platform/grpc/h2_method.h"
#include "platform/grpc/held_rpcs_testing.h"
#include "platform/grpc/server.h"
#include "tests/support/metric_value.h"
#include "tests/support/stack_env.h"
#include "tests/support/wait_until.h"

namespace kurt::platform {
namespace {

namespace nv1 = notifications::v1;
using testing::HeldRpcs;

class H2ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {}

  void StartServer() {
    GrpcServerOptions options;
    options.name = "h2-test";
    options.metrics_port = -1;
    options.shutdown_grace = grace_;
    options.h2_port = 0;
    options.edge_secret = edge_secret_;
    options.tls = tls_;
    server_ = std::make_unique<GrpcServer>(options, &registry_);
    server_->AddH2Method("/kurt.notifications.v1.NotificationsService/GetWebhook",
                         H2UnaryHandler(&rpcs_, &HeldRpcs::GetWebhook));
    server_->AddH2Method("/kurt.notifications.v1.NotificationsService/SetWebhook",
                         H2UnaryHandler(&rpcs_, &HeldRpcs::SetWebhook, Access::kAnyCaller));
    absl::Status started = server_->Start();
    ASSERT_TRUE(started.ok()) << started;
    ASSERT_GT(server_->h2_port(), 0);
    ASSERT_NE(server_->h2_port(), server_->grpc_port());
  }

  std::unique_ptr<nv1::NotificationsService::Stub> Stub(
      const std::shared_ptr<grpc::ChannelCredentials>& credentials =
          grpc::InsecureChannelCredentials(),
      const grpc::ChannelArguments& args = {}) {
    return nv1::NotificationsService::NewStub(grpc::CreateCustomChannel(
        absl::StrCat("127.0.0.1:", server_->h2_port()), credentials, args));
  }

  // A call started on its own thread; its status and response once joined.
  struct Pending {
    grpc::ClientContext context;
    nv1::Webhook response;
    grpc::Status status;
    std::thread thread;
  };
  std::unique_ptr<Pending> Start(nv1::NotificationsService::Stub* stub,
                                 const std::string& account_id,
                                 absl::Duration timeout = absl::Seconds(20)) {
    auto p = std::make_unique<Pending>();
    if (!account_id.empty()) {
      p->context.AddMetadata(std::string{kAccountIdMetadata}, account_id);
    }
    if (!edge_secret_.empty()) {
      p->context.AddMetadata(std::string{kEdgeSecretMetadata}, edge_secret_);
    }
    p->context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    p->thread = std::thread([stub, raw = p.get()] {
      raw->status = stub->GetWebhook(&raw->context, nv1::GetWebhookRequest(), &raw->response);
    });
    return p;
  }

  std::thread ShutDownAside(std::atomic<bool>* stopped) {
    return std::thread([this, stopped] {
      server_->Shutdown();
      *stopped = true;
    });
  }

  absl::Duration grace_ = absl::Seconds(5);
  std::string edge_secret_;
  TlsFiles tls_;
  metrics::Registry registry_;
  HeldRpcs rpcs_;
  std::unique_ptr<GrpcServer> server_;
};

TEST_F(H2ServerTest, ManyCallsOnOneConnectionEachGetTheirOwnAnswerFromAnotherThread) {
  StartServer();
  auto stub = Stub();
  constexpr int kCalls = 100;
  std::vector<std::unique_ptr<Pending>> calls;
  calls.reserve(kCalls);
  for (int i = 0; i < kCalls; ++i) {
    calls.push_back(Start(stub.get(), absl::StrCat("acct-", i)));
  }
  std::vector<HeldRpcs::Held> held;
  held.reserve(kCalls);
  for (int i = 0; i < kCalls; ++i) {
    held.push_back(rpcs_.Next());
  }
  std::thread answerer([&] {
    for (auto it = held.rbegin(); it != held.rend(); ++it) {
      it->response->set_url(absl::StrCat("https://hooks.example/", it->account_id));
      it->done(absl::OkStatus());
    }
  });
  answerer.join();
  for (int i = 0; i < kCalls; ++i) {
    calls[i]->thread.join();
    ASSERT_TRUE(calls[i]->status.ok()) << calls[i]->status.error_message();
    EXPECT_EQ(calls[i]->response.url(), absl::StrCat("https://hooks.example/acct-", i));
  }
  // Counted as the gRPC port counts its calls.
  EXPECT_EQ(testing::MetricValue(registry_.Render(),
                                 "kurt_grpc_server_requests_total{service=\"kurt.notifications.v1."
                                 "NotificationsService\",method=\"GetWebhook\",code=\"OK\"}"),
            kCalls);
}

TEST_F(H2ServerTest, TheCallersMetadataAndDeadlineReachTheRpc) {
  StartServer();
  auto stub = Stub();
  grpc::ClientContext context;
  context.AddMetadata(std::string{kAccountIdMetadata}, "acct-7");
  context.AddMetadata(std::string{kRequestIdMetadata}, "req-123");
  context.AddMetadata("x-test-custom", "hello there");
  const absl::Time deadline = absl::Now() + absl::Seconds(7);
  context.set_deadline(absl::ToChronoTime(deadline));
  nv1::Webhook response;
  grpc::Status status;
  std::thread call(
      [&] { status = stub->GetWebhook(&context, nv1::GetWebhookRequest(), &response); });
  HeldRpcs::Held held = rpcs_.Next();
  EXPECT_EQ(held.account_id, "acct-7");
  EXPECT_EQ(held.request_id, "req-123");
  EXPECT_EQ(held.custom, "hello there");
  EXPECT_LT(absl::AbsDuration(held.deadline - deadline), absl::Seconds(1));
  held.done(absl::OkStatus());
  call.join();
  EXPECT_TRUE(status.ok()) << status.error_message();
}

TEST_F(H2ServerTest, ErrorsCarryTheirCodeMessageAndDetailsAsOnTheGrpcPort) {
  StartServer();
  auto stub = Stub();
  std::unique_ptr<Pending> anonymous = Start(stub.get(), "");
  anonymous->thread.join();
  EXPECT_EQ(anonymous->status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(rpcs_.calls(), 0u) << "the rpc never sees a caller its access refuses";

  std::unique_ptr<Pending> refused = Start(stub.get(), "acct-1");
  rpcs_.Next().done(absl::FailedPreconditionError("url: not set yet, 100% sure \xc3\xa9t\xc3\xa9"));
  refused->thread.join();
  EXPECT_EQ(refused->status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(refused->status.error_message(), "url: not set yet, 100% sure \xc3\xa9t\xc3\xa9");

  std::unique_ptr<Pending> failed = Start(stub.get(), "acct-1");
  rpcs_.Next().done(absl::UnavailableError("broker 3 unreachable"));
  failed->thread.join();
  EXPECT_EQ(failed->status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(failed->status.error_message().find("broker"), std::string::npos)
      << "a server-side failure's own text stays in the log";

  std::unique_ptr<Pending> limited = Start(stub.get(), "acct-1");
  rpcs_.Next().done(
      WithRetryAfter(absl::ResourceExhaustedError("too many webhooks"), absl::Seconds(3)));
  limited->thread.join();
  EXPECT_EQ(limited->status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  google::rpc::Status details;
  ASSERT_TRUE(details.ParseFromString(limited->status.error_details()));
  ASSERT_EQ(details.details_size(), 1);
  google::rpc::RetryInfo retry;
  ASSERT_TRUE(details.details(0).UnpackTo(&retry));
  EXPECT_EQ(retry.retry_delay().seconds(), 3);
}

TEST_F(H2ServerTest, AMethodNotServedThereIsUnimplementedAndATooLargeRequestIsRefused) {
  StartServer();
  auto stub = Stub();
  grpc::ClientContext list_context;
  nv1::ListNotificationsResponse list;
  grpc::Status status =
      stub->ListNotifications(&list_context, nv1::ListNotificationsRequest(), &list);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_NE(status.error_message().find("ListNotifications"), std::string::npos);

  nv1::SetWebhookRequest request;
  request.set_url(std::string(size_t{5} << 20, 'x'));
  grpc::ClientContext big_context;
  nv1::Webhook response;
  status = stub->SetWebhook(&big_context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();

  // The connection still serves, a large response included.
  request.set_url(std::string(size_t{3} << 20, 'y'));
  grpc::ClientContext ok_context;
  status = stub->SetWebhook(&ok_context, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.url(), request.url());
}

TEST_F(H2ServerTest, ACallItsClientGaveUpOnIsAnsweredIntoTheVoidAndTheConnectionGoesOn) {
  StartServer();
  auto stub = Stub();
  std::unique_ptr<Pending> impatient = Start(stub.get(), "acct-1", absl::Milliseconds(200));
  HeldRpcs::Held held = rpcs_.Next();
  impatient->thread.join();
  EXPECT_EQ(impatient->status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  held.done(absl::OkStatus());  // its stream is gone: dropped

  std::unique_ptr<Pending> next = Start(stub.get(), "acct-2");
  HeldRpcs::Held second = rpcs_.Next();
  second.response->set_url("https://hooks.example/2");
  second.done(absl::OkStatus());
  next->thread.join();
  ASSERT_TRUE(next->status.ok()) << next->status.error_message();
  EXPECT_EQ(next->response.url(), "https://hooks.example/2");
}

TEST_F(H2ServerTest, AShutdownWaitsForTheCallsInFlightAndTakesNoNewOnes) {
  StartServer();
  auto stub = Stub();
  std::unique_ptr<Pending> call = Start(stub.get(), "acct-1");
  HeldRpcs::Held held = rpcs_.Next();
  std::atomic<bool> stopped{false};
  std::thread stopper = ShutDownAside(&stopped);
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_FALSE(stopped) << "the shutdown did not wait for the call in flight";
  auto late_stub = Stub();  // a new connection
  std::unique_ptr<Pending> late = Start(late_stub.get(), "acct-2", absl::Seconds(2));
  late->thread.join();
  EXPECT_FALSE(late->status.ok());
  EXPECT_EQ(rpcs_.calls(), 0u) << "a call that came after the GOAWAY was served";
  held.response->set_url("https://hooks.example/last");
  held.done(absl::OkStatus());
  stopper.join();
  call->thread.join();
  ASSERT_TRUE(call->status.ok()) << call->status.error_message();
  EXPECT_EQ(call->response.url(), "https://hooks.example/last");
}

class H2ServerShortGraceTest : public H2ServerTest {
 protected:
  H2ServerShortGraceTest() { grace_ = absl::Milliseconds(200); }
};

// A call still being served when the grace ends (a database read that hangs): its connection is
// closed for its client, and the shutdown returns only once the call has answered (into the void).
TEST_F(H2ServerShortGraceTest, ACallAnsweredAfterTheGraceEndsHoldsTheShutdownUntilThen) {
  StartServer();
  auto stub = Stub();
  std::unique_ptr<Pending> call = Start(stub.get(), "acct-1");
  HeldRpcs::Held held = rpcs_.Next();
  std::atomic<bool> stopped{false};
  std::thread stopper = ShutDownAside(&stopped);
  call->thread.join();
  EXPECT_EQ(call->status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << call->status.error_message();
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_FALSE(stopped);
  held.done(absl::OkStatus());
  stopper.join();
  EXPECT_TRUE(stopped);
}

class H2ServerEdgeSecretTest : public H2ServerTest {
 protected:
  H2ServerEdgeSecretTest() { edge_secret_ = "the-edge-secret"; }
};

TEST_F(H2ServerEdgeSecretTest, AnAccountIsTrustedOnlyWithTheEdgesSecret) {
  StartServer();
  auto stub = Stub();
  std::unique_ptr<Pending> edge = Start(stub.get(), "acct-1");
  HeldRpcs::Held held = rpcs_.Next();
  EXPECT_EQ(held.account_id, "acct-1");
  EXPECT_TRUE(held.from_edge);
  held.done(absl::OkStatus());
  edge->thread.join();
  EXPECT_TRUE(edge->status.ok()) << edge->status.error_message();

  edge_secret_ = "a-guess";
  std::unique_ptr<Pending> guess = Start(stub.get(), "acct-1");
  guess->thread.join();
  EXPECT_EQ(guess->status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(rpcs_.calls(), 0u);

  // Without an account a call passes, but a wrong secret proves nothing to the handler.
  grpc::ClientContext context;
  context.AddMetadata(std::string{kEdgeSecretMetadata}, "a-guess");
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  nv1::SetWebhookRequest request;
  request.set_url("https://hooks.example/x");
  nv1::Webhook response;
  EXPECT_TRUE(stub->SetWebhook(&context, request, &response).ok());
  EXPECT_EQ(testing::MetricValue(registry_.Render(), "kurt_grpc_server_untrusted_calls_total"), 1);
}

class H2ServerTlsTest : public H2ServerTest {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(std::filesystem::temp_directory_path() /
                           absl::StrCat("kurt-h2-tls-", getpid()));
    for (const char* sub : {"/kurt", "/stranger"}) {
      std::string cmd = absl::StrCat(testing::SourceDir(), "/tools/certs ", *dir_, sub,
                                     " kurt-edge kurt-links kurt-reports");
      ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    }
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*dir_);
    delete dir_;
  }
  static TlsFiles Files(const std::string& ca, const std::string& identity) {
    return {absl::StrCat(*dir_, "/", ca, "/", identity, ".crt"),
            absl::StrCat(*dir_, "/", ca, "/", identity, ".key"),
            absl::StrCat(*dir_, "/", ca, "/ca.crt")};
  }
  static std::shared_ptr<grpc::ChannelCredentials> As(const std::string& ca,
                                                      const std::string& identity) {
    absl::StatusOr<std::optional<TlsConfig>> tls = LoadTls(Files(ca, identity));
    EXPECT_TRUE(tls.ok() && tls->has_value());
    grpc::SslCredentialsOptions o;
    o.pem_root_certs = (*tls)->ca_pem;
    o.pem_private_key = (*tls)->key_pem;
    o.pem_cert_chain = (*tls)->cert_pem;
    return grpc::SslCredentials(o);
  }
  void SetUp() override { tls_ = Files("kurt", "kurt-links"); }

  static std::string* dir_;
};
std::string* H2ServerTlsTest::dir_ = nullptr;

TEST_F(H2ServerTlsTest, OnlyClientsWithACertificateOfItsCaAreServedAndTheEdgesNamesItsCaller) {
  StartServer();
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("kurt-links");
  // The edge's certificate is its proof: an account is taken without a secret.
  auto edge = Stub(As("kurt", "kurt-edge"), args);
  std::unique_ptr<Pending> call = Start(edge.get(), "acct-1");
  HeldRpcs::Held held = rpcs_.Next();
  EXPECT_TRUE(held.from_edge);
  held.response->set_url("https://hooks.example/tls");
  held.done(absl::OkStatus());
  call->thread.join();
  ASSERT_TRUE(call->status.ok()) << call->status.error_message();
  EXPECT_EQ(call->response.url(), "https://hooks.example/tls");

  // Another service of Kurt's is served, but cannot name an account.
  auto reports = Stub(As("kurt", "kurt-reports"), args);
  std::unique_ptr<Pending> as_reports = Start(reports.get(), "acct-1", absl::Seconds(5));
  as_reports->thread.join();
  EXPECT_EQ(as_reports->status.error_code(), grpc::StatusCode::UNAUTHENTICATED);

  // Plaintext, TLS without a client certificate, a certificate of another CA: no call.
  auto plain_stub = Stub();
  std::unique_ptr<Pending> plain = Start(plain_stub.get(), "acct-1", absl::Seconds(2));
  plain->thread.join();
  EXPECT_FALSE(plain->status.ok());
  grpc::SslCredentialsOptions no_cert;
  no_cert.pem_root_certs = LoadTls(Files("kurt", "kurt-edge"))->value().ca_pem;
  auto anonymous_stub = Stub(grpc::SslCredentials(no_cert), args);
  std::unique_ptr<Pending> anonymous = Start(anonymous_stub.get(), "", absl::Seconds(2));
  anonymous->thread.join();
  EXPECT_EQ(anonymous->status.error_code(), grpc::StatusCode::UNAVAILABLE);
  grpc::SslCredentialsOptions stranger = no_cert;
  absl::StatusOr<std::optional<TlsConfig>> foreign = LoadTls(Files("stranger", "kurt-edge"));
  stranger.pem_private_key = (*foreign)->key_pem;
  stranger.pem_cert_chain = (*foreign)->cert_pem;
  auto forged_stub = Stub(grpc::SslCredentials(stranger), args);
  std::unique_ptr<Pending> forged = Start(forged_stub.get(), "acct-1", absl::Seconds(2));
  forged->thread.join();
  EXPECT_EQ(forged->status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(rpcs_.calls(), 0u);
}

// A client that connects and never speaks HTTP/2 loses its socket at the handshake timeout; one
// that completed its handshake keeps its connection, idle, past it.
TEST(H2ServerHandshakeTest, AConnectionThatNeverHandshakesIsClosedAndAnIdleOneIsNot) {
  H2ServerOptions options;
  options.handshake_timeout = absl::Milliseconds(300);
  H2Server server(options);
  server.AddMethod("/kurt.notifications.v1.NotificationsService/SetWebhook",
                   [](H2Request&& request, H2Responder respond) {
                     nv1::SetWebhookRequest in;
                     nv1::Webhook out;
                     in.ParseFromString(request.message);
                     out.set_url(in.url());
                     respond(grpc::Status::OK, out.SerializeAsString());
                   });
  absl::StatusOr<int> port = server.Start();
  ASSERT_TRUE(port.ok()) << port.status();

  const int silent = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(*port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(silent, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  timeval wait{.tv_sec = 3, .tv_usec = 0};
  setsockopt(silent, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof(wait));
  const absl::Time start = absl::Now();
  char buffer[256];
  ssize_t n;
  // The server's SETTINGS may come first; then the end of the connection.
  while ((n = read(silent, buffer, sizeof(buffer))) > 0) {
  }
  EXPECT_EQ(n, 0) << "the silent connection was not closed";
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  close(silent);

  auto stub = nv1::NotificationsService::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", *port), grpc::InsecureChannelCredentials()));
  nv1::SetWebhookRequest request;
  request.set_url("https://hooks.example/idle");
  EXPECT_TRUE(testing::WaitUntil([&] { return server.connections() == 0; }, absl::Seconds(1)));
  grpc::ClientContext context;
  nv1::Webhook response;
  grpc::Status status = stub->SetWebhook(&context, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.url(), request.url());
  absl::SleepFor(absl::Milliseconds(600));  // idle past the handshake timeout
  EXPECT_EQ(server.connections(), 1);
  server.Shutdown(absl::Seconds(1));
  EXPECT_EQ(server.connections(), 0);
}

}  // namespace
}  // namespace kurt::platform
