#include "services/links/links_service.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "platform/grpc/server.h"
#include "platform/core/log.h"
#include "platform/grpc/handler.h"
#include "platform/grpc/pagination.h"
#include "platform/grpc/timestamps.h"
#include "services/links/link_rules.h"

namespace kurt::links {
namespace {

using platform::CallerAccount;
using platform::FromTimestamp;
using platform::Metadata;
using platform::RequestIdOf;
using platform::SetTimestamp;
using platform::ToGrpcStatus;
using platform::ValidateTimestamp;

constexpr int kCreateAttempts = 5;

absl::Status ValidateFutureExpiry(const google::protobuf::Timestamp& t, absl::Time now) {
  if (absl::Status s = ValidateTimestamp(t, "expire_time"); !s.ok()) return s;
  if (FromTimestamp(t) <= now) {
    return absl::InvalidArgumentError("expire_time: must be in the future");
  }
  return absl::OkStatus();
}

absl::Status ValidateCode(const std::string& code) {
  if (code.empty()) return absl::InvalidArgumentError("code: required");
  if (!IsWellFormedCode(code)) {
    return absl::InvalidArgumentError(
        "code: must be 3 to 64 letters, digits, '-' or '_'");
  }
  return absl::OkStatus();
}

CachedLink Live(const LinkRecord& r) { return CachedLink{true, r.target_url, r.expire_time}; }

}  // namespace

LinksService::LinksService(LinksServiceOptions options, LinksStore* store, Resolver* resolver,
                           ClickSink* clicks)
    : options_(std::move(options)), store_(store), resolver_(resolver), clicks_(clicks) {}

void LinksService::ToProto(const LinkRecord& record, v1::Link* out) const {
  out->set_code(record.code);
  out->set_short_url(absl::StrCat(options_.short_url_base, record.code));
  out->set_target_url(record.target_url);
  SetTimestamp(record.create_time, out->mutable_create_time());
  SetTimestamp(record.update_time, out->mutable_update_time());
  if (record.expire_time) SetTimestamp(*record.expire_time, out->mutable_expire_time());
}

grpc::Status LinksService::CreateLink(grpc::ServerContext* context,
                                      const v1::CreateLinkRequest* request, v1::Link* response) {
  log::RequestScope scope(RequestIdOf(*context));
  auto account = CallerAccount(*context);
  if (!account.ok()) return ToGrpcStatus(account.status());
  if (absl::Status s = ValidateTargetUrl(request->target_url()); !s.ok()) return ToGrpcStatus(s);
  if (!request->alias().empty()) {
    if (absl::Status s = ValidateAlias(request->alias()); !s.ok()) return ToGrpcStatus(s);
  }
  LinkRecord link;
  link.account_id = *account;
  link.target_url = request->target_url();
  if (request->has_expire_time()) {
    if (absl::Status s = ValidateFutureExpiry(request->expire_time(), absl::Now()); !s.ok()) {
      return ToGrpcStatus(s);
    }
    link.expire_time = FromTimestamp(request->expire_time());
  }

  absl::StatusOr<LinkRecord> created;
  if (!request->alias().empty()) {
    link.code = request->alias();
    created = store_->Insert(link);
    if (absl::IsAlreadyExists(created.status())) {
      return ToGrpcStatus(absl::AlreadyExistsError(
          absl::StrCat("alias: '", request->alias(), "' is already taken")));
    }
  } else {
    // 62^7 codes: a collision is rare, several in a row mean something is wrong.
    for (int attempt = 0; attempt < kCreateAttempts; ++attempt) {
      link.code = RandomCode(kRandomCodeLength + attempt / 2);
      created = store_->Insert(link);
      if (!absl::IsAlreadyExists(created.status())) break;
    }
  }
  if (!created.ok()) return ToGrpcStatus(created.status());
  resolver_->Changed(created->code, Live(*created));
  KURT_LOG(kInfo, "link created", {"code", created->code}, {"account", *account});
  ToProto(*created, response);
  return grpc::Status::OK;
}

grpc::Status LinksService::GetLink(grpc::ServerContext* context,
                                   const v1::GetLinkRequest* request, v1::Link* response) {
  log::RequestScope scope(RequestIdOf(*context));
  auto account = CallerAccount(*context);
  if (!account.ok()) return ToGrpcStatus(account.status());
  if (absl::Status s = ValidateCode(request->code()); !s.ok()) return ToGrpcStatus(s);
  auto link = store_->Get(*account, request->code());
  if (!link.ok()) return ToGrpcStatus(link.status());
  ToProto(*link, response);
  return grpc::Status::OK;
}

std::string LinksService::EncodePageToken(const ListCursor& cursor) {
  return platform::EncodePageToken(cursor.create_time, cursor.code);
}

absl::StatusOr<ListCursor> LinksService::DecodePageToken(absl::string_view token) {
  auto decoded = platform::DecodePageToken(token);
  if (!decoded || !IsWellFormedCode(decoded->second)) {
    return absl::InvalidArgumentError("page_token: not a token from a previous page");
  }
  return ListCursor{decoded->first, std::move(decoded->second)};
}

grpc::Status LinksService::ListLinks(grpc::ServerContext* context,
                                     const v1::ListLinksRequest* request,
                                     v1::ListLinksResponse* response) {
  log::RequestScope scope(RequestIdOf(*context));
  auto account = CallerAccount(*context);
  if (!account.ok()) return ToGrpcStatus(account.status());
  absl::StatusOr<int> page_size = platform::PageSize(request->page_size());
  if (!page_size.ok()) return ToGrpcStatus(page_size.status());
  const int size = *page_size;
  std::optional<ListCursor> after;
  if (!request->page_token().empty()) {
    auto cursor = DecodePageToken(request->page_token());
    if (!cursor.ok()) return ToGrpcStatus(cursor.status());
    after = *cursor;
  }
  // One more than asked tells whether there is a next page.
  auto links = store_->List(*account, size + 1, after);
  if (!links.ok()) return ToGrpcStatus(links.status());
  bool more = static_cast<int>(links->size()) > size;
  if (more) links->pop_back();
  for (const LinkRecord& l : *links) ToProto(l, response->add_links());
  if (more) {
    response->set_next_page_token(
        EncodePageToken({links->back().create_time, links->back().code}));
  }
  return grpc::Status::OK;
}

grpc::Status LinksService::UpdateLink(grpc::ServerContext* context,
                                      const v1::UpdateLinkRequest* request, v1::Link* response) {
  log::RequestScope scope(RequestIdOf(*context));
  auto account = CallerAccount(*context);
  if (!account.ok()) return ToGrpcStatus(account.status());
  if (absl::Status s = ValidateCode(request->code()); !s.ok()) return ToGrpcStatus(s);
  LinkUpdate update;
  if (request->has_target_url()) {
    if (absl::Status s = ValidateTargetUrl(request->target_url()); !s.ok()) {
      return ToGrpcStatus(s);
    }
    update.target_url = request->target_url();
  }
  if (request->has_expire_time() && request->clear_expire_time()) {
    return ToGrpcStatus(absl::InvalidArgumentError(
        "expire_time: cannot be set together with clear_expire_time"));
  }
  if (request->has_expire_time()) {
    if (absl::Status s = ValidateFutureExpiry(request->expire_time(), absl::Now()); !s.ok()) {
      return ToGrpcStatus(s);
    }
    update.expire_time = FromTimestamp(request->expire_time());
  }
  update.clear_expire_time = request->clear_expire_time();
  if (!update.target_url && !update.expire_time && !update.clear_expire_time) {
    return ToGrpcStatus(absl::InvalidArgumentError(
        "nothing to update: give target_url, expire_time or clear_expire_time"));
  }
  auto link = store_->Update(*account, request->code(), update);
  if (!link.ok()) return ToGrpcStatus(link.status());
  resolver_->Changed(link->code, Live(*link));
  ToProto(*link, response);
  return grpc::Status::OK;
}

grpc::Status LinksService::DeleteLink(grpc::ServerContext* context,
                                      const v1::DeleteLinkRequest* request,
                                      google::protobuf::Empty*) {
  log::RequestScope scope(RequestIdOf(*context));
  auto account = CallerAccount(*context);
  if (!account.ok()) return ToGrpcStatus(account.status());
  if (absl::Status s = ValidateCode(request->code()); !s.ok()) return ToGrpcStatus(s);
  if (absl::Status s = store_->Delete(*account, request->code()); !s.ok()) {
    return ToGrpcStatus(s);
  }
  resolver_->Changed(request->code(), CachedLink{});
  KURT_LOG(kInfo, "link deleted", {"code", request->code()}, {"account", *account});
  return grpc::Status::OK;
}

grpc::Status LinksService::Resolve(grpc::ServerContext* context,
                                   const v1::ResolveRequest* request,
                                   v1::ResolveResponse* response) {
  if (!IsWellFormedCode(request->code())) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        absl::StrCat("no link with code '", request->code(), "'"));
  }
  absl::Time now = absl::Now();
  auto target = resolver_->Resolve(request->code(), now);
  if (!target.ok()) {
    if (!absl::IsNotFound(target.status())) {
      log::RequestScope scope(RequestIdOf(*context));
      KURT_LOG(kError, "resolve failed", {"code", request->code()},
               {"error", target.status().ToString()});
    }
    return ToGrpcStatus(target.status());
  }
  response->set_target_url(std::move(*target));
  clicks_->Publish(Click{request->code(), now, Metadata(*context, "x-kurt-referer"),
                         Metadata(*context, "x-kurt-user-agent"),
                         Metadata(*context, "x-kurt-client-ip"),
                         Metadata(*context, "traceparent")});
  return grpc::Status::OK;
}

grpc::Status LinksService::RecordCachedRedirects(grpc::ServerContext* context,
                                                 const api::v1::CachedRedirects* request,
                                                 google::protobuf::Empty*) {
  if (request->hits_size() > kMaxCachedRedirectsPerCall) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        absl::StrCat("hits: at most ", kMaxCachedRedirectsPerCall,
                                     " per call, not ", request->hits_size()));
  }
  // Everything is checked before anything is published: a refused batch changes nothing.
  const absl::Time now = absl::Now();
  std::vector<Click> clicks;
  clicks.reserve(request->hits_size());
  for (int i = 0; i < request->hits_size(); ++i) {
    const api::v1::CachedRedirects::Hit& hit = request->hits(i);
    auto bad = [i](absl::string_view field, absl::string_view why) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          absl::StrCat("hits[", i, "].", field, ": ", why));
    };
    v1::ResolveRequest resolve;
    if (!resolve.ParseFromString(hit.request())) {
      return bad("request", "not a kurt.links.v1.ResolveRequest");
    }
    if (!IsWellFormedCode(resolve.code())) {
      return bad("request", "code must be 3 to 64 letters, digits, '-' or '_'");
    }
    if (absl::Status s = ValidateTimestamp(hit.time(), "time"); !s.ok()) {
      return bad("time", "not a valid timestamp");
    }
    absl::Time time = FromTimestamp(hit.time());
    if (time > now + kCachedRedirectMaxSkew || time < now - kCachedRedirectMaxAge) {
      return bad("time", "more than a minute ahead of or a day behind this server's clock");
    }
    auto value = [&hit](const char* key) {
      auto it = hit.metadata().find(key);
      return it == hit.metadata().end() ? std::string() : it->second;
    };
    clicks.push_back(Click{resolve.code(), time, value("x-kurt-referer"),
                           value("x-kurt-user-agent"), value("x-kurt-client-ip"),
                           value("traceparent")});
  }
  // The edge forgets the hits once this answers OK: they must be in Kafka by then. Answer a little
  // before the caller's deadline, so that it hears UNAVAILABLE rather than nothing.
  absl::Time deadline = std::min(absl::FromChrono(context->deadline()) - absl::Milliseconds(500),
                                 absl::Now() + kCachedRedirectPublishTimeout);
  return ToGrpcStatus(clicks_->PublishAll(clicks, deadline));
}

}  // namespace kurt::links
