// ReportsRpcs over a fake store and a real directory storage, called as plain functions; the
// gRPC adapter only for what it adds (the account check).
#include "services/reports/reports_rpcs.h"

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "platform/grpc/pagination.h"
#include "services/reports/reports_service.h"

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
    if (it == jobs_.end() || it->second.account_id != account) {
      return absl::NotFoundError("no");
    }
    return it->second;
  }
  absl::StatusOr<std::vector<ReportJob>> List(
      const std::string& account, int limit,
      const std::optional<platform::PageKey>& after) override {
    std::vector<ReportJob> out;
    for (auto it = jobs_.rbegin(); it != jobs_.rend(); ++it) {
      if (it->second.account_id != account) {
        continue;
      }
      if (after && it->second.id >= after->key) {
        continue;
      }
      if (static_cast<int>(out.size()) == limit) {
        break;
      }
      out.push_back(it->second);
    }
    return out;
  }
  absl::StatusOr<ReportJob> Cancel(const std::string& account, const std::string& id) override {
    auto job = Get(account, id);
    if (!job.ok()) {
      return job;
    }
    if (!job->Terminal()) {
      jobs_[id].state = v1::CANCELLED;
    }
    return jobs_[id];
  }
  absl::StatusOr<bool> OwnsLink(const std::string& account, const std::string& code) override {
    return account == "acct-a" && code == "mine1";
  }

  std::map<std::string, ReportJob> jobs_;
  int n_ = 0;
};

// What GetReportContent writes, message by message.
class CollectingWriter : public ContentWriter {
 public:
  void SendInitialMetadata() override {}
  bool Write(const google::api::HttpBody& body, grpc::WriteOptions) override {
    bodies.push_back(body);
    return true;
  }
  std::vector<google::api::HttpBody> bodies;
};

class ReportsRpcsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) / absl::StrCat("reports-rpcs-", ::getpid());
    DirectoryStorageOptions so;
    so.dir = dir_.string();
    so.fsync = false;
    storage_ = std::make_unique<DirectoryStorage>(so);
    ASSERT_TRUE(storage_->Init().ok());
    ReportsRpcsOptions o;
    o.content_chunk_bytes = 1000;
    rpcs_ = std::make_unique<ReportsRpcs>(o, &store_, storage_.get(), nullptr, &registry_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static platform::Caller As(const std::string& account) { return platform::Caller(account); }

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
  std::unique_ptr<ReportsRpcs> rpcs_;
};

TEST_F(ReportsRpcsTest, BadRequestsSayWhatIsWrong) {
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
    absl::StatusOr<v1::Report> out = rpcs_->CreateReport(As("acct-a"), r);
    EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_EQ(out.status().message().rfind(c.field + ":", 0), 0u) << out.status();
  }
  EXPECT_TRUE(store_.jobs_.empty()) << "bad requests change nothing";
  v1::CreateReportRequest other = Valid();
  other.set_code("notmine");
  EXPECT_EQ(rpcs_->CreateReport(As("acct-a"), other).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ReportsRpcsTest, EveryRpcNeedsAnAccount) {
  ReportsService service(rpcs_.get());
  grpc::ServerContext context;  // no x-kurt-account-id
  v1::CreateReportRequest create = Valid();
  v1::Report report;
  EXPECT_EQ(service.CreateReport(&context, &create, &report).error_code(), grpc::UNAUTHENTICATED);
  v1::GetReportRequest get;
  EXPECT_EQ(service.GetReport(&context, &get, &report).error_code(), grpc::UNAUTHENTICATED);
  v1::ListReportsRequest list;
  v1::ListReportsResponse listed;
  EXPECT_EQ(service.ListReports(&context, &list, &listed).error_code(), grpc::UNAUTHENTICATED);
  v1::CancelReportRequest cancel;
  EXPECT_EQ(service.CancelReport(&context, &cancel, &report).error_code(), grpc::UNAUTHENTICATED);
  v1::GetReportContentRequest content;
  EXPECT_EQ(service.GetReportContent(&context, &content, nullptr).error_code(),
            grpc::UNAUTHENTICATED);
  EXPECT_TRUE(store_.jobs_.empty());
}

TEST_F(ReportsRpcsTest, CreateGetCancelWithOwnership) {
  v1::CreateReportRequest r = Valid();
  r.set_code("mine1");
  r.set_request_id("retry-1");
  absl::StatusOr<v1::Report> created = rpcs_->CreateReport(As("acct-a"), r);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->state(), v1::PENDING);
  absl::StatusOr<v1::Report> again = rpcs_->CreateReport(As("acct-a"), r);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->id(), created->id()) << "the same request_id finds the same job";

  v1::GetReportRequest get;
  get.set_id(created->id());
  absl::StatusOr<v1::Report> got = rpcs_->GetReport(As("acct-a"), get);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->code(), "mine1");
  EXPECT_EQ(rpcs_->GetReport(As("acct-b"), get).status().code(), absl::StatusCode::kNotFound);
  get.set_id("not-a-uuid");
  EXPECT_EQ(rpcs_->GetReport(As("acct-a"), get).status().code(), absl::StatusCode::kNotFound);

  v1::CancelReportRequest cancel;
  cancel.set_id(created->id());
  EXPECT_EQ(rpcs_->CancelReport(As("acct-b"), cancel).status().code(), absl::StatusCode::kNotFound);
  absl::StatusOr<v1::Report> cancelled = rpcs_->CancelReport(As("acct-a"), cancel);
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_EQ(cancelled->state(), v1::CANCELLED);
  EXPECT_TRUE(rpcs_->CancelReport(As("acct-a"), cancel).ok()) << "idempotent";
  store_.jobs_[created->id()].state = v1::SUCCEEDED;
  EXPECT_EQ(rpcs_->CancelReport(As("acct-a"), cancel).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(ReportsRpcsTest, ListPagesThroughEveryReport) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(rpcs_->CreateReport(As("acct-a"), Valid()).ok());
  }
  ASSERT_TRUE(rpcs_->CreateReport(As("acct-b"), Valid()).ok());
  std::vector<std::string> seen;
  std::string token;
  int pages = 0;
  do {
    v1::ListReportsRequest req;
    req.set_page_size(2);
    req.set_page_token(token);
    absl::StatusOr<v1::ListReportsResponse> res = rpcs_->ListReports(As("acct-a"), req);
    ASSERT_TRUE(res.ok()) << res.status();
    for (const auto& r : res->reports()) {
      seen.push_back(r.id());
    }
    token = res->next_page_token();
    ++pages;
  } while (!token.empty() && pages < 10);
  EXPECT_EQ(seen.size(), 5u);
  EXPECT_EQ(pages, 3);
  v1::ListReportsRequest bad;
  bad.set_page_token("garbage");
  EXPECT_EQ(rpcs_->ListReports(As("acct-a"), bad).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(ReportsRpcsTest, PageTokensNameTheLastReportOfThePage) {
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(rpcs_->CreateReport(As("acct-a"), Valid()).ok());
  }
  v1::ListReportsRequest req;
  req.set_page_size(2);
  absl::StatusOr<v1::ListReportsResponse> res = rpcs_->ListReports(As("acct-a"), req);
  ASSERT_TRUE(res.ok()) << res.status();
  ASSERT_EQ(res->reports_size(), 2);
  const ReportJob& last = store_.jobs_.at(res->reports(1).id());
  auto back = platform::ReadPageRequest(2, res->next_page_token(), IsReportId);
  ASSERT_TRUE(back.ok());
  ASSERT_TRUE(back->after.has_value());
  EXPECT_EQ(back->after->time, last.create_time);
  EXPECT_EQ(back->after->key, last.id);
}

TEST_F(ReportsRpcsTest, ContentIsStreamedInChunksOnceSucceeded) {
  absl::StatusOr<v1::Report> created = rpcs_->CreateReport(As("acct-a"), Valid());
  ASSERT_TRUE(created.ok()) << created.status();
  v1::GetReportContentRequest req;
  req.set_id(created->id());
  {
    CollectingWriter writer;
    EXPECT_EQ(rpcs_->GetReportContent(As("acct-a"), req, &writer).code(),
              absl::StatusCode::kFailedPrecondition);
    EXPECT_TRUE(writer.bodies.empty());
  }
  std::string content;
  for (int i = 0; i < 500; ++i) {
    content += absl::StrCat("code", i, ",2024-01-01,x\n");
  }
  auto w = storage_->Create("artifact-1.csv");
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append(content).ok());
  ASSERT_TRUE((*w)->Commit().ok());
  ReportJob& job = store_.jobs_[created->id()];
  job.state = v1::SUCCEEDED;
  job.artifact_key = "artifact-1.csv";
  job.content_type = "text/csv";

  CollectingWriter writer;
  absl::Status streamed = rpcs_->GetReportContent(As("acct-a"), req, &writer);
  ASSERT_TRUE(streamed.ok()) << streamed;
  std::string got;
  for (const google::api::HttpBody& body : writer.bodies) {
    EXPECT_EQ(body.content_type(), "text/csv");
    EXPECT_LE(body.data().size(), 1000u);
    got += body.data();
  }
  EXPECT_EQ(got, content);
  EXPECT_GT(writer.bodies.size(), 5u);

  CollectingWriter denied;
  EXPECT_EQ(rpcs_->GetReportContent(As("acct-b"), req, &denied).code(),
            absl::StatusCode::kNotFound);
  EXPECT_TRUE(denied.bodies.empty());
}

}  // namespace
}  // namespace kurt::reports
