// NotificationsRpcs over an in-memory store: pages and their tokens, acknowledgements, webhooks and
// live streams, as a caller sees them.
#include "services/notifications/notifications_rpcs.h"

#include <atomic>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "platform/grpc/pagination.h"

namespace kurt::notifications {
namespace {

using platform::Caller;

// The notifications and webhooks of every account, as PgNotificationStore keeps them.
class MemoryStore : public NotificationStore {
 public:
  // A new notification of `account`; returns its id.
  int64_t Add(const std::string& account) {
    std::lock_guard<std::mutex> lock(mu_);
    NotificationRecord n;
    n.id = static_cast<int64_t>(rows_.size()) + 1;
    n.account_id = account;
    n.type = "report.completed";
    n.message = absl::StrCat("notification ", n.id);
    n.create_time = absl::FromUnixSeconds(1700000000 + n.id);
    rows_.push_back(n);
    return n.id;
  }

  absl::StatusOr<int> StoreCompleted(const std::vector<events::v1::ReportCompleted>&) override {
    return absl::UnimplementedError("not used by the RPCs");
  }
  absl::StatusOr<std::vector<NotificationRecord>> List(const std::string& account_id, int limit,
                                                       int64_t before, bool unacked_only) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<NotificationRecord> out;
    for (auto it = rows_.rbegin(); it != rows_.rend() && static_cast<int>(out.size()) < limit;
         ++it) {
      if (it->account_id == account_id && (before == 0 || it->id < before) &&
          !(unacked_only && it->ack_time)) {
        out.push_back(*it);
      }
    }
    return out;
  }
  absl::StatusOr<std::vector<NotificationRecord>> After(const std::string& account_id,
                                                        int64_t after, int limit) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<NotificationRecord> out;
    for (const NotificationRecord& n : rows_) {
      if (n.account_id == account_id && n.id > after && static_cast<int>(out.size()) < limit) {
        out.push_back(n);
      }
    }
    return out;
  }
  absl::StatusOr<int64_t> LastId(const std::string& account_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    int64_t last = 0;
    for (const NotificationRecord& n : rows_) {
      if (n.account_id == account_id) {
        last = n.id;
      }
    }
    return last;
  }
  absl::StatusOr<NotificationRecord> Ack(const std::string& account_id, int64_t id) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (NotificationRecord& n : rows_) {
      if (n.id == id && n.account_id == account_id) {
        if (!n.ack_time) {
          n.ack_time = absl::FromUnixSeconds(1800000000 + acks_++);
        }
        return n;
      }
    }
    return absl::NotFoundError(absl::StrCat("no notification with id '", id, "'"));
  }
  absl::StatusOr<WebhookRecord> SetWebhook(const std::string& account_id, const std::string& url,
                                           const std::string& /*secret*/) override {
    std::lock_guard<std::mutex> lock(mu_);
    WebhookRecord hook{url, absl::FromUnixSeconds(1900000000)};
    if (url.empty()) {
      webhooks_.erase(account_id);
    } else {
      webhooks_[account_id] = hook;
    }
    return hook;
  }
  absl::StatusOr<std::optional<WebhookRecord>> GetWebhook(const std::string& account_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = webhooks_.find(account_id);
    if (it == webhooks_.end()) {
      return std::nullopt;
    }
    return it->second;
  }
  absl::StatusOr<std::vector<Delivery>> ClaimDeliveries(int, absl::Duration,
                                                        const std::vector<std::string>&) override {
    return absl::UnimplementedError("not used by the RPCs");
  }
  absl::Status MarkDelivered(int64_t, int, int) override {
    return absl::UnimplementedError("not used by the RPCs");
  }
  absl::Status MarkAttemptFailed(int64_t, int, int, const std::string&,
                                 std::optional<absl::Duration>) override {
    return absl::UnimplementedError("not used by the RPCs");
  }

  size_t webhooks() {
    std::lock_guard<std::mutex> lock(mu_);
    return webhooks_.size();
  }

 private:
  std::mutex mu_;
  std::vector<NotificationRecord> rows_;  // by id
  std::map<std::string, WebhookRecord> webhooks_;
  int acks_ = 0;
};

// What a stream's client received.
class FakeWriter : public grpc::ServerWriterInterface<v1::Notification> {
 public:
  // Sent once the stream knows where it starts.
  void SendInitialMetadata() override { started = true; }
  bool Write(const v1::Notification& message, grpc::WriteOptions) override {
    std::lock_guard<std::mutex> lock(mu_);
    ids_.push_back(message.id());
    return true;
  }
  std::vector<std::string> ids() {
    std::lock_guard<std::mutex> lock(mu_);
    return ids_;
  }
  // Waits (up to 10 s) until `n` messages were written.
  bool WaitFor(size_t n) {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (ids().size() < n) {
      if (absl::Now() > deadline) {
        return false;
      }
      absl::SleepFor(absl::Milliseconds(5));
    }
    return true;
  }

  std::atomic<bool> started{false};

 private:
  std::mutex mu_;
  std::vector<std::string> ids_;
};

class NotificationsRpcsTest : public ::testing::Test {
 protected:
  explicit NotificationsRpcsTest(NotificationsRpcsOptions options = {})
      : hub_("", &registry_), rpcs_(options, &store_, &hub_, &registry_) {}

  metrics::Registry registry_;
  MemoryStore store_;
  NotificationHub hub_;
  NotificationsRpcs rpcs_;
};

v1::ListNotificationsRequest Page(int size, const std::string& token) {
  v1::ListNotificationsRequest request;
  request.set_page_size(size);
  request.set_page_token(token);
  return request;
}

TEST_F(NotificationsRpcsTest, PagesNewestFirstWithOpaqueTokens) {
  for (int i = 0; i < 45; ++i) {
    store_.Add(i % 3 == 0 ? "acct-b" : "acct-a");  // 30 of acct-a's among acct-b's
  }
  std::vector<int64_t> seen;
  std::string token;
  int pages = 0;
  do {
    auto page = rpcs_.ListNotifications(Caller("acct-a"), Page(12, token));
    ASSERT_TRUE(page.ok()) << page.status();
    ++pages;
    for (const v1::Notification& n : page->notifications()) {
      seen.push_back(std::stoll(n.id()));
    }
    token = page->next_page_token();
    if (!token.empty()) {
      // Not the id of the page's last row, nor any other number a client could make up.
      int64_t number = 0;
      EXPECT_FALSE(absl::SimpleAtoi(token, &number)) << token;
      EXPECT_NE(token, page->notifications().rbegin()->id());
    }
  } while (!token.empty() && pages < 10);
  EXPECT_EQ(pages, 3);
  ASSERT_EQ(seen.size(), 30u);
  for (size_t i = 1; i < seen.size(); ++i) {
    EXPECT_LT(seen[i], seen[i - 1]) << "newest first, each once";
  }
}

TEST_F(NotificationsRpcsTest, RefusesTokensThatAreNotFromAPreviousPage) {
  store_.Add("acct-a");
  const absl::Time now = absl::Now();
  for (const std::string& token :
       {std::string("garbage!"), std::string("17"), platform::EncodePageToken(now, "abc"),
        platform::EncodePageToken(now, "0"), platform::EncodePageToken(now, "-3"),
        platform::EncodePageToken(now, "")}) {
    auto page = rpcs_.ListNotifications(Caller("acct-a"), Page(10, token));
    EXPECT_EQ(page.status().code(), absl::StatusCode::kInvalidArgument) << token;
    EXPECT_TRUE(absl::StartsWith(page.status().message(), "page_token")) << page.status();
  }
  auto negative = rpcs_.ListNotifications(Caller("acct-a"), Page(-1, ""));
  EXPECT_EQ(negative.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(negative.status().message(), "page_size")) << negative.status();
}

TEST_F(NotificationsRpcsTest, ListsOnlyUnacknowledgedOnesWhenAsked) {
  const int64_t first = store_.Add("acct-a");
  const int64_t second = store_.Add("acct-a");
  v1::AckNotificationRequest ack;
  ack.set_id(absl::StrCat(first));
  ASSERT_TRUE(rpcs_.AckNotification(Caller("acct-a"), ack).ok());
  v1::ListNotificationsRequest request;
  request.set_unacked_only(true);
  auto page = rpcs_.ListNotifications(Caller("acct-a"), request);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->notifications_size(), 1);
  EXPECT_EQ(page->notifications(0).id(), absl::StrCat(second));
  EXPECT_TRUE(page->next_page_token().empty());
}

TEST_F(NotificationsRpcsTest, AcknowledgesOnlyTheCallersOwnNotifications) {
  const int64_t mine = store_.Add("acct-a");
  const int64_t theirs = store_.Add("acct-b");
  v1::AckNotificationRequest request;
  for (const std::string& id : {absl::StrCat(theirs), std::string("999"), std::string("abc"),
                                std::string("-1"), std::string("0")}) {
    request.set_id(id);
    auto acked = rpcs_.AckNotification(Caller("acct-a"), request);
    EXPECT_EQ(acked.status().code(), absl::StatusCode::kNotFound) << id;
    EXPECT_EQ(acked.status().message(), absl::StrCat("no notification with id '", id, "'"));
  }
  request.set_id("");
  auto empty = rpcs_.AckNotification(Caller("acct-a"), request);
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(empty.status().message(), "id: required");

  request.set_id(absl::StrCat(mine));
  auto acked = rpcs_.AckNotification(Caller("acct-a"), request);
  ASSERT_TRUE(acked.ok()) << acked.status();
  EXPECT_EQ(acked->id(), absl::StrCat(mine));
  ASSERT_TRUE(acked->has_ack_time());
  auto again = rpcs_.AckNotification(Caller("acct-a"), request);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->ack_time().seconds(), acked->ack_time().seconds()) << "the first time stays";
  // Still unacknowledged for its owner.
  v1::ListNotificationsRequest unacked;
  unacked.set_unacked_only(true);
  EXPECT_EQ(rpcs_.ListNotifications(Caller("acct-b"), unacked)->notifications_size(), 1);
}

TEST_F(NotificationsRpcsTest, WebhookUrlErrorsNameTheFieldAndStoreNothing) {
  for (const char* url : {"ftp://example.com/hook", "http://", "http://user:secret@example.com/",
                          "http://example.com:99999/", "http://127.0.0.1/hook",
                          "https://[::1]/hook", "http://10.1.2.3/hook"}) {
    v1::SetWebhookRequest request;
    request.set_url(url);
    auto hook = rpcs_.SetWebhook(Caller("acct-a"), request);
    EXPECT_EQ(hook.status().code(), absl::StatusCode::kInvalidArgument) << url;
    EXPECT_TRUE(absl::StartsWith(hook.status().message(), "url: ")) << hook.status();
  }
  EXPECT_EQ(store_.webhooks(), 0u);
  auto none = rpcs_.GetWebhook(Caller("acct-a"), {});
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->url(), "");
  EXPECT_FALSE(none->has_update_time());
}

class NotificationsRpcsForTestsTest : public NotificationsRpcsTest {
 protected:
  NotificationsRpcsForTestsTest()
      : NotificationsRpcsTest({.allow_internal_webhooks = true, .stream_poll = absl::Hours(1)}) {}
};

TEST_F(NotificationsRpcsForTestsTest, SetsGetsAndRemovesTheCallersWebhook) {
  v1::SetWebhookRequest request;
  request.set_url("http://127.0.0.1:8080/hook");
  auto set = rpcs_.SetWebhook(Caller("acct-a"), request);
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->url(), "http://127.0.0.1:8080/hook");
  EXPECT_TRUE(set->has_update_time());
  EXPECT_EQ(rpcs_.GetWebhook(Caller("acct-a"), {})->url(), "http://127.0.0.1:8080/hook");
  EXPECT_EQ(rpcs_.GetWebhook(Caller("acct-b"), {})->url(), "");

  // The signing secret is shown once, in the answer that set it; a new one each time.
  EXPECT_TRUE(std::regex_match(set->secret(), std::regex("whsec_[0-9a-f]{64}"))) << set->secret();
  EXPECT_EQ(rpcs_.GetWebhook(Caller("acct-a"), {})->secret(), "");
  auto again = rpcs_.SetWebhook(Caller("acct-a"), request);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_NE(again->secret(), set->secret());

  request.set_url("");
  auto removed = rpcs_.SetWebhook(Caller("acct-a"), request);
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(removed->url(), "");
  EXPECT_EQ(rpcs_.GetWebhook(Caller("acct-a"), {})->url(), "");
}

TEST_F(NotificationsRpcsForTestsTest, StreamsReplayAfterTheLastEventIdThenLiveOnesUntilStop) {
  for (int i = 0; i < 3; ++i) {
    store_.Add("acct-a");  // ids 1..3
  }
  store_.Add("acct-b");  // 4
  FakeWriter writer;
  absl::Status status;
  std::thread stream([&] {
    status = rpcs_.StreamNotifications(Caller("acct-a", {{"last-event-id", "1"}}),
                                       v1::StreamNotificationsRequest(), &writer);
  });
  ASSERT_TRUE(writer.WaitFor(2));
  // Stream polls are an hour apart: only the hub's wake-up can bring this one promptly.
  const int64_t live = store_.Add("acct-a");
  hub_.Wake("acct-a");
  ASSERT_TRUE(writer.WaitFor(3));
  hub_.Stop();
  stream.join();
  EXPECT_EQ(writer.ids(), (std::vector<std::string>{"2", "3", absl::StrCat(live)}));
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
}

TEST_F(NotificationsRpcsForTestsTest, StreamsWithoutAResumePointSendOnlyNewOnes) {
  store_.Add("acct-a");
  FakeWriter writer;
  std::thread stream([&] {
    v1::StreamNotificationsRequest request;
    (void)rpcs_.StreamNotifications(Caller("acct-a"), request, &writer);
  });
  while (!writer.started) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  const int64_t live = store_.Add("acct-a");
  hub_.Wake("acct-a");
  ASSERT_TRUE(writer.WaitFor(1));
  hub_.Stop();
  stream.join();
  EXPECT_EQ(writer.ids(), (std::vector<std::string>{absl::StrCat(live)}));
}

TEST_F(NotificationsRpcsForTestsTest, StreamsBeyondTheAccountsLimitAreRefusedAndCounted) {
  metrics::Registry registry;
  NotificationsRpcs limited({.stream_poll = absl::Hours(1), .max_streams_per_account = 2}, &store_,
                            &hub_, &registry);
  std::vector<std::unique_ptr<FakeWriter>> writers;
  std::vector<std::thread> open;
  for (int i = 0; i < 2; ++i) {
    writers.push_back(std::make_unique<FakeWriter>());
    open.emplace_back([&limited, w = writers.back().get()] {
      (void)limited.StreamNotifications(Caller("acct-a"), {}, w);
    });
  }
  for (const auto& w : writers) {
    while (!w->started) {
      absl::SleepFor(absl::Milliseconds(5));
    }
  }
  FakeWriter third;
  absl::Status refused = limited.StreamNotifications(Caller("acct-a"), {}, &third);
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(refused.message(),
            "this account already has 2 live notification streams open; close one before opening "
            "another");
  EXPECT_FALSE(third.started);
  EXPECT_NE(registry.Render().find("kurt_notifications_streams_refused_total 1"), std::string::npos)
      << registry.Render();
  // Another account is not limited by this one's streams.
  FakeWriter other;
  std::thread other_stream(
      [&] { (void)limited.StreamNotifications(Caller("acct-b"), {}, &other); });
  while (!other.started) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  hub_.Stop();
  for (std::thread& t : open) {
    t.join();
  }
  other_stream.join();
}

TEST_F(NotificationsRpcsTest, AResumePointThatIsNotAnIdIsRefused) {
  FakeWriter writer;
  v1::StreamNotificationsRequest request;
  request.set_after_id("not-a-number");
  absl::Status status = rpcs_.StreamNotifications(Caller("acct-a"), request, &writer);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "last-event-id: 'not-a-number' is not a notification id");
  EXPECT_TRUE(writer.ids().empty());
}

}  // namespace
}  // namespace kurt::notifications
