// Faults against the real binaries on the real stack: a worker SIGKILLed in the middle of a large
// report, the Kafka broker restarted during a burst of 200 requests, and a poison job.
#include <signal.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "kurt/events/v1/report_events.pb.h"
#include "platform/grpc/handler.h"
#include "platform/grpc/pagination.h"
#include "platform/grpc/timestamps.h"
#include "services/reports/report_job.h"
#include "tests/reports/deployment.h"
#include "tests/support/wait_until.h"

namespace kurt::testing {
namespace {

namespace rv1 = kurt::reports::v1;

const absl::Time kStart =
    absl::FromCivil(absl::CivilSecond(2026, 2, 1, 0, 0, 0), absl::UTCTimeZone());

rv1::CreateReportRequest CsvRequest(absl::Time start, absl::Time end) {
  rv1::CreateReportRequest r;
  r.set_kind(rv1::CLICKS_CSV);
  platform::SetTimestamp(start, r.mutable_start_time());
  platform::SetTimestamp(end, r.mutable_end_time());
  return r;
}

grpc::Status Create(rv1::ReportsService::Stub* stub, const std::string& account,
                    const rv1::CreateReportRequest& req, rv1::Report* out) {
  grpc::ClientContext ctx;
  ctx.AddMetadata("x-kurt-account-id", account);
  ctx.AddMetadata("x-kurt-edge-secret", kDeploymentEdgeSecret);
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  return stub->CreateReport(&ctx, req, out);
}

TEST(ReportsFaultTest, WorkerKilledMidReportIsTakenOverAndCompletesOnce) {
  Deployment d;
  constexpr int64_t kRows = 400000;
  SeedClicks(d.db().primary_url(), "acct-big", {"big001", "big002"}, kRows / 2, kStart,
             absl::Seconds(1));
  d.db().WaitForReplica();
  // 100,000 rows/s: four seconds per attempt, long enough to be killed in the middle.
  const std::vector<std::string> worker_flags = {
      "--lease=2s", "--heartbeat_interval=300ms", "--lease_scan_interval=500ms",
      "--scan_max_rows_per_second=100000", "--scan_chunk_rows=5000"};
  d.StartReports();
  d.StartNotifications();
  d.StartWorker("worker-1", worker_flags);
  d.StartWorker("worker-2", worker_flags);
  auto stub = d.ReportsStub();
  rv1::Report created;
  ASSERT_TRUE(
      Create(stub.get(), "acct-big", CsvRequest(kStart, kStart + absl::Hours(24 * 7)), &created)
          .ok());

  const std::string job_sql = absl::StrCat("FROM report_jobs WHERE id = '", created.id(), "'");
  std::string owner;
  ASSERT_TRUE(WaitUntil(
      [&] {
        owner = QueryValue(d.db().primary_url(),
                           absl::StrCat("SELECT worker_id ", job_sql,
                                        " AND state = 'RUNNING' AND progress_rows > 0"));
        return !owner.empty();
      },
      absl::Seconds(30)))
      << d.Logs();
  const int64_t progress_at_kill =
      QueryInt(d.db().primary_url(), absl::StrCat("SELECT progress_rows ", job_sql));
  ASSERT_TRUE(d.Get(owner).process->Stop(SIGKILL));
  const absl::Time killed = absl::Now();
  ASSERT_LT(progress_at_kill, kRows) << "killed in the middle";

  rv1::Report done = d.WaitFinal("acct-big", created.id(), absl::Seconds(60));
  ASSERT_EQ(done.state(), rv1::SUCCEEDED) << done.error();
  const std::string other = owner == "worker-1" ? "worker-2" : "worker-1";
  EXPECT_EQ(QueryValue(d.db().primary_url(), absl::StrCat("SELECT worker_id ", job_sql)), other);
  EXPECT_EQ(done.attempts(), 2);
  EXPECT_EQ(done.row_count(), kRows);
  std::printf("killed at %lld rows; the other worker finished %.1f s later\n",
              static_cast<long long>(progress_at_kill),
              absl::ToDoubleSeconds(absl::Now() - killed));

  std::string csv;
  ASSERT_TRUE(d.Download("acct-big", created.id(), &csv).ok());
  EXPECT_TRUE(csv ==
              ExpectedCsv(d.db().primary_url(), "acct-big", kStart, kStart + absl::Hours(24 * 7)))
      << "the artifact is the complete report (" << csv.size() << " bytes)";
  int committed = 0;
  for (const auto& e : std::filesystem::directory_iterator(d.artifact_dir())) {
    if (!absl::StartsWith(e.path().filename().string(), ".tmp-")) {
      ++committed;
    }
  }
  EXPECT_EQ(committed, 1) << "one artifact (the killed attempt left at most a temporary file)";

  const std::string notified =
      absl::StrCat("SELECT count(*) FROM notifications WHERE report_id = '", created.id(), "'");
  ASSERT_TRUE(
      WaitUntil([&] { return QueryInt(d.db().primary_url(), notified) >= 1; }, absl::Seconds(20)))
      << d.Logs();
  absl::SleepFor(absl::Seconds(2));
  EXPECT_EQ(QueryInt(d.db().primary_url(), notified), 1);
  EXPECT_EQ(QueryInt(d.db().primary_url(), "SELECT count(*) FROM notifications"), 1);
}

// Makes sure the broker runs again when a test ends, even half-way.
struct BrokerGuard {
  ~BrokerGuard() {
    if (!Stack("status", "")) {
      Stack("start", "kafka");
    }
  }
};

TEST(ReportsFaultTest, BrokerRestartDuringABurstOf200RequestsLosesAndDuplicatesNothing) {
  Deployment d;
  SeedClicks(d.db().primary_url(), "acct-burst", {"burst01"}, 50, kStart, absl::Seconds(1));
  d.db().WaitForReplica();
  // One account's 200 reports at once: more than its quota would let in.
  d.StartReports({"--max_active_reports=0", "--max_reports_per_day=0"});
  d.StartNotifications();
  d.StartWorker("worker-1", {"--max_concurrent_jobs=4"});
  d.StartWorker("worker-2", {"--max_concurrent_jobs=4"});
  auto stub = d.ReportsStub();

  // Four clients send requests [from, to); each retries with its request_id until answered.
  constexpr int kRequests = 200;
  std::atomic<int> failed{0};
  auto burst = [&](int from, int to) {
    std::vector<std::thread> clients;
    clients.reserve(4);
    for (int t = 0; t < 4; ++t) {
      clients.emplace_back([&, t] {
        for (int i = from + t; i < to; i += 4) {
          rv1::CreateReportRequest req = CsvRequest(kStart, kStart + absl::Hours(1));
          req.set_request_id(absl::StrCat("burst-", i));
          rv1::Report r;
          grpc::Status s;
          for (int attempt = 0; attempt < 20; ++attempt) {
            s = Create(stub.get(), "acct-burst", req, &r);
            if (s.ok()) {
              break;
            }
            absl::SleepFor(absl::Milliseconds(200));
          }
          if (!s.ok()) {
            ++failed;
          }
        }
      });
    }
    for (auto& c : clients) {
      c.join();
    }
  };
  BrokerGuard guard;
  burst(0, 60);  // the broker up
  ASSERT_TRUE(Stack("stop", "kafka"));
  const absl::Time stopped = absl::Now();
  burst(60, 140);  // the broker down
  std::atomic<bool> started{false};
  std::thread starter([&] { started = Stack("start", "kafka"); });
  burst(140, kRequests);  // the broker starting
  starter.join();
  ASSERT_TRUE(started.load()) << "tools/stack start kafka";
  EXPECT_EQ(failed.load(), 0) << "requests need only the database, never the broker";
  std::printf("the broker was down for %.1f s, during requests 60 to 140\n",
              absl::ToDoubleSeconds(absl::Now() - stopped));

  const std::string url = d.db().primary_url();
  ASSERT_EQ(QueryInt(url, "SELECT count(*) FROM report_jobs"), kRequests);
  const absl::Time t0 = absl::Now();
  bool all = WaitUntil(
      [&] {
        return QueryInt(url, "SELECT count(*) FROM report_jobs WHERE state = 'SUCCEEDED'") ==
                   kRequests &&
               QueryInt(url, "SELECT count(*) FROM notifications") >= kRequests;
      },
      absl::Seconds(120));
  std::printf("all done %.1f s after the last request\n", absl::ToDoubleSeconds(absl::Now() - t0));
  EXPECT_TRUE(all) << QueryValue(url,
                                 "SELECT string_agg(state || '=' || n, ' ') FROM (SELECT state, "
                                 "count(*) n FROM report_jobs GROUP BY state) s")
                   << " notifications: " << QueryInt(url, "SELECT count(*) FROM notifications")
                   << "\n"
                   << d.Logs();
  absl::SleepFor(absl::Seconds(2));
  EXPECT_EQ(QueryInt(url, "SELECT count(*) FROM notifications"), kRequests);
  EXPECT_EQ(QueryInt(url,
                     "SELECT count(*) FROM (SELECT report_id FROM notifications GROUP BY report_id "
                     "HAVING count(*) > 1) dup"),
            0);
  EXPECT_EQ(QueryInt(url,
                     "SELECT count(*) FROM notifications n JOIN report_jobs j "
                     "ON j.id::text = n.report_id"),
            kRequests)
      << "one notification for each report";
  EXPECT_EQ(QueryInt(url, "SELECT count(*) FROM report_jobs WHERE attempts <> 1"), 0)
      << "no report ran twice";
  EXPECT_EQ(QueryInt(url, "SELECT count(*) FROM outbox WHERE published_time IS NULL"), 0);
}

TEST(ReportsFaultTest, PoisonJobEndsFailedAndReachesTheDeadLetterTopic) {
  Deployment d;
  SeedClicks(d.db().primary_url(), "acct-p", {"poison1"}, 100, kStart, absl::Seconds(1));
  d.db().WaitForReplica();
  d.StartReports();
  d.StartNotifications();
  auto stub = d.ReportsStub();
  rv1::Report poison, healthy;
  ASSERT_TRUE(
      Create(stub.get(), "acct-p", CsvRequest(kStart, kStart + absl::Hours(1)), &poison).ok());
  ASSERT_TRUE(
      Create(stub.get(), "acct-p", CsvRequest(kStart, kStart + absl::Hours(2)), &healthy).ok());
  // Every attempt of the poison job fails where its artifact would go (a directory is in the
  // way); the healthy job, on the same worker, is unaffected.
  for (int attempt = 1; attempt <= 3; ++attempt) {
    std::filesystem::create_directories(
        absl::StrCat(d.artifact_dir(), "/", poison.id(), "-", attempt, ".csv/blocked"));
  }
  TopicReader dead_letters(d.dlq_topic());
  d.StartWorker("worker-1",
                {"--max_attempts=3", "--retry_backoff=200ms", "--lease_scan_interval=300ms"});
  // And a message that is no report request at all.
  kafka::ProducerOptions po;
  po.brokers = KafkaBrokers();
  auto producer = std::move(*kafka::KafkaProducer::Create(po));
  ASSERT_TRUE(producer->Produce(d.requested_topic(), "junk", "\x01\x02 not protobuf").ok());
  ASSERT_TRUE(producer->Flush(absl::Seconds(10)).ok());

  rv1::Report failed = d.WaitFinal("acct-p", poison.id(), absl::Seconds(60));
  ASSERT_EQ(failed.state(), rv1::FAILED) << d.Logs();
  EXPECT_TRUE(absl::StartsWith(failed.error(), "gave up after 3 attempts: rename"))
      << failed.error();
  EXPECT_EQ(failed.attempts(), 3);
  EXPECT_EQ(d.WaitFinal("acct-p", healthy.id(), absl::Seconds(30)).state(), rv1::SUCCEEDED);

  ASSERT_TRUE(dead_letters.WaitFor(2, absl::Seconds(30))) << d.Logs();
  bool job_letter = false, junk_letter = false;
  for (const kafka::Message& m : dead_letters.Messages()) {
    std::string error(m.Header("x-kurt-error").value_or(""));
    if (m.key == poison.id()) {
      events::v1::ReportRequested e;
      ASSERT_TRUE(e.ParseFromString(m.value));
      EXPECT_EQ(e.report_id(), poison.id());
      EXPECT_EQ(e.account_id(), "acct-p");
      EXPECT_TRUE(absl::StartsWith(error, "gave up after 3 attempts")) << error;
      EXPECT_EQ(m.Header("x-kurt-attempts").value_or(""), "3");
      EXPECT_EQ(m.Header("x-kurt-original-topic").value_or(""), d.requested_topic());
      job_letter = true;
    } else if (m.key == "junk") {
      EXPECT_EQ(m.value, "\x01\x02 not protobuf");
      EXPECT_EQ(error, "not a ReportRequested message");
      junk_letter = true;
    }
  }
  EXPECT_TRUE(job_letter);
  EXPECT_TRUE(junk_letter);
  EXPECT_EQ(dead_letters.Messages().size(), 2u);
  // Its user is told, once.
  const std::string notified =
      absl::StrCat("SELECT string_agg(report_state, ',') FROM notifications WHERE report_id = '",
                   poison.id(), "'");
  ASSERT_TRUE(WaitUntil([&] { return !QueryValue(d.db().primary_url(), notified).empty(); },
                        absl::Seconds(20)));
  EXPECT_EQ(QueryValue(d.db().primary_url(), notified), "FAILED");
}

}  // namespace
}  // namespace kurt::testing
