// ReportsService over a fake store and a real directory storage, through a real gRPC server.
#include "services/reports/reports_service.h"

#include <filesystem>
#include <map>

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "platform/grpc/server.h"

namespace kurt::reports {
namespace {

class FakeStore : public ReportsStore {
 public:
  absl::StatusOr<CreateResult> Create(const NewReport& r) override {
    if (!r.request_id.empty()) {
      for (auto& [id, job] : jobs_) {
        if (job.account_id == r.account_id && job.request_id == r.request_id) {
          return CreateResult{job, false};
        }
      }
    }
    ReportJob job;
    ++n_;
    std::string digits = std::to_string(n_);
    job.id = absl::StrCat("00000000-0000-0000-0000-", std::string(12 - digits.size(), '0'), digits);
    job.account_id = r.account_id;
    job.request_id = r.request_id;
    job.kind = r.kind;
    job.code = r.code;
    job.start_time = r.start_time;
    job.end_time = r.end_time;
    job.state = v1::PENDING;
    job.create_time = absl::FromUnixSeconds(1700000000 + n_);
    jobs_[job.id] = job;
    return CreateResult{job, true};
  }
  absl::StatusOr<ReportJob> Get(const std::string& account, const std::string& id) override {
    auto it = jobs_.find(id);
    if (it == jobs_.end() || it->second.account_id != account) return absl::NotFoundError("no");
    return it->second;
  }
  absl::StatusOr<std::vector<ReportJob>> List(const std::string& account, int limit,
                                              const std::optional<ListCursor>& after) override {
    std::vector<ReportJob> out;
    for (auto it = jobs_.rbegin(); it != jobs_.rend(); ++it) {
      if (it->second.account_id != account) continue;
      if (after && it->second.id >= after->id) continue;
      if (static_cast<int>(out.size()) == limit) break;
      out.push_back(it->second);
    }
    return out;
  }
  absl::StatusOr<ReportJob> Cancel(const std::string& account, const std::string& id) override {
    auto job = Get(account, id);
    if (!job.ok()) return job;
    if (!job->Terminal()) jobs_[id].state = v1::CANCELLED;
    return jobs_[id];
  }
  absl::StatusOr<bool> OwnsLink(const std::string& account, const std::string& code) override {
    return account == "acct-a" && code == "mine1";
  }

  std::map<std::string, ReportJob> jobs_;
  int n_ = 0;
};

class ReportsServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           absl::StrCat("reports-service-", ::getpid());
    DirectoryStorageOptions so;
    so.dir = dir_.string();
    so.fsync = false;
    storage_ = std::make_unique<DirectoryStorage>(so);
    ASSERT_TRUE(storage_->Init().ok());
    ReportsServiceOptions o;
    o.content_chunk_bytes = 1000;
    service_ = std::make_unique<ReportsService>(o, &store_, storage_.get(), nullptr, &registry_);
    platform::GrpcServerOptions go;
    go.name = "reports";
    go.metrics_port = -1;
    server_ = std::make_unique<platform::GrpcServer>(go, &registry_);
    server_->AddService(service_.get());
    ASSERT_TRUE(server_->Start().ok());
    stub_ = v1::ReportsService::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", server_->grpc_port()), grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    server_->Shutdown();
    std::filesystem::remove_all(dir_);
  }

  std::unique_ptr<grpc::ClientContext> As(const std::string& account) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    if (!account.empty()) ctx->AddMetadata("x-kurt-account-id", account);
    return ctx;
  }

  v1::CreateReportRequest Valid() {
    v1::CreateReportRequest r;
    r.set_kind(v1::CLICKS_CSV);
    r.mutable_start_time()->set_seconds(1700000000);
    r.mutable_end_time()->set_seconds(1700086400);
    return r;
  }

  std::filesystem::path dir_;
  FakeStore store_;
  metrics::Registry registry_;
  std::unique_ptr<DirectoryStorage> storage_;
  std::unique_ptr<ReportsService> service_;
  std::unique_ptr<platform::GrpcServer> server_;
  std::unique_ptr<v1::ReportsService::Stub> stub_;
};

TEST_F(ReportsServiceTest, BadRequestsSayWhatIsWrong) {
  struct Case {
    std::function<void(v1::CreateReportRequest*)> change;
    std::string field;
  };
  std::vector<Case> cases = {
      {[](auto* r) { r->set_kind(v1::REPORT_KIND_UNSPECIFIED); }, "kind"},
      {[](auto* r) { r->clear_start_time(); }, "start_time"},
      {[](auto* r) { r->clear_end_time(); }, "end_time"},
      {[](auto* r) { r->mutable_end_time()->set_seconds(1700000000); }, "end_time"},
      {[](auto* r) { r->mutable_end_time()->set_seconds(1700000000 + 400 * 86400); }, "end_time"},
      {[](auto* r) { r->mutable_start_time()->set_nanos(-1); }, "start_time"},
      {[](auto* r) { r->set_code("a/b"); }, "code"},
      {[](auto* r) { r->set_request_id(std::string(129, 'x')); }, "request_id"},
      {[](auto* r) { r->set_request_id("has space"); }, "request_id"},
  };
  for (const Case& c : cases) {
    v1::CreateReportRequest r = Valid();
    c.change(&r);
    v1::Report out;
    grpc::Status s = stub_->CreateReport(As("acct-a").get(), r, &out);
    EXPECT_EQ(s.error_code(), grpc::INVALID_ARGUMENT) << c.field;
    EXPECT_EQ(s.error_message().rfind(c.field + ":", 0), 0u) << s.error_message();
  }
  EXPECT_TRUE(store_.jobs_.empty()) << "bad requests change nothing";
  v1::Report out;
  EXPECT_EQ(stub_->CreateReport(As("").get(), Valid(), &out).error_code(),
            grpc::UNAUTHENTICATED);
  v1::CreateReportRequest other = Valid();
  other.set_code("notmine");
  EXPECT_EQ(stub_->CreateReport(As("acct-a").get(), other, &out).error_code(), grpc::NOT_FOUND);
}

TEST_F(ReportsServiceTest, CreateGetCancelWithOwnership) {
  v1::CreateReportRequest r = Valid();
  r.set_code("mine1");
  r.set_request_id("retry-1");
  v1::Report created, again, got;
  ASSERT_TRUE(stub_->CreateReport(As("acct-a").get(), r, &created).ok());
  EXPECT_EQ(created.state(), v1::PENDING);
  ASSERT_TRUE(stub_->CreateReport(As("acct-a").get(), r, &again).ok());
  EXPECT_EQ(again.id(), created.id()) << "the same request_id finds the same job";

  v1::GetReportRequest get;
  get.set_id(created.id());
  ASSERT_TRUE(stub_->GetReport(As("acct-a").get(), get, &got).ok());
  EXPECT_EQ(got.code(), "mine1");
  EXPECT_EQ(stub_->GetReport(As("acct-b").get(), get, &got).error_code(), grpc::NOT_FOUND);
  get.set_id("not-a-uuid");
  EXPECT_EQ(stub_->GetReport(As("acct-a").get(), get, &got).error_code(), grpc::NOT_FOUND);

  v1::CancelReportRequest cancel;
  cancel.set_id(created.id());
  EXPECT_EQ(stub_->CancelReport(As("acct-b").get(), cancel, &got).error_code(), grpc::NOT_FOUND);
  ASSERT_TRUE(stub_->CancelReport(As("acct-a").get(), cancel, &got).ok());
  EXPECT_EQ(got.state(), v1::CANCELLED);
  EXPECT_TRUE(stub_->CancelReport(As("acct-a").get(), cancel, &got).ok()) << "idempotent";
  store_.jobs_[created.id()].state = v1::SUCCEEDED;
  EXPECT_EQ(stub_->CancelReport(As("acct-a").get(), cancel, &got).error_code(),
            grpc::FAILED_PRECONDITION);
}

TEST_F(ReportsServiceTest, ListPagesThroughEveryReport) {
  for (int i = 0; i < 5; ++i) {
    v1::Report out;
    ASSERT_TRUE(stub_->CreateReport(As("acct-a").get(), Valid(), &out).ok());
  }
  v1::Report out;
  ASSERT_TRUE(stub_->CreateReport(As("acct-b").get(), Valid(), &out).ok());
  std::vector<std::string> seen;
  std::string token;
  int pages = 0;
  do {
    v1::ListReportsRequest req;
    req.set_page_size(2);
    req.set_page_token(token);
    v1::ListReportsResponse res;
    ASSERT_TRUE(stub_->ListReports(As("acct-a").get(), req, &res).ok());
    for (const auto& r : res.reports()) seen.push_back(r.id());
    token = res.next_page_token();
    ++pages;
  } while (!token.empty() && pages < 10);
  EXPECT_EQ(seen.size(), 5u);
  EXPECT_EQ(pages, 3);
  v1::ListReportsRequest bad;
  bad.set_page_token("garbage");
  v1::ListReportsResponse res;
  EXPECT_EQ(stub_->ListReports(As("acct-a").get(), bad, &res).error_code(),
            grpc::INVALID_ARGUMENT);
}

TEST_F(ReportsServiceTest, PageTokensRoundTrip) {
  ListCursor c{absl::FromUnixMicros(1700000000123456), "0b7e7dc8-2c1d-4a7a-9b8e-3f1f2f3c4d5e"};
  auto back = ReportsService::DecodePageToken(ReportsService::EncodePageToken(c));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->create_time, c.create_time);
  EXPECT_EQ(back->id, c.id);
}

TEST_F(ReportsServiceTest, ContentIsStreamedInChunksOnceSucceeded) {
  v1::Report created;
  ASSERT_TRUE(stub_->CreateReport(As("acct-a").get(), Valid(), &created).ok());
  v1::GetReportContentRequest req;
  req.set_id(created.id());
  google::api::HttpBody body;
  {
    auto ctx = As("acct-a");
    auto reader = stub_->GetReportContent(ctx.get(), req);
    EXPECT_FALSE(reader->Read(&body));
    EXPECT_EQ(reader->Finish().error_code(), grpc::FAILED_PRECONDITION);
  }
  std::string content;
  for (int i = 0; i < 500; ++i) content += absl::StrCat("code", i, ",2024-01-01,x\n");
  auto w = storage_->Create("artifact-1.csv");
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append(content).ok());
  ASSERT_TRUE((*w)->Commit().ok());
  ReportJob& job = store_.jobs_[created.id()];
  job.state = v1::SUCCEEDED;
  job.artifact_key = "artifact-1.csv";
  job.content_type = "text/csv";

  auto ctx = As("acct-a");
  auto reader = stub_->GetReportContent(ctx.get(), req);
  std::string got;
  int chunks = 0;
  while (reader->Read(&body)) {
    EXPECT_EQ(body.content_type(), "text/csv");
    EXPECT_LE(body.data().size(), 1000u);
    got += body.data();
    ++chunks;
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(got, content);
  EXPECT_GT(chunks, 5);

  auto other = As("acct-b");
  auto denied = stub_->GetReportContent(other.get(), req);
  EXPECT_FALSE(denied->Read(&body));
  EXPECT_EQ(denied->Finish().error_code(), grpc::NOT_FOUND);
}

}  // namespace
}  // namespace kurt::reports
