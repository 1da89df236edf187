#include "services/links/links_service.h"

#include "platform/grpc/handler.h"

namespace kurt::links {

using platform::Access;
using platform::Handle;

grpc::Status LinksService::CreateLink(grpc::ServerContext* context,
                                      const v1::CreateLinkRequest* request, v1::Link* response) {
  return Handle(context, *request, response, rpcs_, &LinksRpcs::CreateLink);
}

grpc::Status LinksService::BatchCreateLinks(grpc::ServerContext* context,
                                            const v1::BatchCreateLinksRequest* request,
                                            v1::BatchCreateLinksResponse* response) {
  return Handle(context, *request, response, rpcs_, &LinksRpcs::BatchCreateLinks);
}

grpc::Status LinksService::GetLink(grpc::ServerContext* context, const v1::GetLinkRequest* request,
                                   v1::Link* response) {
  return Handle(context, *request, response, rpcs_, &LinksRpcs::GetLink);
}

grpc::Status LinksService::ListLinks(grpc::ServerContext* context,
                                     const v1::ListLinksRequest* request,
                                     v1::ListLinksResponse* response) {
  return Handle(context, *request, response, rpcs_, &LinksRpcs::ListLinks);
}

grpc::Status LinksService::UpdateLink(grpc::ServerContext* context,
                                      const v1::UpdateLinkRequest* request, v1::Link* response) {
  return Handle(context, *request, response, rpcs_, &LinksRpcs::UpdateLink);
}

grpc::Status LinksService::DeleteLink(grpc::ServerContext* context,
                                      const v1::DeleteLinkRequest* request,
                                      google::protobuf::Empty* response) {
  return Handle(context, *request, response, rpcs_, &LinksRpcs::DeleteLink);
}

grpc::Status LinksService::GetLinkQrCode(grpc::ServerContext* context,
                                         const v1::GetLinkQrCodeRequest* request,
                                         google::api::HttpBody* response) {
  return Handle(context, *request, response, rpcs_, &LinksRpcs::GetLinkQrCode);
}

grpc::Status LinksService::UnlockLink(grpc::ServerContext* context,
                                      const v1::UnlockLinkRequest* request,
                                      v1::ResolveResponse* response) {
  return Handle(context, *request, response, rpcs_, &LinksRpcs::UnlockLink, Access::kAnyCaller);
}

grpc::Status LinksService::RecordCachedRedirects(grpc::ServerContext* context,
                                                 const api::v1::CachedRedirects* request,
                                                 google::protobuf::Empty* response) {
  return Handle(context, *request, response, rpcs_, &LinksRpcs::RecordCachedRedirects,
                Access::kEdge);
}

}  // namespace kurt::links
