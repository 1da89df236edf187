#include "tests/edge/echo_service.h"

#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/health_check_service_interface.h"

namespace kurt::edge::testing {

using grpc::ServerContext;
using grpc::Status;
namespace v1 = kurt::testing::v1;

Status EchoServiceImpl::GetThing(ServerContext*, const Thing* req, Thing* res) {
  *res = *req;
  return Status::OK;
}

Status EchoServiceImpl::CreateThing(ServerContext*, const Thing* req, Thing* res) {
  *res = *req;
  return Status::OK;
}

Status EchoServiceImpl::UpdateThing(ServerContext*, const v1::UpdateThingRequest* req, Thing* res) {
  *res = req->thing();
  *res->mutable_mask() = req->update_mask();
  return Status::OK;
}

Status EchoServiceImpl::GetShelf(ServerContext*, const v1::GetShelfRequest* req, v1::Shelf* res) {
  res->set_name(req->name());
  return Status::OK;
}

Status EchoServiceImpl::GetFile(ServerContext*, const v1::GetFileRequest* req,
                                v1::GetFileRequest* res) {
  *res = *req;
  return Status::OK;
}

Status EchoServiceImpl::CancelThing(ServerContext*, const v1::CancelThingRequest* req, Thing* res) {
  res->set_id(req->id());
  res->set_display_name(absl::StrCat("cancelled: ", req->reason()));
  return Status::OK;
}

Status EchoServiceImpl::GetThingInner(ServerContext*, const Thing* req, Thing* res) {
  *res = *req;
  res->mutable_inner()->set_name(absl::StrCat("inner of ", req->id()));
  return Status::OK;
}

Status EchoServiceImpl::Upload(ServerContext*, const v1::UploadRequest* req,
                               v1::UploadResponse* res) {
  res->set_name(req->name());
  res->set_content_type(req->content().content_type());
  res->set_size(static_cast<int64_t>(req->content().data().size()));
  res->set_data(req->content().data());
  return Status::OK;
}

Status EchoServiceImpl::Download(ServerContext*, const v1::DownloadRequest* req,
                                 google::api::HttpBody* res) {
  if (req->name() == "missing") {
    return Status(grpc::StatusCode::NOT_FOUND, "no such download");
  }
  res->set_content_type("text/csv");
  res->set_data(absl::StrCat("name,value\n", req->name(), ",1\n"));
  return Status::OK;
}

Status EchoServiceImpl::DownloadStream(ServerContext*, const v1::DownloadRequest* req,
                                       grpc::ServerWriter<google::api::HttpBody>* writer) {
  for (int i = 0; i < req->chunks(); ++i) {
    google::api::HttpBody chunk;
    chunk.set_content_type("text/plain");
    chunk.set_data(absl::StrCat("chunk ", i, "\n"));
    if (!writer->Write(chunk)) {
      break;
    }
  }
  return Status::OK;
}

Status EchoServiceImpl::Watch(ServerContext* ctx, const v1::WatchRequest* req,
                              grpc::ServerWriter<v1::WatchEvent>* writer) {
  std::string resumed;
  auto it = ctx->client_metadata().find("last-event-id");
  if (it != ctx->client_metadata().end()) {
    resumed = std::string(it->second.data(), it->second.size());
  }
  int count = req->count() < 0 ? 1000000 : req->count();
  auto interval = std::chrono::milliseconds(req->interval().seconds() * 1000 +
                                            req->interval().nanos() / 1000000);
  for (int i = 1; i <= count; ++i) {
    if (ctx->IsCancelled()) {
      watch_cancelled = true;
      return Status::CANCELLED;
    }
    v1::WatchEvent e;
    e.set_event_id(absl::StrCat("e", i));
    e.set_seq(i);
    e.set_resumed_from(resumed);
    if (!writer->Write(e)) {
      watch_cancelled = true;
      return Status::CANCELLED;
    }
    if (interval.count() > 0) {
      std::this_thread::sleep_for(interval);
    }
  }
  if (req->fail_code() != 0) {
    return Status(static_cast<grpc::StatusCode>(req->fail_code()), "the watch failed");
  }
  return Status::OK;
}

Status EchoServiceImpl::Go(ServerContext*, const v1::GoRequest* req, v1::GoResponse* res) {
  ++go_calls;
  if (req->code() == "missing") {
    return Status(grpc::StatusCode::NOT_FOUND, "no such link");
  }
  if (req->code() == "empty") {
    return Status::OK;
  }
  res->set_url(absl::StrCat("https://example.com/", req->code()));
  return Status::OK;
}

Status EchoServiceImpl::Fail(ServerContext*, const v1::FailRequest* req, google::protobuf::Empty*) {
  if (req->bad_field().empty()) {
    return Status(static_cast<grpc::StatusCode>(req->code()), req->message());
  }
  google::rpc::Status status;
  status.set_code(req->code());
  status.set_message(req->message());
  google::rpc::BadRequest bad;
  auto* v = bad.add_field_violations();
  v->set_field(req->bad_field());
  v->set_description("is wrong");
  status.add_details()->PackFrom(bad);
  return Status(static_cast<grpc::StatusCode>(req->code()), req->message(),
                status.SerializeAsString());
}

Status EchoServiceImpl::Sleep(ServerContext* ctx, const v1::SleepRequest* req,
                              v1::SleepResponse* res) {
  auto start = std::chrono::system_clock::now();
  auto deadline = ctx->deadline();
  if (deadline != std::chrono::system_clock::time_point::max() &&
      deadline < start + std::chrono::hours(24 * 365)) {
    res->set_deadline_ms(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - start).count());
  }
  auto until = start + std::chrono::seconds(req->duration().seconds()) +
               std::chrono::nanoseconds(req->duration().nanos());
  while (std::chrono::system_clock::now() < until) {
    if (ctx->IsCancelled()) {
      return Status::CANCELLED;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return Status::OK;
}

Status EchoServiceImpl::Headers(ServerContext* ctx, const google::protobuf::Empty*,
                                v1::HeadersResponse* res) {
  for (const auto& [k, v] : ctx->client_metadata()) {
    std::string key(k.data(), k.size());
    if (key.size() > 4 && key.substr(key.size() - 4) == "-bin") {
      continue;
    }
    (*res->mutable_metadata())[key] = std::string(v.data(), v.size());
  }
  return Status::OK;
}

Status EchoServiceImpl::GetPublicThing(ServerContext*, const Thing* req, Thing* res) {
  *res = *req;
  res->set_display_name("public");
  return Status::OK;
}

Status FakeLinksService::Resolve(ServerContext* ctx, const kurt::links::v1::ResolveRequest* req,
                                 kurt::links::v1::ResolveResponse* res) {
  ++resolve_calls;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = ctx->client_metadata().find("x-kurt-click-id");
    resolve_click_ids_.emplace_back(it == ctx->client_metadata().end()
                                        ? ""
                                        : std::string(it->second.data(), it->second.size()));
  }
  if (fail_resolves.load() > 0 && fail_resolves.fetch_sub(1) > 0) {
    return Status(grpc::StatusCode::UNAVAILABLE, "failing for the test");
  }
  res->set_target_url(absl::StrCat("https://links.example/", req->code()));
  return Status::OK;
}

Status FakeLinksService::ListLinks(ServerContext*, const kurt::links::v1::ListLinksRequest* req,
                                   kurt::links::v1::ListLinksResponse* res) {
  ++list_calls;
  res->set_next_page_token(absl::StrCat("page-size-", req->page_size()));
  return Status::OK;
}

Status FakeLinksService::RecordCachedRedirects(ServerContext*,
                                               const kurt::api::v1::CachedRedirects* req,
                                               google::protobuf::Empty*) {
  if (refuse_cached_hits) {
    return Status(grpc::StatusCode::UNAVAILABLE, "refusing for the test");
  }
  std::lock_guard<std::mutex> lock(mu_);
  cached_hits_.insert(cached_hits_.end(), req->hits().begin(), req->hits().end());
  return Status::OK;
}

std::vector<std::string> FakeLinksService::ResolveClickIds() {
  std::lock_guard<std::mutex> lock(mu_);
  return resolve_click_ids_;
}

std::vector<kurt::api::v1::CachedRedirects::Hit> FakeLinksService::CachedHits() {
  std::lock_guard<std::mutex> lock(mu_);
  return cached_hits_;
}

TestUpstream::TestUpstream(int max_connection_age_ms,
                           const std::shared_ptr<grpc::ServerCredentials>& credentials) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0",
                           credentials != nullptr ? credentials : grpc::InsecureServerCredentials(),
                           &port_);
  if (max_connection_age_ms > 0) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS, max_connection_age_ms);
  }
  builder.RegisterService(&echo_);
  builder.RegisterService(&links_);
  server_ = builder.BuildAndStart();
}

TestUpstream::~TestUpstream() { server_->Shutdown(std::chrono::system_clock::now()); }

}  // namespace kurt::edge::testing
