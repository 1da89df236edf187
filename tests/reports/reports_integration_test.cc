// The report workflow in one process against the real stack (tests/reports/pipeline.h): reports,
// their content, idempotency, duplicates, cancellation, notifications (lists, acks, live streams
// on any replica with resume) and webhooks.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "platform/grpc/handler.h"
#include "platform/grpc/pagination.h"
#include "platform/grpc/timestamps.h"
#include "platform/pg/pg.h"
#include "services/notifications/notification_store.h"
#include "tests/reports/pipeline.h"
#include "tests/reports/report_test_support.h"
#include "tests/support/wait_until.h"

namespace kurt::testing {
namespace {

namespace rv1 = kurt::reports::v1;
namespace nv1 = kurt::notifications::v1;

const absl::Time kStart =
    absl::FromCivil(absl::CivilSecond(2026, 1, 5, 0, 0, 0), absl::UTCTimeZone());

rv1::CreateReportRequest Request(rv1::ReportKind kind, absl::Time start, absl::Time end) {
  rv1::CreateReportRequest r;
  r.set_kind(kind);
  platform::SetTimestamp(start, r.mutable_start_time());
  platform::SetTimestamp(end, r.mutable_end_time());
  return r;
}

int64_t Notifications(Pipeline& p, const std::string& report_id) {
  return QueryInt(
      p.db().primary_url(),
      absl::StrCat("SELECT count(*) FROM notifications WHERE report_id = '", report_id, "'"));
}

class ReportsIntegrationTest : public ::testing::Test {};

// The gRPC servers check x-kurt-edge-secret for every service (platform/grpc_server): reports
// and notifications refuse an account named without it, before their handlers run.
TEST_F(ReportsIntegrationTest, AnAccountWithoutTheEdgeSecretIsRefusedAndChangesNothing) {
  PipelineOptions options;
  options.edge_secret = "reports-edge-secret";
  Pipeline p(options);
  auto with_secret = [](const std::string& account, const std::string& secret) {
    auto ctx = As(account);
    if (!secret.empty()) {
      ctx->AddMetadata("x-kurt-edge-secret", secret);
    }
    return ctx;
  };
  const std::string account = RandomName("acct-trust-");
  const rv1::CreateReportRequest req = Request(rv1::CLICKS_CSV, kStart, kStart + absl::Hours(1));
  for (const std::string& secret : {std::string(), std::string("wrong-secret")}) {
    rv1::Report report;
    grpc::Status refused =
        p.reports().CreateReport(with_secret(account, secret).get(), req, &report);
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAUTHENTICATED) << secret;
    EXPECT_NE(refused.error_message().find("x-kurt-edge-secret"), std::string::npos)
        << refused.error_message();
    nv1::ListNotificationsResponse listed;
    EXPECT_EQ(p.notifications(0)
                  .stub
                  ->ListNotifications(with_secret(account, secret).get(),
                                      nv1::ListNotificationsRequest(), &listed)
                  .error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  const std::string count =
      absl::StrCat("SELECT count(*) FROM report_jobs WHERE account_id = '", account, "'");
  EXPECT_EQ(QueryInt(p.db().primary_url(), count), 0) << "a refused call created nothing";
  EXPECT_EQ(QueryInt(p.db().primary_url(), "SELECT count(*) FROM outbox"), 0);

  rv1::Report created;
  grpc::Status ok =
      p.reports().CreateReport(with_secret(account, "reports-edge-secret").get(), req, &created);
  ASSERT_TRUE(ok.ok()) << ok.error_message();
  EXPECT_EQ(QueryInt(p.db().primary_url(), count), 1);
  nv1::ListNotificationsResponse listed;
  EXPECT_TRUE(p.notifications(0)
                  .stub
                  ->ListNotifications(with_secret(account, "reports-edge-secret").get(),
                                      nv1::ListNotificationsRequest(), &listed)
                  .ok());
}

TEST_F(ReportsIntegrationTest, CsvReportHoldsExactlyTheCallersClicksInTheRange) {
  Pipeline p;
  SeedClicks(p.db().primary_url(), "acct-a", {"aaa111", "bbb222"}, 3000, kStart, absl::Seconds(10));
  SeedClicks(p.db().primary_url(), "acct-b", {"ccc333"}, 500, kStart, absl::Seconds(10));
  // One of acct-a's clicks outside the range, one with text that needs CSV quoting, and one whose
  // referrer and user agent a spreadsheet would run as formulas.
  Exec(p.db().primary_url(),
       "INSERT INTO clicks (code, click_time, event_id, referrer, user_agent, client_hash, "
       "kafka_partition, kafka_offset) VALUES "
       "('aaa111', '2025-12-31 23:59:59+00', 'early', '', '', '', 0, 0), "
       "('bbb222', '2026-01-05 00:00:00.5+00', 'quoted', 'https://x.example/?a=1,b=\"2\"', "
       "'Agent, \"quoted\"', 'h', 0, 0), "
       "('bbb222', '2026-01-05 00:00:01+00', 'formula', '=HYPERLINK(\"http://evil.example\")', "
       "'-2+3', 'h', 0, 0)");
  p.db().WaitForReplica();
  const absl::Time end = kStart + absl::Hours(6);

  rv1::Report created;
  ASSERT_TRUE(p.reports()
                  .CreateReport(As("acct-a").get(), Request(rv1::CLICKS_CSV, kStart, end), &created)
                  .ok());
  EXPECT_EQ(created.state(), rv1::PENDING);
  rv1::Report done = p.WaitFinal("acct-a", created.id());
  ASSERT_EQ(done.state(), rv1::SUCCEEDED) << done.error();
  // 2 × 2160 clicks in 6 h at one per 10 s, "quoted" and "formula".
  EXPECT_EQ(done.row_count(), 4322);
  EXPECT_EQ(done.progress_rows(), done.row_count());
  EXPECT_EQ(done.content_type(), "text/csv");
  EXPECT_EQ(done.attempts(), 1);

  std::string csv, content_type;
  ASSERT_TRUE(p.Download("acct-a", created.id(), &csv, &content_type).ok());
  EXPECT_EQ(content_type, "text/csv");
  EXPECT_EQ(static_cast<int64_t>(csv.size()), done.size_bytes());
  const std::string quoted_line =
      "\"bbb222\",2026-01-05 00:00:00.5+00,\"https://x.example/?a=1,b=\"\"2\"\"\",\"Agent, "
      "\"\"quoted\"\"\",h,quoted,false,\"\"\n";
  ASSERT_TRUE(absl::StrContains(csv, quoted_line)) << csv.substr(0, 2000);
  // Formulas are neutralized (OWASP): a leading single quote, the cell quoted.
  EXPECT_TRUE(
      absl::StrContains(csv,
                        "\"bbb222\",2026-01-05 00:00:01+00,"
                        "\"'=HYPERLINK(\"\"http://evil.example\"\")\",\"'-2+3\",h,formula,false,"
                        "\"\"\n"))
      << csv.substr(0, 2000);
  // Everything else, byte for byte, against an independent query.
  std::string without_quoted = absl::StrReplaceAll(csv, {{quoted_line, ""}});
  Exec(p.db().primary_url(), "DELETE FROM clicks WHERE event_id = 'quoted'");
  EXPECT_EQ(without_quoted, ExpectedCsv(p.db().primary_url(), "acct-a", kStart, end));

  // The other account cannot see it; the notification arrives once.
  std::string other;
  EXPECT_EQ(p.Download("acct-b", created.id(), &other).error_code(), grpc::NOT_FOUND);
  ASSERT_TRUE(WaitUntil([&] { return Notifications(p, created.id()) == 1; }, absl::Seconds(20)));
  nv1::ListNotificationsRequest list;
  nv1::ListNotificationsResponse listed;
  ASSERT_TRUE(p.notifications(1).stub->ListNotifications(As("acct-a").get(), list, &listed).ok());
  ASSERT_EQ(listed.notifications_size(), 1);
  const nv1::Notification& n = listed.notifications(0);
  EXPECT_EQ(n.type(), "report.completed");
  EXPECT_EQ(n.report().report_id(), created.id());
  EXPECT_EQ(n.report().state(), rv1::SUCCEEDED);
  EXPECT_EQ(n.report().row_count(), 4322);
  EXPECT_EQ(n.report().content_path(), absl::StrCat("/v1/reports/", created.id(), "/content"));
  ASSERT_TRUE(p.notifications(0).stub->ListNotifications(As("acct-b").get(), list, &listed).ok());
  EXPECT_EQ(listed.notifications_size(), 0);
}

// Clicks partitions are daily, and only ended days carry the (code, click_time) B-tree (migration
// 0020; kurt-analytics builds it after the day). A report over yesterday, indexed, and today,
// not, holds every click of the account's links and no other account's.
TEST_F(ReportsIntegrationTest, ReportsSpanningAnIndexedDayAndTheCurrentDayHoldEveryClick) {
  Pipeline p;
  const std::string url = p.db().primary_url();
  const absl::TimeZone utc = absl::UTCTimeZone();
  const absl::Time today = absl::FromCivil(absl::ToCivilDay(absl::Now(), utc), utc);
  const absl::Time yesterday = today - absl::Hours(24);
  auto partition = [&](absl::Time day) {
    return absl::StrCat("clicks_", absl::FormatTime("y%Ym%md%d", day, utc));
  };
  // Yesterday: 300 per link, a minute apart from 01:00. Today: 200 per link up to now.
  SeedClicks(url, "acct-p", {"pday01", "pday02"}, 300, yesterday + absl::Hours(1),
             absl::Minutes(1));
  const absl::Duration spacing = std::max(absl::Microseconds(1), (absl::Now() - today) / 201);
  SeedClicks(url, "acct-p", {"pday01", "pday02"}, 200, today, spacing);
  SeedClicks(url, "acct-other", {"pday03"}, 200, today, spacing);
  // What the maintenance builds for an ended day (PgClickStore::IndexEndedDays).
  Exec(url, absl::StrCat("CREATE INDEX ", partition(yesterday), "_code_time ON ",
                         partition(yesterday), " (code, click_time)"));
  auto btrees = [&](absl::Time day) {
    return QueryInt(
        url, absl::StrCat("SELECT count(*) FROM pg_indexes WHERE tablename = '", partition(day),
                          "' AND indexdef LIKE '%USING btree (code, click_time)'"));
  };
  ASSERT_EQ(btrees(yesterday), 1);
  ASSERT_EQ(btrees(today), 0) << "the day being written has no B-tree";
  p.db().WaitForReplica();
  const absl::Time end = absl::Now() + absl::Hours(1);

  rv1::Report created;
  ASSERT_TRUE(
      p.reports()
          .CreateReport(As("acct-p").get(), Request(rv1::CLICKS_CSV, yesterday, end), &created)
          .ok());
  rv1::Report done = p.WaitFinal("acct-p", created.id());
  ASSERT_EQ(done.state(), rv1::SUCCEEDED) << done.error();
  EXPECT_EQ(done.row_count(), 2 * 300 + 2 * 200);
  std::string csv;
  ASSERT_TRUE(p.Download("acct-p", created.id(), &csv).ok());
  EXPECT_EQ(csv, ExpectedCsv(url, "acct-p", yesterday, end));

  rv1::Report summary;
  ASSERT_TRUE(
      p.reports()
          .CreateReport(As("acct-p").get(), Request(rv1::SUMMARY_JSON, yesterday, end), &summary)
          .ok());
  done = p.WaitFinal("acct-p", summary.id());
  ASSERT_EQ(done.state(), rv1::SUCCEEDED) << done.error();
  std::string json, content_type;
  ASSERT_TRUE(p.Download("acct-p", summary.id(), &json, &content_type).ok());
  google::protobuf::Struct doc;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json, &doc).ok()) << json;
  const auto& f = doc.fields();
  EXPECT_EQ(f.at("totalClicks").number_value(), 1000);
  const auto& days = f.at("clicksPerDay").list_value();
  ASSERT_EQ(days.values_size(), 2) << json;
  EXPECT_EQ(days.values(0).struct_value().fields().at("clicks").number_value(), 600);
  EXPECT_EQ(days.values(1).struct_value().fields().at("clicks").number_value(), 400);
  EXPECT_EQ(f.at("links").list_value().values_size(), 2);

  // One link's report, the same way.
  rv1::CreateReportRequest one = Request(rv1::CLICKS_CSV, yesterday, end);
  one.set_code("pday02");
  ASSERT_TRUE(p.reports().CreateReport(As("acct-p").get(), one, &created).ok());
  done = p.WaitFinal("acct-p", created.id());
  ASSERT_EQ(done.state(), rv1::SUCCEEDED) << done.error();
  EXPECT_EQ(done.row_count(), 300 + 200);
}

TEST_F(ReportsIntegrationTest, SummaryJsonCountsPerLinkAndDay) {
  Pipeline p;
  SeedClicks(p.db().primary_url(), "acct-s", {"sum001", "sum002", "sum003"}, 200, kStart,
             absl::Minutes(15));  // 200 × 15 min: a bit over two days
  p.db().WaitForReplica();
  rv1::CreateReportRequest req = Request(rv1::SUMMARY_JSON, kStart, kStart + absl::Hours(72));
  rv1::Report created;
  ASSERT_TRUE(p.reports().CreateReport(As("acct-s").get(), req, &created).ok());
  rv1::Report done = p.WaitFinal("acct-s", created.id());
  ASSERT_EQ(done.state(), rv1::SUCCEEDED) << done.error();
  EXPECT_EQ(done.row_count(), 600);
  std::string json, content_type;
  ASSERT_TRUE(p.Download("acct-s", created.id(), &json, &content_type).ok());
  EXPECT_EQ(content_type, "application/json");
  google::protobuf::Struct doc;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json, &doc).ok()) << json;
  const auto& f = doc.fields();
  EXPECT_EQ(f.at("totalClicks").number_value(), 600);
  EXPECT_EQ(f.at("uniqueClients").number_value(), 101);
  EXPECT_EQ(f.at("firstClick").string_value(), "2026-01-05T00:00:00.000000Z");
  ASSERT_EQ(f.at("links").list_value().values_size(), 3);
  EXPECT_EQ(f.at("links").list_value().values(1).struct_value().fields().at("code").string_value(),
            "sum002");
  EXPECT_EQ(
      f.at("links").list_value().values(1).struct_value().fields().at("clicks").number_value(),
      200);
  const auto& days = f.at("clicksPerDay").list_value();
  ASSERT_EQ(days.values_size(), 3);
  EXPECT_EQ(days.values(0).struct_value().fields().at("day").string_value(), "2026-01-05");
  EXPECT_EQ(days.values(0).struct_value().fields().at("clicks").number_value(), 3 * 96);
  EXPECT_EQ(f.at("topReferrers").list_value().values_size(), 7);
  // The seed makes every fourth click a bot's and gives each fifth no country ("ZZ").
  EXPECT_EQ(f.at("botClicks").number_value(), 3 * 50);
  EXPECT_EQ(
      f.at("links").list_value().values(1).struct_value().fields().at("botClicks").number_value(),
      50);
  const auto& countries = f.at("topCountries").list_value();
  ASSERT_EQ(countries.values_size(), 4) << json;
  EXPECT_EQ(countries.values(0).struct_value().fields().at("country").string_value(), "DE");
  EXPECT_EQ(countries.values(0).struct_value().fields().at("clicks").number_value(), 3 * 80);
  EXPECT_EQ(countries.values(3).struct_value().fields().at("country").string_value(), "ZZ");
  EXPECT_EQ(countries.values(3).struct_value().fields().at("clicks").number_value(), 3 * 40);
}

TEST_F(ReportsIntegrationTest, RetriedRequestsAndDuplicateMessagesMakeOneReport) {
  Pipeline p;
  SeedClicks(p.db().primary_url(), "acct-d", {"dup001"}, 100, kStart, absl::Seconds(1));
  p.db().WaitForReplica();
  rv1::CreateReportRequest req = Request(rv1::CLICKS_CSV, kStart, kStart + absl::Hours(1));
  req.set_request_id("client-retry-7");
  rv1::Report first, second;
  ASSERT_TRUE(p.reports().CreateReport(As("acct-d").get(), req, &first).ok());
  ASSERT_TRUE(p.reports().CreateReport(As("acct-d").get(), req, &second).ok());
  EXPECT_EQ(first.id(), second.id());
  req.set_code("dup001");
  EXPECT_EQ(p.reports().CreateReport(As("acct-d").get(), req, &second).error_code(),
            grpc::ALREADY_EXISTS)
      << "one key, different parameters";
  ASSERT_EQ(p.WaitFinal("acct-d", first.id()).state(), rv1::SUCCEEDED);

  // Its request delivered again (as after a crash between ack and commit): nothing new happens.
  reports::ReportJob job;
  job.id = first.id();
  job.account_id = "acct-d";
  job.request_event_id = QueryValue(
      p.db().primary_url(),
      absl::StrCat("SELECT request_event_id FROM report_jobs WHERE id = '", first.id(), "'"));
  std::string payload = reports::RequestedEvent(job).SerializeAsString();
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(
        p.producer()
            .Produce(p.requested_topic(), first.id(), payload, {{"event-id", job.request_event_id}})
            .ok());
  }
  ASSERT_TRUE(p.producer().Flush(absl::Seconds(10)).ok());
  ASSERT_TRUE(WaitUntil([&] { return Notifications(p, first.id()) == 1; }, absl::Seconds(20)));
  absl::SleepFor(absl::Seconds(2));
  rv1::Report after = p.WaitFinal("acct-d", first.id());
  EXPECT_EQ(after.attempts(), 1);
  EXPECT_EQ(after.finish_time().seconds(),
            p.WaitFinal("acct-d", first.id()).finish_time().seconds());
  EXPECT_EQ(Notifications(p, first.id()), 1);
  EXPECT_EQ(QueryInt(p.db().primary_url(),
                     absl::StrCat("SELECT count(*) FROM report_jobs WHERE account_id = 'acct-d'")),
            1);
  EXPECT_EQ(
      QueryInt(p.db().primary_url(), absl::StrCat("SELECT count(*) FROM outbox WHERE event_id = '",
                                                  first.id(), "/completed'")),
      1);
}

TEST_F(ReportsIntegrationTest, CancelStopsARunningReportAtItsNextChunk) {
  PipelineOptions o;
  o.scan_rows_per_second = 20000;
  o.scan_chunk_rows = 1000;
  Pipeline p(o);
  SeedClicks(p.db().primary_url(), "acct-c", {"can001"}, 100000, kStart, absl::Seconds(1));
  p.db().WaitForReplica();
  rv1::Report created;
  ASSERT_TRUE(p.reports()
                  .CreateReport(As("acct-c").get(),
                                Request(rv1::CLICKS_CSV, kStart, kStart + absl::Hours(48)),
                                &created)
                  .ok());
  rv1::GetReportRequest get;
  get.set_id(created.id());
  rv1::Report seen;
  ASSERT_TRUE(WaitUntil(
      [&] {
        return p.reports().GetReport(As("acct-c").get(), get, &seen).ok() &&
               seen.state() == rv1::RUNNING && seen.progress_rows() > 0;
      },
      absl::Seconds(20)))
      << "running with progress";
  rv1::CancelReportRequest cancel;
  cancel.set_id(created.id());
  rv1::Report cancelled;
  ASSERT_TRUE(p.reports().CancelReport(As("acct-c").get(), cancel, &cancelled).ok());
  EXPECT_EQ(cancelled.state(), rv1::CANCELLED);
  EXPECT_TRUE(WaitUntil([&] { return p.worker().running() == 0; }, absl::Seconds(3)))
      << "the worker stopped well before the 5 s the report would take";
  EXPECT_EQ(p.WaitFinal("acct-c", created.id()).state(), rv1::CANCELLED);
  std::string content;
  EXPECT_EQ(p.Download("acct-c", created.id(), &content).error_code(), grpc::FAILED_PRECONDITION);
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(p.artifact_dir())) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 0u) << "the partial artifact is gone";
  EXPECT_EQ(Notifications(p, created.id()), 0) << "a cancellation is not notified";
}

// A report's stream shows it PENDING or RUNNING, its progress as the worker records it, and ends
// with it SUCCEEDED; an account has at most its limit of such streams open.
TEST_F(ReportsIntegrationTest, AReportsStreamShowsItsProgressAndEndsWhenItHasFinished) {
  PipelineOptions o;
  o.scan_rows_per_second = 20000;  // 60,000 rows: about 3 s; the worker records progress often
  o.scan_chunk_rows = 1000;
  o.max_report_streams_per_account = 1;
  Pipeline p(o);
  SeedClicks(p.db().primary_url(), "acct-s", {"str001"}, 60000, kStart, absl::Seconds(1));
  p.db().WaitForReplica();
  rv1::Report created;
  ASSERT_TRUE(p.reports()
                  .CreateReport(As("acct-s").get(),
                                Request(rv1::CLICKS_CSV, kStart, kStart + absl::Hours(48)),
                                &created)
                  .ok());
  rv1::StreamReportRequest request;
  request.set_id(created.id());
  auto context = As("acct-s", absl::Seconds(60));
  std::unique_ptr<grpc::ClientReader<rv1::Report>> stream =
      p.reports().StreamReport(context.get(), request);
  rv1::Report report;
  std::vector<rv1::Report> seen;
  ASSERT_TRUE(stream->Read(&report));
  seen.push_back(report);
  // A second stream of the same account is over its limit of one.
  {
    auto second_context = As("acct-s");
    std::unique_ptr<grpc::ClientReader<rv1::Report>> second =
        p.reports().StreamReport(second_context.get(), request);
    rv1::Report ignored;
    EXPECT_FALSE(second->Read(&ignored));
    EXPECT_EQ(second->Finish().error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  }
  while (stream->Read(&report)) {
    seen.push_back(report);
  }
  grpc::Status finished = stream->Finish();
  ASSERT_TRUE(finished.ok()) << finished.error_message();
  ASSERT_GE(seen.size(), 3u);
  EXPECT_EQ(seen.back().state(), rv1::SUCCEEDED);
  EXPECT_EQ(seen.back().row_count(), 60000);
  int with_progress = 0;
  int64_t last_progress = 0;
  for (size_t i = 0; i + 1 < seen.size(); ++i) {
    EXPECT_TRUE(seen[i].state() == rv1::PENDING || seen[i].state() == rv1::RUNNING)
        << seen[i].ShortDebugString();
    EXPECT_GE(seen[i].progress_rows(), last_progress) << "progress never goes back";
    last_progress = seen[i].progress_rows();
    with_progress += seen[i].state() == rv1::RUNNING && seen[i].progress_rows() > 0 ? 1 : 0;
  }
  EXPECT_GE(with_progress, 1) << "no event showed the report's progress";
  // Another account's stream of it: NOT_FOUND, as for GetReport.
  auto stranger = As("acct-other");
  std::unique_ptr<grpc::ClientReader<rv1::Report>> other =
      p.reports().StreamReport(stranger.get(), request);
  EXPECT_FALSE(other->Read(&report));
  EXPECT_EQ(other->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
}

// Reads a notification stream in the background.
class StreamReader {
 public:
  StreamReader(nv1::NotificationsService::Stub* stub, const std::string& account,
               const std::string& last_event_id) {
    ctx_.AddMetadata("x-kurt-account-id", account);
    if (!last_event_id.empty()) {
      ctx_.AddMetadata("last-event-id", last_event_id);
    }
    ctx_.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
    reader_ = stub->StreamNotifications(&ctx_, nv1::StreamNotificationsRequest());
    thread_ = std::thread([this] {
      nv1::Notification n;
      while (reader_->Read(&n)) {
        absl::MutexLock lock(&mu_);
        got_.push_back(n);
      }
    });
  }
  ~StreamReader() {
    ctx_.TryCancel();
    thread_.join();
    (void)reader_->Finish();
  }
  std::vector<nv1::Notification> Got() {
    absl::MutexLock lock(&mu_);
    return got_;
  }
  bool WaitFor(size_t n, absl::Duration timeout) {
    return WaitUntil([&] { return Got().size() >= n; }, timeout);
  }

 private:
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReader<nv1::Notification>> reader_;
  absl::Mutex mu_;
  std::vector<nv1::Notification> got_;
  std::thread thread_;
};

TEST_F(ReportsIntegrationTest, StreamsDeliverLiveOnAnyReplicaAndResumeAfterLastEventId) {
  Pipeline p;
  SeedClicks(p.db().primary_url(), "acct-n", {"not001"}, 10, kStart, absl::Seconds(1));
  p.db().WaitForReplica();
  auto make_report = [&] {
    rv1::Report r;
    EXPECT_TRUE(p.reports()
                    .CreateReport(As("acct-n").get(),
                                  Request(rv1::CLICKS_CSV, kStart, kStart + absl::Hours(1)), &r)
                    .ok());
    return r.id();
  };
  std::string first = make_report();
  ASSERT_TRUE(WaitUntil([&] { return Notifications(p, first) == 1; }, absl::Seconds(20)));

  // Live streams on both replicas: whichever replica consumes the event, both clients get it.
  StreamReader live_a(p.notifications(0).stub.get(), "acct-n", "");
  StreamReader live_b(p.notifications(1).stub.get(), "acct-n", "");
  StreamReader other(p.notifications(1).stub.get(), "acct-other", "");
  absl::SleepFor(absl::Milliseconds(300));
  std::vector<std::string> ids;
  ids.reserve(4);
  for (int i = 0; i < 4; ++i) {
    ids.push_back(make_report());
  }
  ASSERT_TRUE(live_a.WaitFor(4, absl::Seconds(20)));
  ASSERT_TRUE(live_b.WaitFor(4, absl::Seconds(20)));
  std::set<std::string> want(ids.begin(), ids.end()), got_a, got_b;
  for (const auto& n : live_a.Got()) {
    got_a.insert(n.report().report_id());
  }
  for (const auto& n : live_b.Got()) {
    got_b.insert(n.report().report_id());
  }
  EXPECT_EQ(got_a, want) << "live streams start after what was stored before";
  EXPECT_EQ(got_b, want);
  EXPECT_TRUE(other.Got().empty()) << "nobody sees another account's notifications";
  // Ids increase along the stream.
  int64_t last = 0;
  for (const auto& n : live_b.Got()) {
    int64_t id = 0;
    ASSERT_TRUE(absl::SimpleAtoi(n.id(), &id));
    EXPECT_GT(id, last);
    last = id;
  }

  // Resume after the second streamed notification: the third and fourth are replayed.
  std::string resume_after = live_b.Got()[1].id();
  StreamReader resumed(p.notifications(0).stub.get(), "acct-n", resume_after);
  ASSERT_TRUE(resumed.WaitFor(2, absl::Seconds(10)));
  absl::SleepFor(absl::Milliseconds(300));
  ASSERT_EQ(resumed.Got().size(), 2u);
  EXPECT_EQ(resumed.Got()[0].id(), live_b.Got()[2].id());
  EXPECT_EQ(resumed.Got()[1].id(), live_b.Got()[3].id());

  // Acknowledging.
  nv1::AckNotificationRequest ack;
  ack.set_id(resume_after);
  nv1::Notification acked;
  EXPECT_EQ(
      p.notifications(0).stub->AckNotification(As("acct-other").get(), ack, &acked).error_code(),
      grpc::NOT_FOUND);
  ASSERT_TRUE(p.notifications(0).stub->AckNotification(As("acct-n").get(), ack, &acked).ok());
  EXPECT_TRUE(acked.has_ack_time());
  nv1::ListNotificationsRequest unacked;
  unacked.set_unacked_only(true);
  unacked.set_page_size(2);
  nv1::ListNotificationsResponse page;
  std::set<std::string> listed;
  do {
    ASSERT_TRUE(
        p.notifications(1).stub->ListNotifications(As("acct-n").get(), unacked, &page).ok());
    for (const auto& n : page.notifications()) {
      listed.insert(n.id());
    }
    unacked.set_page_token(page.next_page_token());
  } while (!page.next_page_token().empty());
  EXPECT_EQ(listed.size(), 4u) << "five stored, one acknowledged";
  EXPECT_FALSE(listed.count(resume_after));
  EXPECT_EQ(live_a.Got().size(), 4u) << "no duplicates on the live stream";
  StreamReader bad(p.notifications(0).stub.get(), "acct-n", "not-a-number");
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_TRUE(bad.Got().empty());
}

// A one-thread HTTP server that answers each request with the next status of its script.
class WebhookReceiver {
 public:
  explicit WebhookReceiver(std::vector<int> statuses) : statuses_(std::move(statuses)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      ADD_FAILURE() << "bind: " << std::strerror(errno);
    }
    socklen_t len = sizeof(addr);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    ::listen(fd_, 16);
    thread_ = std::thread([this] { Serve(); });
  }
  ~WebhookReceiver() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  int port() const { return port_; }
  std::vector<std::string> Requests() {
    absl::MutexLock lock(&mu_);
    return requests_;
  }

 private:
  void Serve() {
    while (!stop_) {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) {
        continue;
      }
      std::string req;
      char buf[4096];
      size_t body_at = std::string::npos, length = 0;
      while (body_at == std::string::npos || req.size() < body_at + length) {
        ssize_t n = ::read(c, buf, sizeof(buf));
        if (n <= 0) {
          break;
        }
        req.append(buf, n);
        if (body_at == std::string::npos && (body_at = req.find("\r\n\r\n")) != std::string::npos) {
          body_at += 4;
          std::string lower = absl::AsciiStrToLower(req.substr(0, body_at));
          size_t cl = lower.find("content-length:");
          if (cl != std::string::npos) {
            length = std::stoul(lower.substr(cl + 15));
          }
        }
      }
      int status;
      {
        absl::MutexLock lock(&mu_);
        requests_.push_back(req);
        status = next_ < statuses_.size() ? statuses_[next_++] : 200;
      }
      std::string res = absl::StrCat("HTTP/1.1 ", status, " X\r\nContent-Length: 0\r\n",
                                     "Connection: close\r\n\r\n");
      (void)!::write(c, res.data(), res.size());
      ::close(c);
    }
  }

  std::vector<int> statuses_;
  size_t next_ = 0;
  int fd_;
  int port_;
  std::atomic<bool> stop_{false};
  absl::Mutex mu_;
  std::vector<std::string> requests_;
  std::thread thread_;
};

TEST_F(ReportsIntegrationTest, WebhooksAreValidatedAndDeliveredWithRetries) {
  Pipeline p;
  WebhookReceiver receiver({500, 503});  // two failures, then 200
  const std::string url = absl::StrCat("http://127.0.0.1:", receiver.port(), "/kurt-hook");
  nv1::SetWebhookRequest set;
  nv1::Webhook hook;
  set.set_url(url);
  // Replica 1 runs without --allow_private_webhooks: loopback is refused, nothing is stored.
  grpc::Status refused = p.notifications(1).stub->SetWebhook(As("acct-w").get(), set, &hook);
  EXPECT_EQ(refused.error_code(), grpc::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(refused.error_message(), "loopback")) << refused.error_message();
  set.set_url("ftp://example.com/x");
  EXPECT_EQ(p.notifications(0).stub->SetWebhook(As("acct-w").get(), set, &hook).error_code(),
            grpc::INVALID_ARGUMENT);
  nv1::Webhook current;
  ASSERT_TRUE(p.notifications(0).stub->GetWebhook(As("acct-w").get(), {}, &current).ok());
  EXPECT_EQ(current.url(), "");
  set.set_url(url);
  ASSERT_TRUE(p.notifications(0).stub->SetWebhook(As("acct-w").get(), set, &hook).ok());
  EXPECT_EQ(hook.url(), url);
  // The signing secret is in this answer only.
  const std::string secret = hook.secret();
  ASSERT_TRUE(absl::StartsWith(secret, "whsec_")) << secret;
  ASSERT_TRUE(p.notifications(1).stub->GetWebhook(As("acct-w").get(), {}, &current).ok());
  EXPECT_EQ(current.url(), url);
  EXPECT_EQ(current.secret(), "");

  SeedClicks(p.db().primary_url(), "acct-w", {"web001"}, 10, kStart, absl::Seconds(1));
  p.db().WaitForReplica();
  rv1::Report created;
  ASSERT_TRUE(p.reports()
                  .CreateReport(As("acct-w").get(),
                                Request(rv1::CLICKS_CSV, kStart, kStart + absl::Hours(1)), &created)
                  .ok());
  ASSERT_TRUE(WaitUntil([&] { return receiver.Requests().size() >= 3; }, absl::Seconds(30)));
  absl::SleepFor(absl::Seconds(1));
  std::vector<std::string> requests = receiver.Requests();
  ASSERT_EQ(requests.size(), 3u) << "delivered once after two failures, never again";
  EXPECT_TRUE(absl::StartsWith(requests[0], "POST /kurt-hook HTTP/1.1"));
  EXPECT_TRUE(absl::StrContains(requests[2], created.id()));
  EXPECT_TRUE(absl::StrContains(absl::AsciiStrToLower(requests[2]), "kurt-delivery-attempt: 3"));
  EXPECT_EQ(
      QueryValue(p.db().primary_url(), "SELECT state || ':' || attempts FROM webhook_deliveries"),
      "DELIVERED:3");

  // Every delivery is signed; the verification example of docs/reports.md accepts the real one
  // and refuses it with a changed body or another secret.
  const std::string& delivery = requests[2];
  const size_t body_at = delivery.find("\r\n\r\n");
  ASSERT_NE(body_at, std::string::npos);
  const std::string body = delivery.substr(body_at + 4);
  std::string signature;
  for (absl::string_view line : absl::StrSplit(delivery.substr(0, body_at), "\r\n")) {
    if (absl::StartsWithIgnoreCase(line, "kurt-signature:")) {
      signature = std::string(absl::StripAsciiWhitespace(line.substr(15)));
    }
  }
  ASSERT_TRUE(absl::StartsWith(signature, "t=")) << delivery;
  auto verify = [&](const std::string& key, const std::string& payload) {
    const std::string file = absl::StrCat(::testing::TempDir(), "/webhook-body-", ::getpid());
    FILE* f = std::fopen(file.c_str(), "wb");
    std::fwrite(payload.data(), 1, payload.size(), f);
    std::fclose(f);
    const std::string command =
        absl::StrCat("KURT_WEBHOOK_SECRET='", key, "' python3 ", SourceDir(),
                     "/docs/examples/verify_webhook.py '", signature, "' < ", file, " >/dev/null");
    const int rc = std::system(command.c_str());
    std::remove(file.c_str());
    return rc == 0;
  };
  EXPECT_TRUE(verify(secret, body)) << delivery;
  EXPECT_FALSE(verify(secret, absl::StrCat(body, " ")));
  EXPECT_FALSE(verify("whsec_another", body));
}

TEST_F(ReportsIntegrationTest, AnOutcomeFromALapsedLeaseIsNotRecordedOverTheNewClaim) {
  Pipeline p;
  // Two "senders" are played by hand through the real store; the pipeline's own senders are
  // stopped so that they claim nothing.
  pg::PoolOptions o;
  o.url = p.db().primary_url();
  pg::PgPool pool(o);
  notifications::PgNotificationStore store(&pool);
  ASSERT_TRUE(store.SetWebhook("acct-lease", "http://127.0.0.1:9/never", "whsec_x").ok());
  events::v1::ReportCompleted e;
  e.set_event_id("lease-test/completed");
  e.set_account_id("acct-lease");
  e.set_report_id("r-lease");
  p.notifications(0).module->Stop();
  p.notifications(1).module->Stop();
  ASSERT_EQ(*store.StoreCompleted({e}), 1);
  auto first = store.ClaimDeliveries(10, absl::ZeroDuration(), {});
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->size(), 1u);
  EXPECT_EQ((*first)[0].secret, "whsec_x");
  // The lease lapsed: another sender claims the delivery (attempt 2).
  auto second = store.ClaimDeliveries(10, absl::Minutes(1), {});
  ASSERT_TRUE(second.ok());
  ASSERT_EQ(second->size(), 1u);
  EXPECT_EQ((*second)[0].attempts, 2);
  // The first sender's late outcome is refused and changes nothing.
  absl::Status late = store.MarkDelivered((*first)[0].id, (*first)[0].attempts, 200);
  EXPECT_EQ(late.code(), absl::StatusCode::kAborted) << late;
  EXPECT_EQ(store.MarkAttemptFailed((*first)[0].id, 1, 500, "HTTP 500", std::nullopt).code(),
            absl::StatusCode::kAborted);
  EXPECT_EQ(QueryValue(p.db().primary_url(),
                       "SELECT state || ':' || attempts FROM webhook_deliveries WHERE account_id = "
                       "'acct-lease'"),
            "PENDING:2");
  // The current claim records.
  EXPECT_TRUE(store.MarkDelivered((*second)[0].id, 2, 204).ok());
  EXPECT_EQ(QueryValue(p.db().primary_url(),
                       "SELECT state || ':' || last_status FROM webhook_deliveries WHERE "
                       "account_id = 'acct-lease'"),
            "DELIVERED:204");
  // An account whose delivery is in flight here is skipped by the next claim.
  e.set_event_id("lease-test-2/completed");
  ASSERT_EQ(*store.StoreCompleted({e}), 1);
  EXPECT_TRUE(store.ClaimDeliveries(10, absl::Minutes(1), {"acct-lease"})->empty());
  EXPECT_EQ(store.ClaimDeliveries(10, absl::Minutes(1), {"acct-other"})->size(), 1u);
}

}  // namespace
}  // namespace kurt::testing
