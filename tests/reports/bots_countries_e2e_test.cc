// Bots and countries end to end through the public HTTP API: the real kurt-edge in front of the
// real kurt-links (which places the client address in a country from tor-geoipdb's tables),
// kurt-analytics (which tells bots by uap-core's regexes, known preview agents and HEAD), and
// kurt-reports with a worker. People, crawlers, preview fetchers and HEAD requests click one link
// from addresses of known countries; its stats show people and bots apart and the top countries,
// and the clicks CSV marks each row's bot and country.
#include <arpa/inet.h>
#include <unistd.h>

#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "kurt/accounts/v1/accounts.pb.h"
#include "kurt/analytics/v1/analytics.pb.h"
#include "kurt/links/v1/links.pb.h"
#include "kurt/reports/v1/reports.pb.h"
#include "services/reports/report_job.h"
#include "tests/reports/deployment.h"
#include "tests/support/http_client.h"

namespace kurt::testing {
namespace {

constexpr char kAdminToken[] = "bots-e2e-admin-token";

constexpr char kChrome[] =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36";
constexpr char kFirefox[] =
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0";
constexpr char kGooglebot[] =
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
constexpr char kSlack[] = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)";

// The first address of the first range of `country` in a tor-geoipdb table, as text: the test
// takes its addresses from the file the service reads.
std::string AddressIn(const std::string& path, const std::string& country, bool v6) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') {
      continue;
    }
    std::vector<std::string> f = absl::StrSplit(line, ',');
    if (f.size() != 3 || f[2] != country) {
      continue;
    }
    if (v6) {
      return f[0];
    }
    uint32_t n = 0;
    if (!absl::SimpleAtoi(f[0], &n)) {
      continue;
    }
    in_addr a{htonl(n + 1)};
    char buf[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &a, buf, sizeof(buf));
    return buf;
  }
  return "";
}

TEST(BotsCountriesEndToEndTest, StatsSplitPeopleFromBotsAndCountCountriesAndTheCsvMarksThem) {
  for (const char* binary : {"kurt-edge", "kurt-links", "kurt-analytics", "kurt-reports",
                             "kurt-report-worker", "kurt-notifications", "kurt-accounts"}) {
    ASSERT_EQ(::access(BinaryPath(binary).c_str(), X_OK), 0)
        << BinaryPath(binary) << " is not built (a build dependency of this test)";
  }
  const std::string de = AddressIn("/usr/share/tor/geoip", "DE", false);
  const std::string us = AddressIn("/usr/share/tor/geoip", "US", false);
  const std::string jp = AddressIn("/usr/share/tor/geoip6", "JP", true);
  ASSERT_FALSE(de.empty() || us.empty() || jp.empty()) << "tor-geoipdb's tables are missing";

  Deployment d;
  const std::string clicks_topic = RandomName("kurt.test.clicks.");
  CreateTopic(clicks_topic, 2);
  Service& reports = d.StartReports();
  d.StartWorker("worker-1");
  Service& notifications = d.StartNotifications();
  Service& links = d.Start(
      "links", "kurt-links",
      {absl::StrCat("--clicks_topic=", clicks_topic), "--short_url_base=http://kurt.test/"});
  Service& analytics =
      d.Start("analytics", "kurt-analytics",
              {absl::StrCat("--clicks_topic=", clicks_topic),
               absl::StrCat("--dead_letter_topic=", RandomName("kurt.test.clicks.dlq.")),
               absl::StrCat("--consumer_group=", RandomName("kurt-test-analytics-"))});
  Service& accounts =
      d.Start("accounts", "kurt-accounts", {absl::StrCat("--admin_token=", kAdminToken)});
  Service& edge = d.Start(
      "edge", "kurt-edge",
      // The test is the proxy in front: its X-Forwarded-For names each click's client.
      {"--edge_port={http_port}", "--io_threads=2", "--rate_per_address=0", "--rate_per_account=0",
       "--trusted_proxies=127.0.0.1/32",
       absl::StrCat("--accounts_address=127.0.0.1:", accounts.grpc_port),
       absl::StrCat("--upstream=kurt.links.v1.LinksService=127.0.0.1:", links.grpc_port),
       absl::StrCat("--upstream=kurt.analytics.v1.AnalyticsService=127.0.0.1:",
                    analytics.grpc_port),
       absl::StrCat("--upstream=kurt.reports.v1.ReportsService=127.0.0.1:", reports.grpc_port),
       absl::StrCat("--upstream=kurt.notifications.v1.NotificationsService=127.0.0.1:",
                    notifications.grpc_port),
       absl::StrCat("--upstream=kurt.accounts.v1.AccountsService=127.0.0.1:", accounts.grpc_port)});
  const int port = edge.http_port;

  Reply made = Fetch(port, "POST", "/v1/accounts",
                     {{"Authorization", absl::StrCat("Bearer ", kAdminToken)},
                      {"Content-Type", "application/json"}},
                     R"({"name": "bots"})");
  ASSERT_EQ(made.status, 200u) << made.body << d.Logs();
  accounts::v1::CreateAccountResponse owner;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(made.body, &owner).ok()) << made.body;
  const std::vector<std::pair<std::string, std::string>> as = {
      {"Authorization", absl::StrCat("Bearer ", owner.secret_key())},
      {"Content-Type", "application/json"}};
  Reply r = Fetch(port, "POST", "/v1/links", as, R"({"targetUrl": "https://example.com/bots"})");
  ASSERT_EQ(r.status, 200u) << r.body;
  links::v1::Link link;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.body, &link).ok()) << r.body;
  const std::string path = absl::StrCat("/", link.code());

  // (method, user agent, client address or "" for none: the peer, 127.0.0.1, of no country)
  struct Click {
    const char* method;
    const char* agent;
    std::string from;
    int times;
  };
  const std::vector<Click> clicks = {
      {"GET", kChrome, de, 5},     // people in Germany
      {"GET", kFirefox, jp, 3},    // people in Japan, over IPv6
      {"GET", kGooglebot, us, 2},  // a crawler: uap-core's Spider
      {"GET", kSlack, "", 2},      // a preview fetcher, from an address of no country
      {"HEAD", kChrome, de, 2},    // a link checker posing as Chrome: HEAD
  };
  int total = 0;
  for (const Click& c : clicks) {
    for (int i = 0; i < c.times; ++i) {
      std::vector<std::pair<std::string, std::string>> headers = {{"User-Agent", c.agent}};
      if (!c.from.empty()) {
        headers.emplace_back("X-Forwarded-For", c.from);
      }
      Reply click = Fetch(port, c.method, path, headers);
      ASSERT_EQ(click.status, 302u) << c.method << " " << click.body << click.error << d.Logs();
      EXPECT_EQ(click.Header("location"), "https://example.com/bots");
      ++total;
    }
  }
  const std::string counted =
      absl::StrCat("SELECT count(*) FROM clicks WHERE code = '", link.code(), "'");
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (QueryInt(d.db().primary_url(), counted) < total && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_EQ(QueryInt(d.db().primary_url(), counted), total) << d.Logs();
  d.db().WaitForReplica();

  // The stats: every click in totalClicks, bots' and people's apart, and the countries.
  Reply stats =
      Fetch(port, "GET", absl::StrCat("/v1/links/", link.code(), "/stats?interval=HOUR"), as);
  ASSERT_EQ(stats.status, 200u) << stats.body;
  analytics::v1::LinkStats s;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(stats.body, &s).ok()) << stats.body;
  EXPECT_EQ(s.total_clicks(), 14) << stats.body;
  EXPECT_EQ(s.bot_clicks(), 6) << stats.body;
  EXPECT_EQ(s.human_clicks(), 8) << stats.body;
  EXPECT_TRUE(absl::StrContains(stats.body, R"("botClicks":"6")")) << stats.body;
  int64_t series_bots = 0;
  for (const auto& b : s.series()) {
    series_bots += b.bot_clicks();
  }
  EXPECT_EQ(series_bots, 6);
  ASSERT_EQ(s.top_countries_size(), 4) << stats.body;
  EXPECT_EQ(s.top_countries(0).value(), "DE");
  EXPECT_EQ(s.top_countries(0).clicks(), 7);
  EXPECT_EQ(s.top_countries(1).value(), "JP");
  EXPECT_EQ(s.top_countries(1).clicks(), 3);
  EXPECT_EQ(s.top_countries(2).value(), "US");
  EXPECT_EQ(s.top_countries(2).clicks(), 2);
  EXPECT_EQ(s.top_countries(3).value(), "ZZ");
  EXPECT_EQ(s.top_countries(3).clicks(), 2);
  // "Bot" among the agent families is the same count.
  bool bot_family = false;
  for (const auto& a : s.top_agents()) {
    if (a.value() == "Bot") {
      bot_family = true;
      EXPECT_EQ(a.clicks(), 6);
    }
  }
  EXPECT_TRUE(bot_family) << stats.body;

  // The clicks CSV, through the edge: a bot and a country column, as the database has them.
  const absl::Time start = absl::Now() - absl::Hours(1);
  const absl::Time end = absl::Now() + absl::Minutes(1);
  Reply created =
      Fetch(port, "POST", "/v1/reports", as,
            absl::StrCat(R"({"kind": "CLICKS_CSV", "startTime": ")", reports::Rfc3339(start),
                         R"(", "endTime": ")", reports::Rfc3339(end), R"("})"));
  ASSERT_EQ(created.status, 200u) << created.body;
  reports::v1::Report report;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(created.body, &report).ok());
  reports::v1::Report done = d.WaitFinal(owner.account().id(), report.id(), absl::Seconds(60));
  ASSERT_EQ(done.state(), reports::v1::SUCCEEDED) << done.DebugString() << d.Logs();
  Reply csv = Fetch(port, "GET", absl::StrCat("/v1/reports/", done.id(), "/content"), as);
  ASSERT_EQ(csv.status, 200u) << csv.body;
  EXPECT_TRUE(absl::StartsWith(
      csv.body, "code,click_time,referrer,user_agent,client_hash,event_id,bot,country\n"))
      << csv.body;
  int bots = 0, de_rows = 0, jp_rows = 0, unknown_rows = 0;
  for (absl::string_view row : absl::StrSplit(csv.body, '\n', absl::SkipEmpty())) {
    bots += absl::EndsWith(row, ",true,DE") || absl::EndsWith(row, ",true,US") ||
            absl::EndsWith(row, ",true,\"\"");
    de_rows += absl::EndsWith(row, ",DE");
    jp_rows += absl::EndsWith(row, ",false,JP");
    unknown_rows += absl::EndsWith(row, ",true,\"\"");
  }
  EXPECT_EQ(bots, 6) << csv.body;
  EXPECT_EQ(de_rows, 7) << csv.body;
  EXPECT_EQ(jp_rows, 3) << csv.body;
  EXPECT_EQ(unknown_rows, 2) << csv.body;
  EXPECT_EQ(csv.body, ExpectedCsv(d.db().primary_url(), owner.account().id(), start, end));
}

}  // namespace
}  // namespace kurt::testing
