// The limits on reports against the real PostgreSQL and the real artifact directory: the
// per-account quota under concurrent requests, the sweep of temporaries that killed writers left,
// and the retention period (reports EXPIRED, artifacts deleted once, by several janitors at once).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <latch>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "platform/grpc/handler.h"
#include "platform/grpc/timestamps.h"
#include "platform/pg/pg.h"
#include "services/report-worker/artifact_janitor.h"
#include "services/report-worker/janitor_store.h"
#include "services/reports/artifact_storage.h"
#include "services/reports/reports_rpcs.h"
#include "services/reports/reports_store.h"
#include "tests/reports/report_test_support.h"

namespace kurt::testing {
namespace {

namespace rv1 = kurt::reports::v1;
using report_worker::ArtifactJanitor;
using report_worker::JanitorOptions;
using report_worker::PgJanitorStore;
using reports::DirectoryStorage;
using reports::DirectoryStorageOptions;
using reports::PgReportsStore;
using reports::PgReportsStoreOptions;
using reports::ReportQuota;
using reports::ReportsRpcs;

const absl::Time kStart =
    absl::FromCivil(absl::CivilSecond(2026, 1, 5, 0, 0, 0), absl::UTCTimeZone());

rv1::CreateReportRequest CsvRequest(const std::string& request_id) {
  rv1::CreateReportRequest r;
  r.set_kind(rv1::CLICKS_CSV);
  platform::SetTimestamp(kStart, r.mutable_start_time());
  platform::SetTimestamp(kStart + absl::Hours(1), r.mutable_end_time());
  r.set_request_id(request_id);
  return r;
}

// The value of one series (`name{labels}`) in the registry's exposition; 0 when absent.
double Metric(const metrics::Registry& registry, const std::string& series) {
  for (absl::string_view line : absl::StrSplit(registry.Render(), '\n')) {
    if (absl::ConsumePrefix(&line, series + " ")) {
      double v = 0;
      return absl::SimpleAtod(line, &v) ? v : -1;
    }
  }
  return 0;
}

// What GetReportContent writes.
class Collect : public reports::ContentWriter {
 public:
  void SendInitialMetadata() override {}
  bool Write(const google::api::HttpBody& body, grpc::WriteOptions) override {
    data += body.data();
    return true;
  }
  std::string data;
};

// The temporary files in `dir`, by name.
std::set<std::string> Temporaries(const std::string& dir) {
  std::set<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (absl::StartsWith(e.path().filename().string(), ".tmp-")) {
      out.insert(e.path().filename().string());
    }
  }
  return out;
}

// A writer of `key` killed (SIGKILL) in the middle of its artifact, as a worker killed mid-report:
// its process ends with 2 MiB written to its temporary file and neither Commit nor destructor run.
void KilledWriter(const std::string& dir, const std::string& key) {
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    DirectoryStorageOptions o;
    o.dir = dir;
    o.fsync = false;
    DirectoryStorage storage(o);
    auto writer = storage.Create(key);
    if (writer.ok()) {
      const std::string rows(size_t{2} << 20, 'x');
      (void)(*writer)->Append(rows);
      (void)(*writer)->Append("more");
    }
    ::raise(SIGKILL);
    ::_exit(1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

// The temporary file of `key` (the one a killed writer left).
std::string TemporaryOf(const std::string& dir, const std::string& key) {
  for (const std::string& name : Temporaries(dir)) {
    if (absl::StartsWith(name, absl::StrCat(".tmp-", key, "-"))) {
      return name;
    }
  }
  return "";
}

class ReportLimitsTest : public ::testing::Test {
 protected:
  ReportLimitsTest() : cluster_(Options(db_)) {
    DirectoryStorageOptions o;
    o.dir = dir_;
    o.fsync = false;
    storage_ = std::make_unique<DirectoryStorage>(o);
    EXPECT_TRUE(storage_->Init().ok());
  }

  static pg::ClusterOptions Options(const ScratchDatabase& db) {
    pg::ClusterOptions o = db.ClusterOptions();
    o.primary.max_connections = 32;
    return o;
  }

  std::unique_ptr<PgReportsStore> Store(ReportQuota quota) {
    PgReportsStoreOptions o;
    o.quota = quota;
    return std::make_unique<PgReportsStore>(o, &cluster_);
  }

  // A new job of `account` (no quota), its id.
  std::string NewJob(const std::string& account) {
    auto store = Store({.max_active = 0, .max_per_day = 0});
    ReportsRpcs rpcs({}, store.get(), storage_.get(), nullptr, &scratch_registry_);
    auto report = rpcs.CreateReport(platform::Caller(account), CsvRequest(""));
    EXPECT_TRUE(report.ok()) << report.status();
    return report.ok() ? report->id() : "";
  }

  std::string Sql(const std::string& sql) { return QueryValue(db_.primary_url(), sql); }
  int64_t Count(const std::string& sql) { return QueryInt(db_.primary_url(), sql); }

  ScratchDatabase db_;
  pg::PgCluster cluster_;
  std::string dir_ = TempDir("kurt-report-limits-");
  std::unique_ptr<DirectoryStorage> storage_;
  metrics::Registry registry_;
  metrics::Registry scratch_registry_;
};

TEST_F(ReportLimitsTest, ConcurrentCreatesNeverExceedTheActiveQuota) {
  auto store = Store({.max_active = 3, .max_per_day = 0});
  ReportsRpcs rpcs({}, store.get(), storage_.get(), nullptr, &registry_);

  // 24 requests of one account at the same instant, on 24 connections.
  constexpr int kRequests = 24;
  std::latch go(kRequests);
  std::atomic<int> created{0}, refused{0}, other{0};
  std::string message;
  std::mutex mu;
  std::vector<std::thread> clients;
  clients.reserve(kRequests);
  for (int i = 0; i < kRequests; ++i) {
    clients.emplace_back([&, i] {
      go.arrive_and_wait();
      auto r = rpcs.CreateReport(platform::Caller("acct-q"), CsvRequest(absl::StrCat("q-", i)));
      if (r.ok()) {
        ++created;
      } else if (absl::IsResourceExhausted(r.status())) {
        ++refused;
        std::lock_guard<std::mutex> lock(mu);
        message = std::string(r.status().message());
      } else {
        ++other;
        ADD_FAILURE() << r.status();
      }
    });
  }
  for (auto& c : clients) {
    c.join();
  }
  EXPECT_EQ(created, 3);
  EXPECT_EQ(refused, kRequests - 3);
  EXPECT_EQ(other, 0);
  EXPECT_TRUE(absl::StrContains(message, "may have 3 reports PENDING or RUNNING at once"))
      << message;
  // Refusals change nothing: three jobs, three events.
  EXPECT_EQ(Count("SELECT count(*) FROM report_jobs WHERE account_id = 'acct-q'"), 3);
  EXPECT_EQ(Count("SELECT count(*) FROM outbox"), 3);
  EXPECT_EQ(Metric(registry_, "kurt_reports_quota_refusals_total{limit=\"active\"}"),
            kRequests - 3);

  // A retry of an accepted request is answered with its job, quota or not.
  const std::string accepted =
      Sql("SELECT request_id FROM report_jobs WHERE account_id = 'acct-q' LIMIT 1");
  auto retried = rpcs.CreateReport(platform::Caller("acct-q"), CsvRequest(accepted));
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ(retried->request_id(), accepted);
  // Another account has a quota of its own.
  EXPECT_TRUE(rpcs.CreateReport(platform::Caller("acct-other"), CsvRequest("o-1")).ok());

  // A cancelled (or finished) report leaves room for one more.
  rv1::CancelReportRequest cancel;
  cancel.set_id(retried->id());
  ASSERT_TRUE(rpcs.CancelReport(platform::Caller("acct-q"), cancel).ok());
  EXPECT_TRUE(rpcs.CreateReport(platform::Caller("acct-q"), CsvRequest("q-after-1")).ok());
  EXPECT_TRUE(absl::IsResourceExhausted(
      rpcs.CreateReport(platform::Caller("acct-q"), CsvRequest("q-after-2")).status()));
  EXPECT_EQ(Count("SELECT count(*) FROM report_jobs WHERE account_id = 'acct-q'"), 4);
}

TEST_F(ReportLimitsTest, TheDailyQuotaCountsTheLast24Hours) {
  auto store = Store({.max_active = 0, .max_per_day = 4});
  ReportsRpcs rpcs({}, store.get(), storage_.get(), nullptr, &registry_);
  for (int i = 0; i < 4; ++i) {
    auto r = rpcs.CreateReport(platform::Caller("acct-d"), CsvRequest(absl::StrCat("d-", i)));
    ASSERT_TRUE(r.ok()) << r.status();
    rv1::CancelReportRequest cancel;  // cancelled reports count all the same
    cancel.set_id(r->id());
    ASSERT_TRUE(rpcs.CancelReport(platform::Caller("acct-d"), cancel).ok());
  }
  auto refused = rpcs.CreateReport(platform::Caller("acct-d"), CsvRequest("d-4"));
  ASSERT_TRUE(absl::IsResourceExhausted(refused.status())) << refused.status();
  EXPECT_TRUE(absl::StrContains(refused.status().message(), "may create 4 reports in 24 hours"))
      << refused.status();
  // It says when the next one can be made: 24 hours after the oldest of the four.
  const std::string next =
      Sql("SELECT to_char((min(create_time) + interval '1 day') AT TIME ZONE 'UTC', "
          "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM report_jobs WHERE account_id = 'acct-d'");
  EXPECT_TRUE(absl::StrContains(refused.status().message(), absl::StrCat("after ", next)))
      << refused.status() << " vs " << next;
  EXPECT_EQ(Metric(registry_, "kurt_reports_quota_refusals_total{limit=\"daily\"}"), 1);

  // Once the oldest is more than 24 hours old, there is room for one.
  Exec(db_.primary_url(),
       "UPDATE report_jobs SET create_time = create_time - interval '25 hours' WHERE id = "
       "(SELECT id FROM report_jobs WHERE account_id = 'acct-d' ORDER BY create_time LIMIT 1)");
  EXPECT_TRUE(rpcs.CreateReport(platform::Caller("acct-d"), CsvRequest("d-5")).ok());
  EXPECT_TRUE(absl::IsResourceExhausted(
      rpcs.CreateReport(platform::Caller("acct-d"), CsvRequest("d-6")).status()));
  EXPECT_EQ(Count("SELECT count(*) FROM report_jobs WHERE account_id = 'acct-d'"), 5);
}

TEST_F(ReportLimitsTest, TheSweepRemovesOnlyTemporariesThatNoLiveAttemptOwns) {
  // Three attempts whose writers were killed mid-write: two are over (their reports failed), one
  // is still RUNNING at that attempt (a slow writer whose file has not changed for two hours).
  const std::string stale = NewJob("acct-s");
  const std::string fresh = NewJob("acct-s");
  const std::string live = NewJob("acct-s");
  Exec(db_.primary_url(),
       absl::StrCat("UPDATE report_jobs SET state = 'FAILED', attempts = 1 WHERE id IN ('", stale,
                    "', '", fresh, "')"));
  Exec(db_.primary_url(),
       absl::StrCat("UPDATE report_jobs SET state = 'RUNNING', attempts = 1, worker_id = 'w1', "
                    "lease_until = now() + interval '15 seconds' WHERE id = '",
                    live, "'"));
  for (const std::string& id : {stale, fresh, live}) {
    KilledWriter(dir_, absl::StrCat(id, "-1.csv"));
  }
  // A committed artifact of long ago is no temporary.
  auto committed = storage_->Create("committed-1.csv");
  ASSERT_TRUE(committed.ok());
  ASSERT_TRUE((*committed)->Append("a,b\n").ok());
  ASSERT_TRUE((*committed)->Commit().ok());
  const auto two_hours_ago = std::filesystem::file_time_type::clock::now() - std::chrono::hours(2);
  std::filesystem::last_write_time(std::filesystem::path(dir_) / "committed-1.csv", two_hours_ago);
  const std::string stale_file = TemporaryOf(dir_, absl::StrCat(stale, "-1.csv"));
  const std::string fresh_file = TemporaryOf(dir_, absl::StrCat(fresh, "-1.csv"));
  const std::string live_file = TemporaryOf(dir_, absl::StrCat(live, "-1.csv"));
  ASSERT_FALSE(stale_file.empty());
  ASSERT_FALSE(fresh_file.empty());
  ASSERT_FALSE(live_file.empty());
  EXPECT_EQ(std::filesystem::file_size(std::filesystem::path(dir_) / stale_file),
            (size_t{2} << 20));
  std::filesystem::last_write_time(std::filesystem::path(dir_) / stale_file, two_hours_ago);
  std::filesystem::last_write_time(std::filesystem::path(dir_) / live_file, two_hours_ago);

  PgJanitorStore store(&cluster_.primary());
  JanitorOptions options;
  options.temp_min_age = absl::Hours(1);
  options.retention = absl::ZeroDuration();
  ArtifactJanitor janitor(options, &store, storage_.get(), &registry_);
  auto swept = janitor.SweepTemporaries();
  ASSERT_TRUE(swept.ok()) << swept.status();
  EXPECT_EQ(*swept, 1);
  EXPECT_EQ(Temporaries(dir_), (std::set<std::string>{fresh_file, live_file}));
  EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(dir_) / "committed-1.csv"));
  EXPECT_EQ(Metric(registry_, "kurt_report_worker_temporaries_swept_total"), 1);
  EXPECT_EQ(*janitor.SweepTemporaries(), 0);

  // Once the slow attempt is over (taken over by attempt 2), its file goes too.
  Exec(db_.primary_url(),
       absl::StrCat("UPDATE report_jobs SET attempts = 2 WHERE id = '", live, "'"));
  EXPECT_EQ(*janitor.SweepTemporaries(), 1);
  EXPECT_EQ(Temporaries(dir_), (std::set<std::string>{fresh_file}));
  EXPECT_EQ(Metric(registry_, "kurt_report_worker_temporaries_swept_total"), 2);
}

TEST_F(ReportLimitsTest, RetentionExpiresOldReportsAndDeletesEachArtifactOnce) {
  // 120 reports that SUCCEEDED 31 days ago and 10 that did 29 days ago, each with its artifact.
  constexpr int kOld = 120, kRecent = 10;
  std::vector<std::string> old_ids, recent_ids;
  for (int i = 0; i < kOld + kRecent; ++i) {
    const std::string id = NewJob("acct-r");
    const std::string key = absl::StrCat(id, "-1.csv");
    auto w = storage_->Create(key);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Append(absl::StrCat("code,n\nr", i, ",1\n")).ok());
    ASSERT_TRUE((*w)->Commit().ok());
    Exec(db_.primary_url(),
         absl::StrCat("UPDATE report_jobs SET state = 'SUCCEEDED', attempts = 1, artifact_key = '",
                      key, "', content_type = 'text/csv', finish_time = now() - interval '",
                      i < kOld ? 31 : 29, " days' WHERE id = '", id, "'"));
    (i < kOld ? old_ids : recent_ids).push_back(id);
  }

  // Two janitors (two worker replicas) at once, in batches smaller than the work.
  JanitorOptions options;
  options.retention = absl::Hours(24 * 30);
  options.batch = 25;
  PgJanitorStore store_a(&cluster_.primary()), store_b(&cluster_.primary());
  metrics::Registry registry_b;
  ArtifactJanitor a(options, &store_a, storage_.get(), &registry_);
  ArtifactJanitor b(options, &store_b, storage_.get(), &registry_b);
  absl::StatusOr<int> deleted_a, deleted_b;
  std::thread ta([&] { deleted_a = a.ExpireArtifacts(); });
  std::thread tb([&] { deleted_b = b.ExpireArtifacts(); });
  ta.join();
  tb.join();
  ASSERT_TRUE(deleted_a.ok()) << deleted_a.status();
  ASSERT_TRUE(deleted_b.ok()) << deleted_b.status();
  EXPECT_EQ(*deleted_a + *deleted_b, kOld);
  EXPECT_EQ(Metric(registry_, "kurt_report_worker_artifacts_expired_total") +
                Metric(registry_b, "kurt_report_worker_artifacts_expired_total"),
            kOld);
  EXPECT_EQ(Count("SELECT count(*) FROM report_jobs WHERE state = 'EXPIRED' AND artifact_key = "
                  "'' AND expire_time IS NOT NULL"),
            kOld);
  EXPECT_EQ(Count("SELECT count(*) FROM report_jobs WHERE state = 'SUCCEEDED'"), kRecent);
  for (const std::string& id : old_ids) {
    EXPECT_FALSE(std::filesystem::exists(std::filesystem::path(dir_) / (id + "-1.csv"))) << id;
  }
  for (const std::string& id : recent_ids) {
    EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(dir_) / (id + "-1.csv"))) << id;
  }

  // The API: an expired report says so, with when; its content is refused, naming why.
  auto rstore = Store({});
  ReportsRpcs rpcs({}, rstore.get(), storage_.get(), nullptr, &scratch_registry_);
  rv1::GetReportRequest get;
  get.set_id(old_ids[0]);
  auto report = rpcs.GetReport(platform::Caller("acct-r"), get);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->state(), rv1::EXPIRED);
  EXPECT_TRUE(report->has_expire_time());
  EXPECT_EQ(report->content_type(), "text/csv");
  rv1::GetReportContentRequest content;
  content.set_id(old_ids[0]);
  Collect out;
  absl::Status s = rpcs.GetReportContent(platform::Caller("acct-r"), content, &out);
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "is EXPIRED: its content was deleted at ")) << s;
  EXPECT_TRUE(out.data.empty());
  content.set_id(recent_ids[0]);
  Collect recent;
  ASSERT_TRUE(rpcs.GetReportContent(platform::Caller("acct-r"), content, &recent).ok());
  EXPECT_TRUE(absl::StartsWith(recent.data, "code,n\n"));

  // A janitor that died between the two steps left an EXPIRED report with its artifact: the next
  // pass deletes it. Nothing else is touched.
  Exec(db_.primary_url(),
       absl::StrCat("UPDATE report_jobs SET state = 'EXPIRED', expire_time = now() WHERE id = '",
                    recent_ids[1], "'"));
  auto again = a.ExpireArtifacts();
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, 1);
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::path(dir_) / (recent_ids[1] + "-1.csv")));
  EXPECT_EQ(
      Sql(absl::StrCat("SELECT artifact_key FROM report_jobs WHERE id = '", recent_ids[1], "'")),
      "");
  EXPECT_EQ(Count("SELECT count(*) FROM report_jobs WHERE state = 'SUCCEEDED'"), kRecent - 1);
}

TEST_F(ReportLimitsTest, ContentOfAReportExpiredWhileItWasBeingAskedForSaysExpired) {
  // The caller read SUCCEEDED; the janitor expires it before the artifact is opened.
  const std::string id = NewJob("acct-x");
  Exec(db_.primary_url(),
       absl::StrCat("UPDATE report_jobs SET state = 'EXPIRED', expire_time = now(), "
                    "artifact_key = '",
                    id, "-1.csv' WHERE id = '", id, "'"));
  // As GetReportContent sees it at first: a store whose Get answers SUCCEEDED once.
  class StaleOnce : public reports::ReportsStore {
   public:
    explicit StaleOnce(reports::ReportsStore* real) : real_(real) {}
    absl::StatusOr<reports::CreateResult> Create(const reports::NewReport& r) override {
      return real_->Create(r);
    }
    absl::StatusOr<reports::ReportJob> Get(const std::string& account,
                                           const std::string& id) override {
      auto job = real_->Get(account, id);
      if (job.ok() && first_) {
        first_ = false;
        job->state = rv1::SUCCEEDED;
      }
      return job;
    }
    absl::StatusOr<std::vector<reports::ReportJob>> List(
        const std::string& account, int limit,
        const std::optional<platform::PageKey>& after) override {
      return real_->List(account, limit, after);
    }
    absl::StatusOr<reports::ReportJob> Cancel(const std::string& account,
                                              const std::string& id) override {
      return real_->Cancel(account, id);
    }
    absl::StatusOr<bool> OwnsLink(const std::string& account, const std::string& code) override {
      return real_->OwnsLink(account, code);
    }

   private:
    reports::ReportsStore* real_;
    bool first_ = true;
  };
  auto real = Store({});
  StaleOnce stale(real.get());
  ReportsRpcs rpcs({}, &stale, storage_.get(), nullptr, &registry_);
  rv1::GetReportContentRequest content;
  content.set_id(id);
  Collect out;
  absl::Status s = rpcs.GetReportContent(platform::Caller("acct-x"), content, &out);
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "EXPIRED")) << s;
}

}  // namespace
}  // namespace kurt::testing
