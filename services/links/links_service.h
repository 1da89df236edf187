// kurt.links.v1.LinksService over gRPC: each override hands its call to platform::Handle, which
// serves it with the matching LinksRpcs function (links_rpcs.h says what each RPC does). The
// account RPCs answer UNAUTHENTICATED without x-kurt-account-id; Resolve (the redirect) is open to
// any caller, and so is UnlockLink (its form posted); RecordCachedRedirects (the edge's report of
// cached redirects, each one a click) only to the edge (its secret or its certificate), else
// PERMISSION_DENIED.
//
// Resolve is served on gRPC's asynchronous API (platform::AsyncUnaryMethod, which LinksModule
// adds beside this service): each redirect waits for Kafka to acknowledge its click, and with the
// synchronous API every one in flight held a thread blocked on that wait; now the acknowledgement
// itself finishes the call. UnlockLink stays synchronous: its argon2id check takes a thread's CPU
// for tens of milliseconds anyway, and unlocks are few next to redirects.
//
// Lives as long as the server that serves it (LinksModule owns both it and the RPCs).
#pragma once

#include "google/protobuf/empty.pb.h"
#include "kurt/links/v1/links.grpc.pb.h"
#include "services/links/links_rpcs.h"

namespace kurt::links {

class LinksService final
    : public v1::LinksService::WithAsyncMethod_Resolve<v1::LinksService::Service> {
 public:
  // `rpcs` outlives the service.
  explicit LinksService(LinksRpcs* rpcs) : rpcs_(*rpcs) {}

  grpc::Status CreateLink(grpc::ServerContext* context, const v1::CreateLinkRequest* request,
                          v1::Link* response) override;
  grpc::Status BatchCreateLinks(grpc::ServerContext* context,
                                const v1::BatchCreateLinksRequest* request,
                                v1::BatchCreateLinksResponse* response) override;
  grpc::Status GetLink(grpc::ServerContext* context, const v1::GetLinkRequest* request,
                       v1::Link* response) override;
  grpc::Status ListLinks(grpc::ServerContext* context, const v1::ListLinksRequest* request,
                         v1::ListLinksResponse* response) override;
  grpc::Status UpdateLink(grpc::ServerContext* context, const v1::UpdateLinkRequest* request,
                          v1::Link* response) override;
  grpc::Status DeleteLink(grpc::ServerContext* context, const v1::DeleteLinkRequest* request,
                          google::protobuf::Empty* response) override;
  grpc::Status GetLinkQrCode(grpc::ServerContext* context, const v1::GetLinkQrCodeRequest* request,
                             google::api::HttpBody* response) override;
  grpc::Status UnlockLink(grpc::ServerContext* context, const v1::UnlockLinkRequest* request,
                          v1::ResolveResponse* response) override;
  grpc::Status RecordCachedRedirects(grpc::ServerContext* context,
                                     const api::v1::CachedRedirects* request,
                                     google::protobuf::Empty* response) override;

 private:
  LinksRpcs& rpcs_;
};

}  // namespace kurt::links
