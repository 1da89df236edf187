// Test upstreams for the edge's end-to-end tests: kurt.testing.v1.EchoService (echoes what the
// edge transcoded) and a stand-in for kurt.links.v1.LinksService (Resolve, ListLinks), served by
// a real in-process gRPC server on a free port. The stand-in keeps the redirects the edge reports
// from its cache (RecordCachedRedirects).
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "kurt/links/v1/links.grpc.pb.h"
#include "kurt/testing/v1/echo.grpc.pb.h"

namespace kurt::edge::testing {

class EchoServiceImpl final : public kurt::testing::v1::EchoService::Service {
 public:
  using Thing = kurt::testing::v1::Thing;

  grpc::Status GetThing(grpc::ServerContext*, const Thing* req, Thing* res) override;
  grpc::Status CreateThing(grpc::ServerContext*, const Thing* req, Thing* res) override;
  grpc::Status UpdateThing(grpc::ServerContext*, const kurt::testing::v1::UpdateThingRequest* req,
                           Thing* res) override;
  grpc::Status GetShelf(grpc::ServerContext*, const kurt::testing::v1::GetShelfRequest* req,
                        kurt::testing::v1::Shelf* res) override;
  grpc::Status GetFile(grpc::ServerContext*, const kurt::testing::v1::GetFileRequest* req,
                       kurt::testing::v1::GetFileRequest* res) override;
  grpc::Status CancelThing(grpc::ServerContext*, const kurt::testing::v1::CancelThingRequest* req,
                           Thing* res) override;
  grpc::Status GetThingInner(grpc::ServerContext*, const Thing* req, Thing* res) override;
  grpc::Status Upload(grpc::ServerContext*, const kurt::testing::v1::UploadRequest* req,
                      kurt::testing::v1::UploadResponse* res) override;
  grpc::Status Download(grpc::ServerContext*, const kurt::testing::v1::DownloadRequest* req,
                        google::api::HttpBody* res) override;
  grpc::Status DownloadStream(grpc::ServerContext*, const kurt::testing::v1::DownloadRequest* req,
                              grpc::ServerWriter<google::api::HttpBody>* writer) override;
  grpc::Status Watch(grpc::ServerContext*, const kurt::testing::v1::WatchRequest* req,
                     grpc::ServerWriter<kurt::testing::v1::WatchEvent>* writer) override;
  grpc::Status Go(grpc::ServerContext*, const kurt::testing::v1::GoRequest* req,
                  kurt::testing::v1::GoResponse* res) override;
  grpc::Status Fail(grpc::ServerContext*, const kurt::testing::v1::FailRequest* req,
                    google::protobuf::Empty* res) override;
  grpc::Status Sleep(grpc::ServerContext*, const kurt::testing::v1::SleepRequest* req,
                     kurt::testing::v1::SleepResponse* res) override;
  grpc::Status Headers(grpc::ServerContext*, const google::protobuf::Empty* req,
                       kurt::testing::v1::HeadersResponse* res) override;
  grpc::Status PublicHeaders(grpc::ServerContext* ctx, const google::protobuf::Empty* req,
                             kurt::testing::v1::HeadersResponse* res) override {
    return Headers(ctx, req, res);
  }
  grpc::Status GetPublicThing(grpc::ServerContext*, const Thing* req, Thing* res) override;

  std::atomic<int> go_calls{0};
  // Set when a Watch stream ended because the client went away.
  std::atomic<bool> watch_cancelled{false};
};

class FakeLinksService final : public kurt::links::v1::LinksService::Service {
 public:
  grpc::Status Resolve(grpc::ServerContext*, const kurt::links::v1::ResolveRequest* req,
                       kurt::links::v1::ResolveResponse* res) override;
  grpc::Status ListLinks(grpc::ServerContext*, const kurt::links::v1::ListLinksRequest* req,
                         kurt::links::v1::ListLinksResponse* res) override;
  grpc::Status RecordCachedRedirects(grpc::ServerContext*,
                                     const kurt::api::v1::CachedRedirects* req,
                                     google::protobuf::Empty*) override;
  // The hits reported so far, in order.
  std::vector<kurt::api::v1::CachedRedirects::Hit> CachedHits();

  std::atomic<int> resolve_calls{0};
  std::atomic<int> list_calls{0};
  // This many Resolve calls from now on answer UNAVAILABLE (a replica that died mid-call).
  std::atomic<int> fail_resolves{0};
  // The click id (x-kurt-click-id) of each Resolve call, in order.
  std::vector<std::string> ResolveClickIds();
  // While set, RecordCachedRedirects answers UNAVAILABLE and keeps nothing.
  std::atomic<bool> refuse_cached_hits{false};

 private:
  std::mutex mu_;
  std::vector<kurt::api::v1::CachedRedirects::Hit> cached_hits_;
  std::vector<std::string> resolve_click_ids_;
};

// The two services on one in-process server (with grpc.health.v1), on a free port.
class TestUpstream {
 public:
  // max_connection_age_ms > 0: the server ends each connection after that long (GOAWAY), as
  // Kurt's services do every two minutes. `credentials`: plaintext when null (mutual TLS: the
  // services' own, platform::EdgeTrustingServerCredentials).
  explicit TestUpstream(int max_connection_age_ms = 0,
                        const std::shared_ptr<grpc::ServerCredentials>& credentials = nullptr);
  ~TestUpstream();
  int port() const { return port_; }
  EchoServiceImpl& echo() { return echo_; }
  FakeLinksService& links() { return links_; }
  // What grpc.health.v1 answers for the whole server (SERVING at first).
  void SetServing(bool serving) { server_->GetHealthCheckService()->SetServingStatus(serving); }
  // A graceful shutdown: GOAWAY, then the calls in flight have up to `grace` to finish.
  void Shutdown(absl::Duration grace) {
    server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
  }

 private:
  EchoServiceImpl echo_;
  FakeLinksService links_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace kurt::edge::testing
