// kurt.links.v1.LinksService: validates each request, calls the store and the resolver, and maps
// their errors to gRPC statuses. The caller's account arrives as metadata x-kurt-account-id (set
// by the edge after authentication); Resolve is public and needs none.
#pragma once

#include <string>

#include "absl/time/time.h"
#include "kurt/links/v1/links.grpc.pb.h"
#include "services/links/click_publisher.h"
#include "services/links/links_store.h"
#include "services/links/resolver.h"

namespace kurt::links {

struct LinksServiceOptions {
  // Prefix of short URLs: short_url = base + code.
  std::string short_url_base = "http://127.0.0.1:8080/";
};

// RecordCachedRedirects' bounds: hits per call, and how far a hit's time may be from now (the
// edge holds hits while this service is unreachable).
inline constexpr int kMaxCachedRedirectsPerCall = 10000;
inline constexpr absl::Duration kCachedRedirectMaxAge = absl::Hours(24);
inline constexpr absl::Duration kCachedRedirectMaxSkew = absl::Minutes(1);
// How long RecordCachedRedirects waits for Kafka when the caller set no earlier deadline.
inline constexpr absl::Duration kCachedRedirectPublishTimeout = absl::Seconds(60);

class LinksService final : public kurt::links::v1::LinksService::Service {
 public:
  // Every pointer outlives the service.
  LinksService(LinksServiceOptions options, LinksStore* store, Resolver* resolver,
               ClickSink* clicks);

  grpc::Status CreateLink(grpc::ServerContext* context, const v1::CreateLinkRequest* request,
                          v1::Link* response) override;
  grpc::Status GetLink(grpc::ServerContext* context, const v1::GetLinkRequest* request,
                       v1::Link* response) override;
  grpc::Status ListLinks(grpc::ServerContext* context, const v1::ListLinksRequest* request,
                         v1::ListLinksResponse* response) override;
  grpc::Status UpdateLink(grpc::ServerContext* context, const v1::UpdateLinkRequest* request,
                          v1::Link* response) override;
  grpc::Status DeleteLink(grpc::ServerContext* context, const v1::DeleteLinkRequest* request,
                          google::protobuf::Empty* response) override;
  grpc::Status Resolve(grpc::ServerContext* context, const v1::ResolveRequest* request,
                       v1::ResolveResponse* response) override;
  // Publishes a click per redirect the edge answered from its cache, and answers OK once Kafka
  // has them all (UNAVAILABLE otherwise: the edge sends them again). The whole batch is refused
  // (INVALID_ARGUMENT naming the hit) if any hit is not a Resolve request of a well-formed code
  // at a plausible time; then nothing is published.
  grpc::Status RecordCachedRedirects(grpc::ServerContext* context,
                                     const api::v1::CachedRedirects* request,
                                     google::protobuf::Empty* response) override;

  // Page tokens are opaque to callers; exposed for tests.
  static std::string EncodePageToken(const ListCursor& cursor);
  static absl::StatusOr<ListCursor> DecodePageToken(absl::string_view token);

 private:
  void ToProto(const LinkRecord& record, v1::Link* out) const;

  const LinksServiceOptions options_;
  LinksStore* store_;
  Resolver* resolver_;
  ClickSink* clicks_;
};

}  // namespace kurt::links
