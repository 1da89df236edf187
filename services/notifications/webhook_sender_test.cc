// WebhookSender and CompletedConsumer over fakes.
#include "services/notifications/webhook_sender.h"

#include <map>

#include "gtest/gtest.h"
#include "services/notifications/completed_consumer.h"

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
  absl::StatusOr<WebhookRecord> SetWebhook(const std::string&, const std::string&) override {
    return WebhookRecord{};
  }
  absl::StatusOr<std::optional<WebhookRecord>> GetWebhook(const std::string&) override {
    return std::nullopt;
  }
  absl::StatusOr<std::vector<Delivery>> ClaimDeliveries(int, absl::Duration) override {
    std::vector<Delivery> out;
    for (auto& d : due) {
      ++d.attempts;
      out.push_back(d);
    }
    return out;
  }
  absl::Status MarkDelivered(int64_t id, int) override {
    delivered.push_back(id);
    std::erase_if(due, [&](const Delivery& d) { return d.id == id; });
    return absl::OkStatus();
  }
  absl::Status MarkAttemptFailed(int64_t id, int, const std::string& error,
                                 std::optional<absl::Duration> retry_in) override {
    last_error = error;
    if (!retry_in) {
      failed.push_back(id);
      std::erase_if(due, [&](const Delivery& d) { return d.id == id; });
    } else {
      retries.push_back(*retry_in);
    }
    return absl::OkStatus();
  }

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
  std::vector<int> statuses;
  std::vector<std::string> urls, bodies;
  std::vector<std::pair<std::string, std::string>> last_headers;
};

Delivery MakeDelivery(int64_t id, const std::string& url) {
  Delivery d;
  d.id = id;
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
