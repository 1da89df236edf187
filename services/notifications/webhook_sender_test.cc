// WebhookSender and CompletedConsumer over fakes.
#include "services/notifications/webhook_sender.h"

#include <map>
#include <mutex>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "services/notifications/completed_consumer.h"
#include "services/notifications/webhook_signature.h"

namespace kurt::notifications {
namespace {

class FakeStore : public NotificationStore {
 public:
  absl::StatusOr<int> StoreCompleted(
      const std::vector<events::v1::ReportCompleted>& events) override {
    int n = 0;
    for (const auto& e : events) {
      n += seen.insert(e.event_id()).second ? 1 : 0;
    }
    return n;
  }
  absl::StatusOr<std::vector<NotificationRecord>> List(const std::string&, int, int64_t,
                                                       bool) override {
    return std::vector<NotificationRecord>{};
  }
  absl::StatusOr<std::vector<NotificationRecord>> After(const std::string&, int64_t, int) override {
    return std::vector<NotificationRecord>{};
  }
  absl::StatusOr<int64_t> LastId(const std::string&) override { return 0; }
  absl::StatusOr<NotificationRecord> Ack(const std::string&, int64_t) override {
    return absl::NotFoundError("no");
  }
  absl::StatusOr<WebhookRecord> SetWebhook(const std::string&, const std::string&,
                                           const std::string&) override {
    return WebhookRecord{};
  }
  absl::StatusOr<std::optional<WebhookRecord>> GetWebhook(const std::string&) override {
    return std::nullopt;
  }
  // As the real store: at most `limit`, one per account, none of `busy`'s, none already claimed
  // (the fake's leases never lapse).
  absl::StatusOr<std::vector<Delivery>> ClaimDeliveries(
      int limit, absl::Duration, const std::vector<std::string>& busy) override {
    std::lock_guard<std::mutex> lock(mu);
    std::vector<Delivery> out;
    std::set<std::string> accounts(busy.begin(), busy.end());
    for (auto& d : due) {
      if (static_cast<int>(out.size()) == limit || claimed.contains(d.id) ||
          !accounts.insert(d.account_id).second) {
        continue;
      }
      ++d.attempts;
      claimed.insert(d.id);
      out.push_back(d);
    }
    return out;
  }
  absl::Status MarkDelivered(int64_t id, int, int) override {
    std::lock_guard<std::mutex> lock(mu);
    if (fence_all) {
      return absl::AbortedError("fenced");
    }
    delivered.push_back(id);
    delivered_at.push_back(absl::Now());
    claimed.erase(id);
    std::erase_if(due, [&](const Delivery& d) { return d.id == id; });
    return absl::OkStatus();
  }
  absl::Status MarkAttemptFailed(int64_t id, int, int, const std::string& error,
                                 std::optional<absl::Duration> retry_in) override {
    std::lock_guard<std::mutex> lock(mu);
    claimed.erase(id);
    last_error = error;
    if (!retry_in) {
      failed.push_back(id);
      std::erase_if(due, [&](const Delivery& d) { return d.id == id; });
    } else {
      retries.push_back(*retry_in);
    }
    return absl::OkStatus();
  }

  std::mutex mu;
  bool fence_all = false;
  std::set<int64_t> claimed;
  std::vector<absl::Time> delivered_at;
  std::set<std::string> seen;
  std::vector<Delivery> due;
  std::vector<int64_t> delivered, failed;
  std::vector<absl::Duration> retries;
  std::string last_error;
};

class FakePoster : public HttpPoster {
 public:
  absl::StatusOr<HttpResponse> Post(const WebhookUrl& url,
                                    const std::vector<boost::asio::ip::tcp::endpoint>&,
                                    const std::vector<std::pair<std::string, std::string>>& headers,
                                    const std::string& body, absl::Duration) override {
    if (url.host == "hangs.example") {
      absl::SleepFor(hang);
      return absl::DeadlineExceededError("timed out");
    }
    std::lock_guard<std::mutex> lock(mu);
    urls.push_back(url.host);
    bodies.push_back(body);
    last_headers = headers;
    if (statuses.empty()) {
      return absl::UnavailableError("connection refused");
    }
    int s = statuses.front();
    statuses.erase(statuses.begin());
    return HttpResponse{s, ""};
  }
  std::mutex mu;
  absl::Duration hang = absl::Seconds(3);
  std::vector<int> statuses;
  std::vector<std::string> urls, bodies;
  std::vector<std::pair<std::string, std::string>> last_headers;
};

Delivery MakeDelivery(int64_t id, const std::string& url, const std::string& account = "acct") {
  Delivery d;
  d.id = id;
  d.account_id = account;
  d.url = url;
  d.notification.id = 40 + id;
  d.notification.type = "report.completed";
  d.notification.report_id = "r1";
  d.notification.report_state = "SUCCEEDED";
  return d;
}

TEST(WebhookSenderTest, RetriesWithExponentialBackoffThenDelivers) {
  FakeStore store;
  FakePoster poster;
  metrics::Registry registry;
  WebhookSenderOptions o;
  o.allow_internal = true;
  o.backoff = absl::Seconds(1);
  WebhookSender sender(o, &store, &poster, &registry);
  store.due.push_back(MakeDelivery(1, "http://127.0.0.1:9/hook"));
  poster.statuses = {500, 503, 204};
  EXPECT_EQ(sender.SendDue(), 1);
  EXPECT_EQ(sender.SendDue(), 1);
  EXPECT_EQ(sender.SendDue(), 1);
  EXPECT_EQ(store.delivered, std::vector<int64_t>{1});
  EXPECT_EQ(store.retries, (std::vector<absl::Duration>{absl::Seconds(1), absl::Seconds(2)}));
  EXPECT_EQ(sender.SendDue(), 0);
  EXPECT_NE(poster.bodies.back().find("\"id\":\"41\""), std::string::npos) << poster.bodies.back();
  bool has_id_header = false;
  for (const auto& [k, v] : poster.last_headers) {
    if (k == "kurt-notification-id" && v == "41") {
      has_id_header = true;
    }
  }
  EXPECT_TRUE(has_id_header);
  EXPECT_EQ(sender.Backoff(30), absl::Hours(1));
}

TEST(WebhookSenderTest, GivesUpAfterTheLastAttempt) {
  FakeStore store;
  FakePoster poster;
  metrics::Registry registry;
  WebhookSenderOptions o;
  o.allow_internal = true;
  o.max_attempts = 2;
  WebhookSender sender(o, &store, &poster, &registry);
  store.due.push_back(MakeDelivery(7, "http://127.0.0.1:9/hook"));
  sender.SendDue();
  sender.SendDue();
  EXPECT_EQ(store.failed, std::vector<int64_t>{7});
  EXPECT_TRUE(store.delivered.empty());
}

TEST(WebhookSenderTest, InternalTargetsAreNeverPostedWithoutTheFlag) {
  FakeStore store;
  FakePoster poster;
  metrics::Registry registry;
  WebhookSenderOptions o;
  o.max_attempts = 1;
  WebhookSender sender(o, &store, &poster, &registry);
  store.due.push_back(MakeDelivery(3, "http://127.0.0.1:9/hook"));
  poster.statuses = {200};
  sender.SendDue();
  EXPECT_TRUE(poster.urls.empty());
  EXPECT_EQ(store.failed, std::vector<int64_t>{3});
  EXPECT_NE(store.last_error.find("loopback"), std::string::npos) << store.last_error;
}

// Every name resolves to loopback at once.
absl::StatusOr<std::vector<boost::asio::ip::tcp::endpoint>> Loopback(const std::string&, int port) {
  return std::vector<boost::asio::ip::tcp::endpoint>{
      {boost::asio::ip::make_address("127.0.0.1"), static_cast<uint16_t>(port)}};
}

std::string Header(const std::vector<std::pair<std::string, std::string>>& headers,
                   const std::string& name) {
  for (const auto& [k, v] : headers) {
    if (k == name) {
      return v;
    }
  }
  return "";
}

TEST(WebhookSenderTest, SignsEachDeliveryWithTheAccountsSecret) {
  FakeStore store;
  FakePoster poster;
  metrics::Registry registry;
  WebhookSenderOptions o;
  o.allow_internal = true;
  WebhookSender sender(o, &store, &poster, &registry);
  Delivery d = MakeDelivery(1, "http://127.0.0.1:9/hook");
  d.secret = "whsec_0123";
  store.due.push_back(d);
  poster.statuses = {200};
  const absl::Time before = absl::Now();
  ASSERT_EQ(sender.SendDue(), 1);
  const std::string signature = Header(poster.last_headers, "kurt-signature");
  std::vector<std::string> parts = absl::StrSplit(signature, ',');
  ASSERT_EQ(parts.size(), 2u) << signature;
  ASSERT_TRUE(absl::StartsWith(parts[0], "t=")) << signature;
  int64_t t = 0;
  ASSERT_TRUE(absl::SimpleAtoi(parts[0].substr(2), &t)) << signature;
  EXPECT_NEAR(static_cast<double>(t), static_cast<double>(absl::ToUnixSeconds(before)), 2);
  EXPECT_EQ(signature, SignWebhook("whsec_0123", absl::FromUnixSeconds(t), poster.bodies.back()));
}

TEST(WebhookSenderTest, ADeliveryWhoseLeaseWouldLapseMidPostIsNeitherSentNorRecorded) {
  FakeStore store;
  FakePoster poster;
  metrics::Registry registry;
  WebhookSenderOptions o;
  o.allow_internal = true;
  o.lookup = Loopback;
  // A POST may take 5 s but the lease is 2 s: another sender could claim it while in flight.
  o.timeout = absl::Seconds(5);
  o.resolve_timeout = absl::Seconds(1);
  o.lease = absl::Seconds(2);
  WebhookSender sender(o, &store, &poster, &registry);
  store.due.push_back(MakeDelivery(1, "http://hook.example/x"));
  poster.statuses = {200};
  EXPECT_EQ(sender.SendDue(), 1);
  EXPECT_TRUE(poster.urls.empty()) << "posted although its lease could lapse first";
  EXPECT_TRUE(store.delivered.empty());
  EXPECT_NE(registry.Render().find(
                R"(kurt_notifications_webhook_attempts_total{outcome="lease_lapsed"} 1)"),
            std::string::npos)
      << registry.Render();
}

TEST(WebhookSenderTest, AnOutcomeFencedByANewerClaimIsCountedNotRetried) {
  FakeStore store;
  FakePoster poster;
  metrics::Registry registry;
  WebhookSenderOptions o;
  o.allow_internal = true;
  o.lookup = Loopback;
  WebhookSender sender(o, &store, &poster, &registry);
  store.due.push_back(MakeDelivery(1, "http://hook.example/x"));
  store.fence_all = true;
  poster.statuses = {200};
  EXPECT_EQ(sender.SendDue(), 1);
  EXPECT_TRUE(store.delivered.empty());
  EXPECT_NE(
      registry.Render().find(R"(kurt_notifications_webhook_attempts_total{outcome="fenced"} 1)"),
      std::string::npos)
      << registry.Render();
}

TEST(WebhookSenderTest, AHangingEndpointDoesNotDelayOtherAccounts) {
  FakeStore store;
  FakePoster poster;
  poster.hang = absl::Seconds(3);
  metrics::Registry registry;
  WebhookSenderOptions o;
  o.allow_internal = true;
  o.lookup = Loopback;
  o.poll_interval = absl::Milliseconds(50);
  WebhookSender sender(o, &store, &poster, &registry);
  // The hanging account's deliveries come first, and it has several.
  store.due.push_back(MakeDelivery(1, "http://hangs.example/x", "slow-account"));
  store.due.push_back(MakeDelivery(2, "http://hangs.example/x", "slow-account"));
  store.due.push_back(MakeDelivery(3, "http://answers.example/x", "fast-account"));
  poster.statuses = {200};
  const absl::Time start = absl::Now();
  sender.Start();
  while (true) {
    {
      std::lock_guard<std::mutex> lock(store.mu);
      if (!store.delivered.empty() || absl::Now() - start > absl::Seconds(10)) {
        break;
      }
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  {
    std::lock_guard<std::mutex> lock(store.mu);
    ASSERT_EQ(store.delivered, std::vector<int64_t>{3});
    EXPECT_LT(store.delivered_at[0] - start, absl::Milliseconds(500))
        << "the fast account waited for the hanging one";
  }
  sender.Stop();
}

TEST(CompletedConsumerTest, StoresEachEventOnceAndSkipsGarbage) {
  FakeStore store;
  metrics::Registry registry;
  CompletedConsumer consumer(&store, nullptr, &registry);
  events::v1::ReportCompleted e;
  e.set_event_id("r1/completed");
  e.set_account_id("acct");
  e.set_report_id("r1");
  kafka::Message good;
  good.value = e.SerializeAsString();
  kafka::Message garbage;
  garbage.value = "\xff\xff not a protobuf";
  ASSERT_TRUE(consumer.HandleBatch({good, garbage, good}).ok());
  ASSERT_TRUE(consumer.HandleBatch({good}).ok());
  EXPECT_EQ(store.seen.size(), 1u);
  std::string text = registry.Render();
  EXPECT_NE(text.find("kurt_notifications_stored_total 1"), std::string::npos) << text;
  EXPECT_NE(text.find("kurt_notifications_unreadable_events_total 1"), std::string::npos);
  EXPECT_NE(text.find("kurt_notifications_duplicate_events_total 2"), std::string::npos);
}

TEST(NotificationTest, MessagesSayWhatHappened) {
  events::v1::ReportCompleted e;
  e.set_kind(reports::v1::CLICKS_CSV);
  e.set_state(reports::v1::SUCCEEDED);
  e.set_row_count(12);
  EXPECT_EQ(MessageFor(e), "Your CSV report of clicks is ready (12 clicks).");
  e.set_kind(reports::v1::SUMMARY_JSON);
  e.set_state(reports::v1::FAILED);
  e.set_error("gave up");
  EXPECT_EQ(MessageFor(e), "Your JSON summary failed: gave up");
  NotificationRecord r;
  r.id = 5;
  r.report_id = "abc";
  r.report_state = "SUCCEEDED";
  r.report_kind = "CLICKS_CSV";
  v1::Notification n;
  ToProto(r, &n);
  EXPECT_EQ(n.id(), "5");
  EXPECT_EQ(n.report().content_path(), "/v1/reports/abc/content");
  EXPECT_EQ(n.report().state(), reports::v1::SUCCEEDED);
}

}  // namespace
}  // namespace kurt::notifications
