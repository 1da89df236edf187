// LinksRpcs with an in-memory store, the real Resolver over an in-memory cache, and a click sink
// that records what it is given; the last tests go through LinksService, the gRPC adapter.
#include "services/links/links_rpcs.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "grpcpp/test/server_context_test_spouse.h"
#include "gtest/gtest.h"
#include "platform/grpc/edge_trust.h"
#include "platform/grpc/pagination.h"
#include "platform/grpc/timestamps.h"
#include "services/common/field_rules_testing.h"
#include "services/common/link_code.h"
#include "services/common/mesh.h"
#include "services/common/user_agent.h"
#include "services/links/country_lookup.h"
#include "services/links/fake_link_cache.h"
#include "services/links/link_rules.h"
#include "services/links/links_service.h"
#include "services/links/qr_image.h"
#include "services/links/visitor_sources_testing.h"

namespace kurt::links {
namespace {

using platform::Caller;

bool ContainsIgnoringCase(const std::string& text, const std::string& part) {
  return absl::StrContains(absl::AsciiStrToLower(text), absl::AsciiStrToLower(part));
}

// The links table in memory, as PgLinksStore answers: a code stays taken once deleted, lists are
// newest first by (create_time, code). Each insert is `tick` after the one before.
class FakeLinksStore : public LinksStore {
 public:
  absl::StatusOr<LinkRecord> Insert(const LinkRecord& link) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++writes;
    if (rows_.contains(link.code)) {
      return absl::AlreadyExistsError("code taken");
    }
    Row& row = rows_[link.code];
    row.link = link;
    row.link.create_time = row.link.update_time = clock;
    clock += tick;
    return Shown(row.link);
  }
  // As PgLinksStore: all or nothing (`fail_batches` fails the whole batch before any insert),
  // the record kept per (account, request id).
  absl::StatusOr<BatchInsertResult> InsertBatch(const std::string& account_id,
                                                const std::string& request_id,
                                                const std::string& request_hash,
                                                std::vector<BatchLink> links,
                                                const std::function<std::string()>& new_code,
                                                const BatchRecorder& record) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++batches;
    if (!fail_batches.ok()) {
      return fail_batches;
    }
    BatchInsertResult out;
    if (!request_id.empty()) {
      if (auto it = batch_records_.find({account_id, request_id}); it != batch_records_.end()) {
        if (it->second.first != request_hash) {
          out.other_request = true;
        } else {
          out.replayed = it->second.second;
        }
        return out;
      }
    }
    for (BatchLink& l : links) {
      while (rows_.contains(l.link.code) && !l.alias) {
        l.link.code = new_code();
      }
      if (rows_.contains(l.link.code)) {
        out.created.emplace_back();
        continue;
      }
      Row& row = rows_[l.link.code];
      row.link = l.link;
      row.link.account_id = account_id;
      row.link.create_time = row.link.update_time = clock;
      clock += tick;
      out.created.emplace_back(Shown(row.link));
    }
    if (!request_id.empty()) {
      batch_records_[{account_id, request_id}] = {request_hash, record(out.created)};
    }
    return out;
  }
  absl::StatusOr<LinkRecord> Get(const std::string& account_id, const std::string& code) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++reads;
    const Row* row = Owned(account_id, code);
    if (row == nullptr) {
      return absl::NotFoundError(absl::StrCat("no link with code '", code, "'"));
    }
    return Shown(row->link);
  }
  absl::StatusOr<std::vector<LinkRecord>> List(const std::string& account_id, int limit,
                                               const std::optional<ListCursor>& after,
                                               const ListFilter& filter) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++reads;
    last_filter = filter;
    std::vector<LinkRecord> out;
    for (const auto& [code, row] : rows_) {
      if (row.deleted || row.link.account_id != account_id) {
        continue;
      }
      if (filter.tag && std::find(row.link.tags.begin(), row.link.tags.end(), *filter.tag) ==
                            row.link.tags.end()) {
        continue;
      }
      if (filter.query && !ContainsIgnoringCase(row.link.code, *filter.query) &&
          !ContainsIgnoringCase(row.link.target_url, *filter.query)) {
        continue;
      }
      if (after && std::tie(row.link.create_time, row.link.code) >=
                       std::tie(after->create_time, after->code)) {
        continue;
      }
      out.push_back(Shown(row.link));
    }
    std::sort(out.begin(), out.end(), [](const LinkRecord& a, const LinkRecord& b) {
      return std::tie(a.create_time, a.code) > std::tie(b.create_time, b.code);
    });
    if (static_cast<int>(out.size()) > limit) {
      out.resize(limit);
    }
    return out;
  }
  absl::StatusOr<LinkRecord> Update(const std::string& account_id, const std::string& code,
                                    const LinkUpdate& update) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++writes;
    Row* row = Owned(account_id, code);
    if (row == nullptr) {
      return absl::NotFoundError(absl::StrCat("no link with code '", code, "'"));
    }
    if (update.target_url) {
      row->link.target_url = *update.target_url;
    }
    if (update.clear_expire_time) {
      row->link.expire_time.reset();
    } else if (update.expire_time) {
      row->link.expire_time = update.expire_time;
    }
    if (update.tags) {
      row->link.tags = *update.tags;
    }
    LinkLimits& l = row->link.limits;
    if (update.clear_valid_since) {
      l.valid_since.reset();
    } else if (update.valid_since) {
      l.valid_since = update.valid_since;
    }
    if (update.clear_max_clicks) {
      l.max_clicks.reset();
      row->link.click_count = 0;
    } else if (update.max_clicks) {
      l.max_clicks = update.max_clicks;
    }
    if (update.clear_fallback_url) {
      l.fallback_url.reset();
    } else if (update.fallback_url) {
      l.fallback_url = update.fallback_url;
    }
    if (update.forward_query) {
      l.forward_query = *update.forward_query;
    }
    if (update.redirect_rules) {
      l.redirect_rules = *update.redirect_rules;
    }
    if (update.clear_password) {
      row->link.password_hash.reset();
    } else if (update.password_hash) {
      row->link.password_hash = update.password_hash;
    }
    l.password_protected = row->link.password_hash.has_value();
    if (l.valid_since && row->link.expire_time && *l.valid_since >= *row->link.expire_time) {
      return absl::InvalidArgumentError("valid_since: must be before the link's expire_time");
    }
    row->link.update_time = clock;
    return Shown(row->link);
  }
  absl::Status Delete(const std::string& account_id, const std::string& code) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++writes;
    Row* row = Owned(account_id, code);
    if (row == nullptr) {
      return absl::NotFoundError(absl::StrCat("no link with code '", code, "'"));
    }
    row->deleted = true;
    return absl::OkStatus();
  }
  absl::StatusOr<std::optional<ResolveRecord>> LookUp(const std::string& code, ReadFrom) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++lookups;
    auto it = rows_.find(code);
    if (it == rows_.end() || it->second.deleted) {
      return std::optional<ResolveRecord>();
    }
    return std::optional<ResolveRecord>(ResolveRecord{
        it->second.link.target_url, it->second.link.expire_time, it->second.link.limits});
  }
  // As the conditional UPDATE does: one at a time, never past max_clicks. Each first waits for
  // `count_waits` (when set), as an UPDATE waits for its row's lock.
  absl::StatusOr<bool> CountClick(const std::string& code) override {
    if (count_waits != nullptr) {
      count_waits->WaitForNotification();
    }
    std::lock_guard<std::mutex> lock(mu_);
    auto it = rows_.find(code);
    if (it == rows_.end() || it->second.deleted) {
      return false;
    }
    LinkRecord& l = it->second.link;
    if (l.limits.max_clicks && l.click_count >= *l.limits.max_clicks) {
      return false;
    }
    ++l.click_count;
    return true;
  }
  absl::Status UncountClick(const std::string& code) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = rows_.find(code);
    if (it != rows_.end() && it->second.link.click_count > 0) {
      --it->second.link.click_count;
    }
    return absl::OkStatus();
  }
  absl::StatusOr<std::optional<std::string>> PasswordHash(const std::string& code) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++password_reads;
    auto it = rows_.find(code);
    if (it == rows_.end() || it->second.deleted) {
      return absl::NotFoundError("no link");
    }
    return it->second.link.password_hash;
  }
  // As PgLinksStore reads a link: whether it has a password, never the hash.
  static LinkRecord Shown(LinkRecord link) {
    link.limits.password_protected = link.password_hash.has_value();
    link.password_hash.reset();
    return link;
  }

  // Every link, deleted ones too: what a refused request must leave as it was.
  std::map<std::string, LinkRecord> Snapshot() {
    std::lock_guard<std::mutex> lock(mu_);
    std::map<std::string, LinkRecord> out;
    for (const auto& [code, row] : rows_) {
      out[code] = row.link;
    }
    return out;
  }

  absl::Time clock = absl::FromUnixSeconds(1'700'000'000);
  absl::Duration tick = absl::Seconds(1);
  int reads = 0, writes = 0, lookups = 0, batches = 0, password_reads = 0;
  absl::Status fail_batches;
  ListFilter last_filter;
  absl::Notification* count_waits = nullptr;

 private:
  struct Row {
    LinkRecord link;
    bool deleted = false;
  };
  Row* Owned(const std::string& account_id, const std::string& code) {
    auto it = rows_.find(code);
    if (it == rows_.end() || it->second.deleted || it->second.link.account_id != account_id) {
      return nullptr;
    }
    return &it->second;
  }

  std::mutex mu_;
  std::map<std::string, Row> rows_;
  // (account, request id) -> (request hash, record)
  std::map<std::pair<std::string, std::string>, std::pair<std::string, std::string>> batch_records_;
};

// Records every click it is given; PublishAsync answers `publish_status` at once, on the caller's
// thread, PublishAll `publish_all_status`.
class RecordingClickSink : public ClickSink {
 public:
  void PublishAsync(const Click& click, absl::Time deadline,
                    std::function<void(const absl::Status&)> done) override {
    absl::Status answer;
    {
      std::lock_guard<std::mutex> lock(mu);
      last_deadline = deadline;
      if (publish_status.ok()) {
        published.push_back(click);
      }
      answer = publish_status;
    }
    done(answer);
  }
  absl::Status PublishAll(const std::vector<Click>& clicks, absl::Time deadline,
                          ClickWait wait) override {
    std::lock_guard<std::mutex> lock(mu);
    ++publish_all_calls;
    last_deadline = deadline;
    last_wait = wait;
    if (publish_all_status.ok()) {
      published.insert(published.end(), clicks.begin(), clicks.end());
    }
    return publish_all_status;
  }

  std::mutex mu;
  std::vector<Click> published;
  int publish_all_calls = 0;
  absl::Time last_deadline;
  std::optional<ClickWait> last_wait;
  absl::Status publish_all_status;
  absl::Status publish_status;
};

bool SameLink(const LinkRecord& a, const LinkRecord& b) {
  return a.code == b.code && a.account_id == b.account_id && a.target_url == b.target_url &&
         a.create_time == b.create_time && a.update_time == b.update_time &&
         a.expire_time == b.expire_time && a.tags == b.tags &&
         a.limits.valid_since == b.limits.valid_since &&
         a.limits.max_clicks == b.limits.max_clicks &&
         a.limits.fallback_url == b.limits.fallback_url &&
         a.limits.forward_query == b.limits.forward_query &&
         a.limits.redirect_rules == b.limits.redirect_rules && a.click_count == b.click_count;
}

bool SameLinks(const std::map<std::string, LinkRecord>& a,
               const std::map<std::string, LinkRecord>& b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](auto& x, auto& y) {
           return x.first == y.first && SameLink(x.second, y.second);
         });
}

google::protobuf::Timestamp ToTimestamp(absl::Time t) {
  google::protobuf::Timestamp out;
  platform::SetTimestamp(t, &out);
  return out;
}

class LinksRpcsTest : public ::testing::Test {
 protected:
  // The real uap-core regexes and country tables (Debian's uap-core and tor-geoipdb).
  static inline const user_agent::UapRegexes* const uap_ = visitor_testing::RealUapRegexes();
  static inline const CountryLookup* const countries_ = visitor_testing::RealCountries();

  static Caller As(const std::string& account) {
    return Caller(account, {{std::string{platform::kRequestIdMetadata}, "req-1"}});
  }

  absl::StatusOr<v1::Link> Create(const std::string& account, const std::string& target,
                                  const std::string& alias = "") {
    v1::CreateLinkRequest request;
    request.set_target_url(target);
    request.set_alias(alias);
    return rpcs_.CreateLink(As(account), request);
  }

  absl::StatusOr<v1::ResolveResponse> Resolve(const std::string& code,
                                              const Caller& caller = Caller("")) {
    // As it is served: asynchronously (a cache miss is answered from the resolver's load
    // threads; the fake cache and sink answer on the calling thread).
    v1::ResolveRequest request;
    request.set_code(code);
    v1::ResolveResponse response;
    absl::Status answer = absl::UnknownError("not answered");
    absl::Notification answered;
    rpcs_.ResolveAsync(caller, request, &response, [&](const absl::Status& s) {
      answer = s;
      answered.Notify();
    });
    if (!answered.WaitForNotificationWithTimeout(absl::Seconds(10))) {
      return absl::DeadlineExceededError("ResolveAsync never answered");
    }
    if (!answer.ok()) {
      return answer;
    }
    return response;
  }

  absl::StatusOr<v1::ListLinksResponse> List(const std::string& account, int page_size,
                                             const std::string& token) {
    v1::ListLinksRequest request;
    request.set_page_size(page_size);
    request.set_page_token(token);
    return rpcs_.ListLinks(As(account), request);
  }

  absl::StatusOr<google::api::HttpBody> Qr(const std::string& account, const std::string& code,
                                           const std::string& format = "",
                                           std::optional<int> size = std::nullopt) {
    v1::GetLinkQrCodeRequest request;
    request.set_code(code);
    request.set_format(format);
    if (size) {
      request.set_size(*size);
    }
    return rpcs_.GetLinkQrCode(As(account), request);
  }

  FakeLinksStore store_;
  FakeLinkCache cache_;
  metrics::Registry registry_;
  Resolver resolver_{&store_, &cache_, &registry_};
  RecordingClickSink clicks_;
  user_agent::ClassificationCache agents_{uap_};
  // The cheapest argon2id libsodium allows: the tests check behaviour, not cost.
  PasswordHasher passwords_{PasswordHasherOptions{1, 8192, 2}};
  LocalFailureThrottle unlock_failures_{[this] { return now_; }};
  absl::Time now_ = absl::FromUnixSeconds(1'700'000'000);
  LinksRpcs rpcs_{LinksRpcsOptions{.short_url_base = "https://kurt.test/",
                                   .visitors = {&agents_, countries_},
                                   .unlock_limits = UnlockLimits{3, 5, absl::Minutes(15)}},
                  &store_,
                  &resolver_,
                  &clicks_,
                  &passwords_,
                  &unlock_failures_};
};

TEST_F(LinksRpcsTest, CreateWithoutAnAliasMakesARandomCodeThatResolves) {
  absl::StatusOr<v1::Link> link = Create("acct-a", "https://example.com/page");
  ASSERT_TRUE(link.ok()) << link.status();
  EXPECT_EQ(link->code().size(), kRandomCodeLength);
  EXPECT_TRUE(IsWellFormedCode(link->code()));
  EXPECT_EQ(link->short_url(), "https://kurt.test/" + link->code());
  EXPECT_EQ(link->target_url(), "https://example.com/page");
  EXPECT_EQ(platform::FromTimestamp(link->create_time()), absl::FromUnixSeconds(1'700'000'000));
  EXPECT_FALSE(link->has_expire_time());
  EXPECT_EQ(store_.Snapshot().at(link->code()).account_id, "acct-a");

  absl::StatusOr<v1::ResolveResponse> resolved = Resolve(link->code());
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_EQ(resolved->target_url(), "https://example.com/page");
  EXPECT_EQ(store_.lookups, 0) << "the create wrote the link through to the cache";

  absl::StatusOr<v1::Link> other = Create("acct-a", "https://example.com/page");
  ASSERT_TRUE(other.ok());
  EXPECT_NE(other->code(), link->code());
}

TEST_F(LinksRpcsTest, CreateWithAnAliasUsesItAndATakenAliasIsAlreadyExistsNamingIt) {
  v1::CreateLinkRequest request;
  request.set_target_url("https://example.com/1");
  request.set_alias("my-alias");
  const absl::Time expiry = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()) + 3600);
  *request.mutable_expire_time() = ToTimestamp(expiry);
  absl::StatusOr<v1::Link> link = rpcs_.CreateLink(As("acct-a"), request);
  ASSERT_TRUE(link.ok()) << link.status();
  EXPECT_EQ(link->code(), "my-alias");
  EXPECT_EQ(link->short_url(), "https://kurt.test/my-alias");
  EXPECT_EQ(platform::FromTimestamp(link->expire_time()), expiry);
  const auto before = store_.Snapshot();

  absl::StatusOr<v1::Link> taken = Create("acct-b", "https://example.com/2", "my-alias");
  EXPECT_EQ(taken.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(taken.status().message(), "alias: 'my-alias' is already taken");
  EXPECT_TRUE(SameLinks(store_.Snapshot(), before));
  EXPECT_EQ(Resolve("my-alias")->target_url(), "https://example.com/1");
}

v1::CreateLinkRequest Item(const std::string& target, const std::string& alias = "") {
  v1::CreateLinkRequest item;
  item.set_target_url(target);
  item.set_alias(alias);
  return item;
}

TEST_F(LinksRpcsTest, BatchAnswersEachLinkInOrderWithTheLinkOrCreateLinksOwnError) {
  ASSERT_TRUE(Create("acct-1", "https://example.com/old", "taken").ok());
  v1::BatchCreateLinksRequest request;
  *request.add_links() = Item("https://example.com/0");
  *request.add_links() = Item("ftp://example.com/1");
  *request.add_links() = Item("https://example.com/2", "taken");
  *request.add_links() = Item("https://example.com/3", "mine");
  *request.add_links() = Item("https://example.com/4", "mine");
  v1::CreateLinkRequest past = Item("https://example.com/5");
  past.mutable_expire_time()->set_seconds(1);
  *request.add_links() = past;
  v1::CreateLinkRequest tagged = Item("https://example.com/6");
  tagged.add_tags("Sale");
  tagged.set_max_clicks(3);
  tagged.set_fallback_url("https://example.com/over");
  *request.add_links() = tagged;
  v1::CreateLinkRequest no_clicks = Item("https://example.com/7");
  no_clicks.set_max_clicks(0);
  *request.add_links() = no_clicks;

  absl::StatusOr<v1::BatchCreateLinksResponse> r = rpcs_.BatchCreateLinks(As("acct-1"), request);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->results_size(), 8);
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(r->results(i).index(), i);
  }
  ASSERT_TRUE(r->results(0).has_link());
  EXPECT_EQ(r->results(0).link().short_url(), "https://kurt.test/" + r->results(0).link().code());
  EXPECT_EQ(Resolve(r->results(0).link().code())->target_url(), "https://example.com/0");
  // The errors are those CreateLink gives for the same link.
  for (int i : {1, 2, 5, 7}) {
    ASSERT_TRUE(r->results(i).has_error()) << i;
    absl::StatusOr<v1::Link> alone = rpcs_.CreateLink(As("acct-1"), request.links(i));
    EXPECT_EQ(r->results(i).error().code(), static_cast<int>(alone.status().code())) << i;
    EXPECT_EQ(r->results(i).error().message(), alone.status().message()) << i;
  }
  EXPECT_EQ(r->results(2).error().message(), "alias: 'taken' is already taken");
  ASSERT_TRUE(r->results(3).has_link());
  EXPECT_EQ(r->results(3).link().code(), "mine");
  ASSERT_TRUE(r->results(4).has_error());
  EXPECT_EQ(r->results(4).error().code(), static_cast<int>(absl::StatusCode::kAlreadyExists));
  EXPECT_EQ(r->results(4).error().message(), "alias: 'mine' is already given by links[3]");
  EXPECT_EQ(Resolve("mine")->target_url(), "https://example.com/3");
  ASSERT_TRUE(r->results(6).has_link());
  EXPECT_EQ(r->results(6).link().tags(0), "sale");
  EXPECT_EQ(r->results(6).link().max_clicks(), 3);
  EXPECT_EQ(r->results(6).link().fallback_url(), "https://example.com/over");
  EXPECT_TRUE(absl::StartsWith(r->results(7).error().message(), "max_clicks: "))
      << r->ShortDebugString();
  EXPECT_EQ(store_.batches, 1);  // one store call, not one per link
}

TEST_F(LinksRpcsTest, BatchRetriedWithItsRequestIdCreatesNothingAndAnswersTheSame) {
  v1::BatchCreateLinksRequest request;
  request.set_request_id("retry-1");
  *request.add_links() = Item("https://example.com/a");
  *request.add_links() = Item("https://example.com/b", "bee");
  *request.add_links() = Item("nope");
  absl::StatusOr<v1::BatchCreateLinksResponse> first =
      rpcs_.BatchCreateLinks(As("acct-1"), request);
  ASSERT_TRUE(first.ok()) << first.status();
  const size_t links_after_first = store_.Snapshot().size();
  ASSERT_EQ(links_after_first, 2u);

  absl::StatusOr<v1::BatchCreateLinksResponse> again =
      rpcs_.BatchCreateLinks(As("acct-1"), request);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->SerializeAsString(), first->SerializeAsString());
  EXPECT_EQ(store_.Snapshot().size(), links_after_first);

  // The same request id with other links: refused whole, nothing created.
  v1::BatchCreateLinksRequest changed = request;
  changed.mutable_links(0)->set_target_url("https://example.com/changed");
  absl::Status reused = rpcs_.BatchCreateLinks(As("acct-1"), changed).status();
  EXPECT_TRUE(absl::IsInvalidArgument(reused)) << reused;
  EXPECT_EQ(reused.message(),
            "request_id: 'retry-1' was used in the last 24 hours for other links; give each batch "
            "its own");
  EXPECT_EQ(store_.Snapshot().size(), links_after_first);

  // Another account's request id is its own: its batch is created (the alias is taken now).
  absl::StatusOr<v1::BatchCreateLinksResponse> other =
      rpcs_.BatchCreateLinks(As("acct-2"), request);
  ASSERT_TRUE(other.ok()) << other.status();
  ASSERT_TRUE(other->results(0).has_link());
  EXPECT_NE(other->results(0).link().code(), first->results(0).link().code());
  EXPECT_EQ(other->results(1).error().message(), "alias: 'bee' is already taken");
  EXPECT_EQ(store_.Snapshot().size(), links_after_first + 1);
}

TEST_F(LinksRpcsTest, BatchOfNoneOrOverAThousandOrABadRequestIdIsRefusedWhole) {
  v1::BatchCreateLinksRequest none;
  absl::Status s = rpcs_.BatchCreateLinks(As("acct-1"), none).status();
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_TRUE(absl::StartsWith(s.message(), "links: ")) << s;

  v1::BatchCreateLinksRequest many;
  for (int i = 0; i < kMaxBatchLinks + 1; ++i) {
    *many.add_links() = Item(absl::StrCat("https://example.com/", i));
  }
  s = rpcs_.BatchCreateLinks(As("acct-1"), many).status();
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_EQ(s.message(), "links: at most 1000 links in one call, not 1001");
  const api::v1::FieldRules& links =
      rules_testing::RulesOf(v1::BatchCreateLinksRequest::descriptor(), "links");
  EXPECT_EQ(links.max_items(), static_cast<uint32_t>(kMaxBatchLinks));
  EXPECT_EQ(links.min_items(), 1u);

  many.mutable_links()->RemoveLast();
  many.set_request_id("has space");
  s = rpcs_.BatchCreateLinks(As("acct-1"), many).status();
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_TRUE(absl::StartsWith(s.message(), "request_id: ")) << s;
  EXPECT_TRUE(store_.Snapshot().empty());
  EXPECT_EQ(store_.batches, 0);

  many.set_request_id("fine");
  absl::StatusOr<v1::BatchCreateLinksResponse> r = rpcs_.BatchCreateLinks(As("acct-1"), many);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(store_.Snapshot().size(), 1000u);
}

TEST_F(LinksRpcsTest, BatchWhoseStoreFailsAnswersTheErrorAndCreatesNothing) {
  store_.fail_batches = absl::UnavailableError("primary down");
  v1::BatchCreateLinksRequest request;
  *request.add_links() = Item("https://example.com/a");
  absl::Status s = rpcs_.BatchCreateLinks(As("acct-1"), request).status();
  EXPECT_TRUE(absl::IsUnavailable(s)) << s;
  EXPECT_TRUE(store_.Snapshot().empty());
}

TEST_F(LinksRpcsTest, BadTargetAliasOrExpiryIsRefusedNamingTheFieldAndChangesNothing) {
  ASSERT_TRUE(Create("acct-a", "https://example.com/kept", "kept-link").ok());
  const auto before = store_.Snapshot();
  const int writes = store_.writes;
  struct Case {
    std::string target, alias, field;
  };
  for (const Case& c :
       std::vector<Case>{{"", "", "target_url"},
                         {"javascript:alert(1)", "", "target_url"},
                         {"ftp://example.com/", "", "target_url"},
                         {"https://user:pw@example.com/", "", "target_url"},
                         {"https://example.com/" + std::string(2100, 'a'), "", "target_url"},
                         {"https://example.com/", "ab", "alias"},
                         {"https://example.com/", "a/b", "alias"},
                         {"https://example.com/", "v1", "alias"},
                         {"https://example.com/", "healthz", "alias"},
                         {"javascript:alert(1)", "fine-alias", "target_url"}}) {
    absl::StatusOr<v1::Link> refused = Create("acct-a", c.target, c.alias);
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument)
        << c.target << " " << c.alias;
    EXPECT_TRUE(absl::StartsWith(refused.status().message(), c.field + ": ")) << refused.status();
  }
  for (const google::protobuf::Timestamp& expiry :
       {ToTimestamp(absl::Now() - absl::Seconds(1)), ToTimestamp(absl::FromUnixSeconds(1000))}) {
    v1::CreateLinkRequest request;
    request.set_target_url("https://example.com/");
    request.set_alias("expiring");
    *request.mutable_expire_time() = expiry;
    absl::StatusOr<v1::Link> refused = rpcs_.CreateLink(As("acct-a"), request);
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(refused.status().message(), "expire_time: must be in the future");
  }
  v1::CreateLinkRequest bad_nanos;
  bad_nanos.set_target_url("https://example.com/");
  bad_nanos.mutable_expire_time()->set_seconds(absl::ToUnixSeconds(absl::Now()) + 60);
  bad_nanos.mutable_expire_time()->set_nanos(-1);
  absl::StatusOr<v1::Link> refused = rpcs_.CreateLink(As("acct-a"), bad_nanos);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(refused.status().message(), "expire_time: ")) << refused.status();

  EXPECT_EQ(store_.writes, writes) << "nothing refused reached the store";
  EXPECT_TRUE(SameLinks(store_.Snapshot(), before));
  EXPECT_EQ(cache_.entries.size(), 1u) << "nor the cache";
  EXPECT_TRUE(clicks_.published.empty());
}

TEST_F(LinksRpcsTest, GetIsTheOwnersAndAMalformedCodeIsRefusedNamingIt) {
  absl::StatusOr<v1::Link> link = Create("acct-a", "https://example.com/mine", "mine-only");
  ASSERT_TRUE(link.ok());
  v1::GetLinkRequest get;
  get.set_code("mine-only");
  absl::StatusOr<v1::Link> got = rpcs_.GetLink(As("acct-a"), get);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->target_url(), "https://example.com/mine");
  EXPECT_EQ(got->short_url(), "https://kurt.test/mine-only");
  EXPECT_EQ(got->create_time().seconds(), link->create_time().seconds());
  EXPECT_EQ(rpcs_.GetLink(As("acct-b"), get).status().code(), absl::StatusCode::kNotFound);

  const int reads = store_.reads;
  for (const std::string& code : {std::string(), std::string("ab"), std::string("bad/code")}) {
    get.set_code(code);
    absl::Status refused = rpcs_.GetLink(As("acct-a"), get).status();
    EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument) << code;
    EXPECT_TRUE(absl::StartsWith(refused.message(), "code: ")) << refused;
  }
  EXPECT_EQ(store_.reads, reads);
}

TEST_F(LinksRpcsTest, ListsPageNewestFirstWithOpaqueTokensAndRefuseAGarbageToken) {
  std::vector<std::string> newest_first;
  for (int i = 0; i < 25; ++i) {
    // Links created in the same microsecond are ordered by code: the token must carry both.
    store_.tick = i % 3 == 0 ? absl::ZeroDuration() : absl::Seconds(1);
    absl::StatusOr<v1::Link> link = Create("acct-a", absl::StrCat("https://example.com/", i));
    ASSERT_TRUE(link.ok());
    newest_first.push_back(link->code());
  }
  ASSERT_TRUE(Create("acct-b", "https://example.com/other").ok());
  std::vector<LinkRecord> expected;
  for (const auto& [code, link] : store_.Snapshot()) {
    if (link.account_id == "acct-a") {
      expected.push_back(link);
    }
  }
  std::sort(expected.begin(), expected.end(), [](const LinkRecord& a, const LinkRecord& b) {
    return std::tie(a.create_time, a.code) > std::tie(b.create_time, b.code);
  });

  std::vector<std::string> seen;
  std::vector<int> page_sizes;
  std::string token;
  do {
    absl::StatusOr<v1::ListLinksResponse> page = List("acct-a", 10, token);
    ASSERT_TRUE(page.ok()) << page.status();
    page_sizes.push_back(page->links_size());
    for (const v1::Link& link : page->links()) {
      seen.push_back(link.code());
      EXPECT_EQ(link.short_url(), "https://kurt.test/" + link.code());
    }
    token = page->next_page_token();
    EXPECT_EQ(token.find(seen.back()), std::string::npos) << "the token is opaque";
    if (!token.empty()) {
      // Tokens handed out before stay valid: (create time, code) of the page's last link.
      const LinkRecord& last = expected[seen.size() - 1];
      EXPECT_EQ(token, platform::EncodePageToken(last.create_time, last.code));
    }
  } while (!token.empty() && page_sizes.size() < 10);
  EXPECT_EQ(page_sizes, (std::vector<int>{10, 10, 5}));
  std::vector<std::string> expected_codes;
  expected_codes.reserve(expected.size());
  for (const LinkRecord& link : expected) {
    expected_codes.push_back(link.code);
  }
  EXPECT_EQ(seen, expected_codes);
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()),
            std::set<std::string>(newest_first.begin(), newest_first.end()));

  absl::StatusOr<v1::ListLinksResponse> first = List("acct-a", 0, "");
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->links_size(), 20) << "page size 0 means 20";
  EXPECT_FALSE(first->next_page_token().empty());

  const int reads = store_.reads;
  for (const std::string& garbage :
       {std::string("not-a-token"), std::string("!!!"),
        platform::EncodePageToken(absl::Now(), "bad code!"), token + "x"}) {
    absl::Status refused = List("acct-a", 10, garbage).status();
    EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument) << garbage;
    EXPECT_EQ(refused.message(), "page_token: not a token from a previous page");
  }
  EXPECT_EQ(List("acct-a", -1, "").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_.reads, reads) << "refused requests read nothing";
}

TEST_F(LinksRpcsTest, UpdateChangesTargetAndExpiryAndRefusesNothingOrBothExpiries) {
  absl::StatusOr<v1::Link> link = Create("acct-a", "https://example.com/old", "updated");
  ASSERT_TRUE(link.ok());
  ASSERT_EQ(Resolve("updated")->target_url(), "https://example.com/old");
  const auto before = store_.Snapshot();
  const int writes = store_.writes;

  v1::UpdateLinkRequest nothing;
  nothing.set_code("updated");
  absl::Status refused = rpcs_.UpdateLink(As("acct-a"), nothing).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      refused.message(),
      "nothing to update: give target_url, expire_time, valid_since, max_clicks, fallback_url, "
      "forward_query, password, redirect_rules, tags, or one of their clear_ fields");

  v1::UpdateLinkRequest both;
  both.set_code("updated");
  *both.mutable_expire_time() = ToTimestamp(absl::Now() + absl::Hours(1));
  both.set_clear_expire_time(true);
  refused = rpcs_.UpdateLink(As("acct-a"), both).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(refused.message(), "expire_time: cannot be set together with clear_expire_time");

  v1::UpdateLinkRequest bad_target;
  bad_target.set_code("updated");
  bad_target.set_target_url("javascript:alert(1)");
  refused = rpcs_.UpdateLink(As("acct-a"), bad_target).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(refused.message(), "target_url: ")) << refused;

  v1::UpdateLinkRequest past;
  past.set_code("updated");
  *past.mutable_expire_time() = ToTimestamp(absl::Now() - absl::Seconds(1));
  EXPECT_EQ(rpcs_.UpdateLink(As("acct-a"), past).status().message(),
            "expire_time: must be in the future");
  EXPECT_EQ(store_.writes, writes);
  EXPECT_TRUE(SameLinks(store_.Snapshot(), before));

  v1::UpdateLinkRequest retarget;
  retarget.set_code("updated");
  retarget.set_target_url("https://example.com/new");
  EXPECT_EQ(rpcs_.UpdateLink(As("acct-b"), retarget).status().code(), absl::StatusCode::kNotFound);
  absl::StatusOr<v1::Link> updated = rpcs_.UpdateLink(As("acct-a"), retarget);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->target_url(), "https://example.com/new");
  EXPECT_EQ(Resolve("updated")->target_url(), "https://example.com/new")
      << "the update reached the cache at once";

  v1::UpdateLinkRequest expire;
  expire.set_code("updated");
  const absl::Time expiry = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()) + 3600);
  *expire.mutable_expire_time() = ToTimestamp(expiry);
  updated = rpcs_.UpdateLink(As("acct-a"), expire);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(platform::FromTimestamp(updated->expire_time()), expiry);
  EXPECT_EQ(updated->target_url(), "https://example.com/new");
  EXPECT_EQ(store_.Snapshot().at("updated").expire_time, expiry);

  v1::UpdateLinkRequest clear;
  clear.set_code("updated");
  clear.set_clear_expire_time(true);
  updated = rpcs_.UpdateLink(As("acct-a"), clear);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_FALSE(updated->has_expire_time());
  EXPECT_FALSE(store_.Snapshot().at("updated").expire_time.has_value());
  EXPECT_FALSE(cache_.entries.at("updated").expire_time.has_value());
}

TEST_F(LinksRpcsTest, ADeletedLinkStopsResolvingAndItsCodeIsNotHandedOutAgain) {
  ASSERT_TRUE(Create("acct-a", "https://example.com/gone", "gone-soon").ok());
  ASSERT_TRUE(Resolve("gone-soon").ok());
  v1::DeleteLinkRequest del;
  del.set_code("gone-soon");
  EXPECT_EQ(rpcs_.DeleteLink(As("acct-b"), del).code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(Resolve("gone-soon").ok()) << "another account's delete changed nothing";
  clicks_.published.clear();

  ASSERT_TRUE(rpcs_.DeleteLink(As("acct-a"), del).ok());
  absl::Status resolved = Resolve("gone-soon").status();
  EXPECT_EQ(resolved.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(resolved.message(), "no link with code 'gone-soon'");
  cache_.entries.clear();
  EXPECT_EQ(Resolve("gone-soon").status().code(), absl::StatusCode::kNotFound)
      << "from the store too";
  EXPECT_TRUE(clicks_.published.empty()) << "a failed resolve is no click";
  v1::GetLinkRequest get;
  get.set_code("gone-soon");
  EXPECT_EQ(rpcs_.GetLink(As("acct-a"), get).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(rpcs_.DeleteLink(As("acct-a"), del).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Create("acct-a", "https://example.com/again", "gone-soon").status().code(),
            absl::StatusCode::kAlreadyExists);
}

TEST_F(LinksRpcsTest, ResolvePublishesOneClickCarryingTheRedirectsMetadata) {
  ASSERT_TRUE(Create("acct-a", "https://example.com/clicked", "clicked").ok());
  const Caller visitor("", {{mesh::kRefererMetadata, "https://ref.example/"},
                            {mesh::kUserAgentMetadata, "TestAgent/1.0"},
                            {mesh::kClientIpMetadata, "203.0.113.7"},
                            {std::string{platform::kTraceparentMetadata},
                             "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}});
  const absl::Time before = absl::Now();
  absl::StatusOr<v1::ResolveResponse> resolved = Resolve("clicked", visitor);
  const absl::Time after = absl::Now();
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_EQ(resolved->target_url(), "https://example.com/clicked");

  ASSERT_EQ(clicks_.published.size(), 1u);
  const Click& click = clicks_.published[0];
  EXPECT_EQ(click.code, "clicked");
  EXPECT_GE(click.time, before);
  EXPECT_LE(click.time, after);
  EXPECT_EQ(click.referrer, "https://ref.example/");
  EXPECT_EQ(click.user_agent, "TestAgent/1.0");
  EXPECT_EQ(click.client_ip, "203.0.113.7");
  EXPECT_EQ(click.traceparent, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  EXPECT_EQ(clicks_.publish_all_calls, 0);
  EXPECT_LE(clicks_.last_deadline, after + LinksRpcsOptions().click_ack_timeout)
      << "without a caller's deadline, the wait for Kafka is bounded by click_ack_timeout";

  EXPECT_EQ(Resolve("unknown-code").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(clicks_.published.size(), 1u) << "an unknown code is no click";
}

TEST_F(LinksRpcsTest, AHeadRequestsClickSaysSoWhetherResolvedOrCached) {
  ASSERT_TRUE(Create("acct-a", "https://example.com/checked", "checked").ok());
  ASSERT_TRUE(Resolve("checked", Caller("", {{mesh::kRequestMethodMetadata, "HEAD"}})).ok());
  ASSERT_TRUE(Resolve("checked", Caller("", {})).ok());
  ASSERT_EQ(clicks_.published.size(), 2u);
  EXPECT_TRUE(clicks_.published[0].head);
  EXPECT_FALSE(clicks_.published[1].head);

  api::v1::CachedRedirects batch;
  api::v1::CachedRedirects::Hit hit;
  v1::ResolveRequest resolve;
  resolve.set_code("checked");
  hit.set_request(resolve.SerializeAsString());
  *hit.mutable_time() = ToTimestamp(absl::Now());
  (*hit.mutable_metadata())[mesh::kRequestMethodMetadata] = "HEAD";
  *batch.add_hits() = hit;
  ASSERT_TRUE(rpcs_.RecordCachedRedirects(Caller(""), batch).ok());
  ASSERT_EQ(clicks_.published.size(), 3u);
  EXPECT_TRUE(clicks_.published[2].head);
}

// The edge's click id is the event id, so that the same redirect sent again (the edge's retry on
// another replica) is one click for analytics; without one, or with one too long, a new id.
TEST_F(LinksRpcsTest, ResolvesClickIdIsTheEdgesWhenItFits) {
  ASSERT_TRUE(Create("acct-a", "https://example.com/ided", "ided").ok());
  ASSERT_TRUE(Resolve("ided", Caller("", {{mesh::kClickIdMetadata, "click-7"}})).ok());
  ASSERT_TRUE(Resolve("ided", Caller("", {{mesh::kClickIdMetadata, "click-7"}})).ok());
  ASSERT_TRUE(Resolve("ided").ok());
  ASSERT_TRUE(
      Resolve("ided", Caller("", {{mesh::kClickIdMetadata, std::string(kMaxClickIdSize + 1, 'x')}}))
          .ok());
  ASSERT_EQ(clicks_.published.size(), 4u);
  EXPECT_EQ(clicks_.published[0].id, "click-7");
  EXPECT_EQ(clicks_.published[1].id, "click-7");
  EXPECT_EQ(clicks_.published[2].id, "");  // the sink makes one
  EXPECT_EQ(clicks_.published[3].id, "");
}

// A redirect whose click Kafka does not have is refused: the visitor may try again, and no 302
// goes out that analytics might never count.
TEST_F(LinksRpcsTest, ResolveIsUnavailableWithoutATargetWhenItsClickIsNotRecorded) {
  ASSERT_TRUE(Create("acct-a", "https://example.com/unrecorded", "unrecorded").ok());
  clicks_.publish_status = absl::UnavailableError("1 of 1 clicks not yet in Kafka");
  const absl::Time caller_deadline = absl::Now() + absl::Seconds(2);
  absl::StatusOr<v1::ResolveResponse> resolved =
      Resolve("unrecorded", Caller("", {}, caller_deadline));
  ASSERT_EQ(resolved.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(resolved.status().message().find("could not be recorded"), std::string::npos)
      << resolved.status();
  EXPECT_NE(resolved.status().message().find("not yet in Kafka"), std::string::npos)
      << resolved.status();
  EXPECT_EQ(clicks_.last_deadline, caller_deadline - kResolveAnswerMargin)
      << "it answers before the caller gives up";

  clicks_.publish_status = absl::OkStatus();
  resolved = Resolve("unrecorded");
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_EQ(resolved->target_url(), "https://example.com/unrecorded");
  EXPECT_EQ(clicks_.published.size(), 1u);
}

TEST_F(LinksRpcsTest, ResolveOfAMalformedCodeIsNotFoundWithoutTouchingTheStoreOrCache) {
  for (const std::string& code : {std::string(), std::string("ab"), std::string("bad/code"),
                                  std::string("has space"), std::string(65, 'a')}) {
    absl::Status resolved = Resolve(code).status();
    EXPECT_EQ(resolved.code(), absl::StatusCode::kNotFound) << code;
    EXPECT_EQ(resolved.message(), absl::StrCat("no link with code '", code, "'"));
  }
  EXPECT_EQ(store_.lookups, 0);
  EXPECT_EQ(cache_.gets, 0);
  EXPECT_TRUE(clicks_.published.empty());
}

api::v1::CachedRedirects::Hit Hit(const std::string& code, absl::Time time,
                                  const std::string& agent) {
  api::v1::CachedRedirects::Hit hit;
  v1::ResolveRequest resolve;
  resolve.set_code(code);
  hit.set_request(resolve.SerializeAsString());
  *hit.mutable_time() = ToTimestamp(time);
  (*hit.mutable_metadata())[mesh::kUserAgentMetadata] = agent;
  (*hit.mutable_metadata())[mesh::kRefererMetadata] = "https://ref.example/cached";
  (*hit.mutable_metadata())[mesh::kClientIpMetadata] = "198.51.100.9";
  return hit;
}

// A batch whose redirects the edge holds is published at once (their wait is Kafka's); the
// others may be gathered by the unhurried producer, which costs far less per click.
TEST_F(LinksRpcsTest, OnlyAHeldBatchOfCachedHitsIsPublishedAsARedirectWaits) {
  api::v1::CachedRedirects batch;
  *batch.add_hits() = Hit("goodcode", absl::Now(), "Held/1");
  batch.set_held(true);
  ASSERT_TRUE(rpcs_.RecordCachedRedirects(Caller(""), batch).ok());
  EXPECT_EQ(clicks_.last_wait, ClickWait::kRedirectWaits);
  batch.set_held(false);
  ASSERT_TRUE(rpcs_.RecordCachedRedirects(Caller(""), batch).ok());
  EXPECT_EQ(clicks_.last_wait, ClickWait::kNothingWaits);
  EXPECT_EQ(clicks_.published.size(), 2u);
}

TEST_F(LinksRpcsTest, ACachedHitsClickIdIsItsEventId) {
  api::v1::CachedRedirects batch;
  *batch.add_hits() = Hit("goodcode", absl::Now(), "Ided/1");
  (*batch.mutable_hits(0)->mutable_metadata())[mesh::kClickIdMetadata] = "hit-1";
  *batch.add_hits() = Hit("goodcode", absl::Now(), "Ided/2");
  ASSERT_TRUE(rpcs_.RecordCachedRedirects(Caller(""), batch).ok());
  ASSERT_EQ(clicks_.published.size(), 2u);
  EXPECT_EQ(clicks_.published[0].id, "hit-1");
  EXPECT_EQ(clicks_.published[1].id, "");

  (*batch.mutable_hits(1)->mutable_metadata())[mesh::kClickIdMetadata] =
      std::string(kMaxClickIdSize + 1, 'x');
  absl::Status s = rpcs_.RecordCachedRedirects(Caller(""), batch);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(s.message(), "hits[1].metadata: x-kurt-click-id longer than")) << s;
  EXPECT_EQ(clicks_.published.size(), 2u);
}

TEST_F(LinksRpcsTest, ACachedRedirectBatchWithOneBadHitIsRefusedWholeNamingTheHit) {
  const absl::Time now = absl::Now();
  auto refused = [&](const api::v1::CachedRedirects& batch, const std::string& names) {
    absl::Status s = rpcs_.RecordCachedRedirects(Caller(""), batch);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << names;
    EXPECT_TRUE(absl::StrContains(s.message(), names)) << s;
  };
  api::v1::CachedRedirects batch;
  *batch.add_hits() = Hit("goodcode", now, "Refused/0");
  *batch.add_hits() = Hit("goodcode", now, "Refused/1");
  *batch.add_hits() = Hit("goodcode", now, "Refused/2");
  batch.mutable_hits(2)->set_request("\xff\xff not a message");
  refused(batch, "hits[2].request: not a kurt.links.v1.ResolveRequest");
  batch.mutable_hits(2)->set_request(Hit("bad code!", now, "x").request());
  refused(batch, "hits[2].request: code");
  *batch.mutable_hits(2) = Hit("goodcode", now + absl::Minutes(5), "Refused/2");
  refused(batch, "hits[2].time: more than a minute ahead");
  *batch.mutable_hits(2) = Hit("goodcode", now - absl::Hours(25), "Refused/2");
  refused(batch, "hits[2].time: more than a minute ahead");
  batch.mutable_hits(2)->mutable_time()->set_nanos(-1);
  refused(batch, "hits[2].time: not a valid timestamp");
  api::v1::CachedRedirects too_many;
  for (int i = 0; i <= kMaxCachedRedirectsPerCall; ++i) {
    *too_many.add_hits() = batch.hits(0);
  }
  refused(too_many, "hits: at most 10000 per call, not 10001");

  EXPECT_EQ(clicks_.publish_all_calls, 0);
  EXPECT_TRUE(clicks_.published.empty());
}

TEST_F(LinksRpcsTest, AGoodCachedRedirectBatchIsPublishedWholeBeforeTheCallersDeadline) {
  const absl::Time when = absl::FromUnixMicros(absl::ToUnixMicros(absl::Now()) - 3'000'123);
  api::v1::CachedRedirects batch;
  *batch.add_hits() = Hit("cachedone", when, "Agent/1");
  *batch.add_hits() = Hit("cachedone", when + absl::Milliseconds(1), "Agent/2");
  *batch.add_hits() = Hit("cachedtwo", when, "Agent/3");
  (*batch.mutable_hits(2)->mutable_metadata())[std::string{platform::kTraceparentMetadata}] =
      "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  ASSERT_TRUE(rpcs_.RecordCachedRedirects(Caller("", {}, deadline), batch).ok());

  EXPECT_EQ(clicks_.publish_all_calls, 1);
  EXPECT_EQ(clicks_.last_deadline, deadline - absl::Milliseconds(500))
      << "it answers before the caller stops waiting";
  ASSERT_EQ(clicks_.published.size(), 3u);
  const std::vector<std::tuple<std::string, absl::Time, std::string>> expected = {
      {"cachedone", when, "Agent/1"},
      {"cachedone", when + absl::Milliseconds(1), "Agent/2"},
      {"cachedtwo", when, "Agent/3"}};
  for (size_t i = 0; i < expected.size(); ++i) {
    const Click& click = clicks_.published[i];
    EXPECT_EQ(click.code, std::get<0>(expected[i]));
    EXPECT_EQ(click.time, std::get<1>(expected[i])) << "a hit's click is at the hit's time";
    EXPECT_EQ(click.user_agent, std::get<2>(expected[i]));
    EXPECT_EQ(click.referrer, "https://ref.example/cached");
    EXPECT_EQ(click.client_ip, "198.51.100.9");
  }
  EXPECT_EQ(clicks_.published[0].traceparent, "");
  EXPECT_EQ(clicks_.published[2].traceparent,
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  EXPECT_EQ(store_.lookups, 0) << "the edge resolved these itself";

  // Without a deadline it waits a bounded time; Kafka's failure is the caller's answer.
  clicks_.publish_all_status = absl::UnavailableError("not delivered: broker down");
  const absl::Time start = absl::Now();
  absl::Status unsent = rpcs_.RecordCachedRedirects(Caller(""), batch);
  EXPECT_EQ(unsent.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(unsent.message(), "not delivered: broker down");
  EXPECT_GE(clicks_.last_deadline, start + kCachedRedirectPublishTimeout);
  EXPECT_LE(clicks_.last_deadline, absl::Now() + kCachedRedirectPublishTimeout);
}

// Through the gRPC adapter: which RPCs need an account.
class LinksServiceTest : public LinksRpcsTest {
 protected:
  LinksService service_{&rpcs_};
};

TEST_F(LinksServiceTest, AccountRpcsAreUnauthenticatedWithoutAnAccountAndTouchNothing) {
  ASSERT_TRUE(Create("acct-a", "https://example.com/owned", "owned").ok());
  const auto before = store_.Snapshot();
  const int reads = store_.reads, writes = store_.writes;
  grpc::ServerContext context;  // no x-kurt-account-id
  v1::Link link;
  v1::CreateLinkRequest create;
  create.set_target_url("https://example.com/");
  v1::GetLinkRequest get;
  get.set_code("owned");
  v1::ListLinksRequest list;
  v1::ListLinksResponse listed;
  v1::UpdateLinkRequest update;
  update.set_code("owned");
  update.set_target_url("https://example.com/changed");
  v1::DeleteLinkRequest del;
  del.set_code("owned");
  google::protobuf::Empty empty;
  for (const grpc::Status& s :
       {service_.CreateLink(&context, &create, &link), service_.GetLink(&context, &get, &link),
        service_.ListLinks(&context, &list, &listed), service_.UpdateLink(&context, &update, &link),
        service_.DeleteLink(&context, &del, &empty)}) {
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_EQ(s.error_message(), "no authenticated account (x-kurt-account-id)");
  }
  EXPECT_EQ(store_.reads, reads);
  EXPECT_EQ(store_.writes, writes);
  EXPECT_TRUE(SameLinks(store_.Snapshot(), before));

  grpc::ServerContext with_account;
  grpc::testing::ServerContextTestSpouse spouse(&with_account);
  spouse.AddClientMetadata(std::string{platform::kAccountIdMetadata}, "acct-a");
  grpc::Status got = service_.GetLink(&with_account, &get, &link);
  ASSERT_TRUE(got.ok()) << got.error_message();
  EXPECT_EQ(link.target_url(), "https://example.com/owned");
}

TEST_F(LinksServiceTest, TheRedirectAndCachedRedirectsNeedNoAccount) {
  ASSERT_TRUE(Create("acct-a", "https://example.com/open", "open-link").ok());
  grpc::ServerContext context;
  grpc::testing::ServerContextTestSpouse spouse(&context);
  spouse.AddClientMetadata(mesh::kUserAgentMetadata, "Browser/1");
  v1::ResolveRequest resolve;
  resolve.set_code("open-link");
  v1::ResolveResponse resolved;
  // Resolve is served on the asynchronous API (a call needs a real server: the integration tests
  // make those); its access is the one any caller has, and it reads the call's metadata.
  const platform::Caller anyone(context);
  ASSERT_TRUE(platform::CheckAccess(anyone, platform::Access::kAnyCaller).ok());
  auto resolve_async = [&] {
    grpc::Status answer(grpc::StatusCode::UNKNOWN, "not answered");
    rpcs_.ResolveAsync(anyone, resolve, &resolved,
                       [&](const absl::Status& st) { answer = platform::ToGrpcStatus(st); });
    return answer;
  };
  grpc::Status s = resolve_async();
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resolved.target_url(), "https://example.com/open");
  ASSERT_EQ(clicks_.published.size(), 1u);
  EXPECT_EQ(clicks_.published[0].user_agent, "Browser/1") << "metadata read from the call";

  resolve.set_code("bad/code");
  s = resolve_async();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(s.error_message(), "no link with code 'bad/code'");

  api::v1::CachedRedirects batch;
  *batch.add_hits() = Hit("open-link", absl::Now(), "Agent/1");
  google::protobuf::Empty empty;
  // Only the edge may report cached redirects: a caller without its secret changes nothing.
  grpc::ServerContext stranger;
  s = service_.RecordCachedRedirects(&stranger, &batch, &empty);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(s.error_message().find("only the edge"), std::string::npos) << s.error_message();
  EXPECT_EQ(clicks_.published.size(), 1u);
  grpc::ServerContext edge;
  grpc::testing::ServerContextTestSpouse edge_spouse(&edge);
  edge_spouse.AddClientMetadata(std::string(platform::kEdgeSecretMetadata), "");
  s = service_.RecordCachedRedirects(&edge, &batch, &empty);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(clicks_.published.size(), 2u);
}

// Tags are kept in lower case, each once, in the order first given; an update replaces or clears
// them; a bad tag, too many, or tags with clear_tags change nothing.
TEST_F(LinksRpcsTest, TagsAreNormalizedReplacedAndCleared) {
  v1::CreateLinkRequest create;
  create.set_target_url("https://example.com/");
  create.set_alias("tagged");
  for (const char* t : {"Spring-Sale", "q2:promo", "spring-sale", "a.b_c"}) {
    create.add_tags(t);
  }
  absl::StatusOr<v1::Link> link = rpcs_.CreateLink(As("acct-a"), create);
  ASSERT_TRUE(link.ok()) << link.status();
  EXPECT_EQ(std::vector<std::string>(link->tags().begin(), link->tags().end()),
            (std::vector<std::string>{"spring-sale", "q2:promo", "a.b_c"}));

  const auto before = store_.Snapshot();
  const size_t announced = cache_.announced.size();
  auto update = [&](const std::vector<std::string>& tags, bool clear) {
    v1::UpdateLinkRequest request;
    request.set_code("tagged");
    for (auto& t : tags) {
      request.add_tags(t);
    }
    request.set_clear_tags(clear);
    return rpcs_.UpdateLink(As("acct-a"), request);
  };
  for (auto [tags, clear, field] :
       std::vector<std::tuple<std::vector<std::string>, bool, std::string>>{
           {{"ok", "bad tag"}, false, "tags[1]: "},
           {{""}, false, "tags[0]: "},
           {{std::string(51, 'x')}, false, "tags[0]: "},
           {{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"}, false, "tags: "},
           {{"a,b"}, false, "tags[0]: "},
           {{"x"}, true, "tags: "}}) {
    absl::Status s = update(tags, clear).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_TRUE(absl::StartsWith(s.message(), field)) << s;
  }
  EXPECT_TRUE(SameLinks(store_.Snapshot(), before));

  absl::StatusOr<v1::Link> replaced = update({"New", "new", "other"}, false);
  ASSERT_TRUE(replaced.ok()) << replaced.status();
  EXPECT_EQ(std::vector<std::string>(replaced->tags().begin(), replaced->tags().end()),
            (std::vector<std::string>{"new", "other"}));
  EXPECT_EQ(replaced->target_url(), "https://example.com/");
  // The redirect does not change with tags: its caches are left alone.
  EXPECT_EQ(cache_.announced.size(), announced);
  absl::StatusOr<v1::Link> cleared = update({}, true);
  ASSERT_TRUE(cleared.ok()) << cleared.status();
  EXPECT_EQ(cleared->tags_size(), 0);
}

// Filters by tag and query (code or target, any case) and pages through the filtered list.
TEST_F(LinksRpcsTest, ListFiltersByTagAndQueryAndPagesThroughThem) {
  for (int i = 0; i < 7; ++i) {
    v1::CreateLinkRequest create;
    create.set_target_url(absl::StrCat("https://Shop.example/item/", i));
    create.set_alias(absl::StrCat("item-", i));
    if (i % 2 == 0) {
      create.add_tags("Even");
    }
    ASSERT_TRUE(rpcs_.CreateLink(As("acct-a"), create).ok());
  }
  ASSERT_TRUE(Create("acct-b", "https://shop.example/other", "theirs").ok());
  auto list = [&](const std::string& tag, const std::string& query, int size,
                  const std::string& token) {
    v1::ListLinksRequest request;
    request.set_tag(tag);
    request.set_query(query);
    request.set_page_size(size);
    request.set_page_token(token);
    return rpcs_.ListLinks(As("acct-a"), request);
  };
  auto all_pages = [&](const std::string& tag, const std::string& query) {
    std::vector<std::string> codes;
    std::string token;
    do {
      absl::StatusOr<v1::ListLinksResponse> page = list(tag, query, 2, token);
      EXPECT_TRUE(page.ok()) << page.status();
      if (!page.ok()) {
        break;
      }
      for (const auto& l : page->links()) {
        codes.push_back(l.code());
      }
      token = page->next_page_token();
    } while (!token.empty());
    return codes;
  };
  EXPECT_EQ(all_pages("EVEN", ""),
            (std::vector<std::string>{"item-6", "item-4", "item-2", "item-0"}));
  EXPECT_EQ(store_.last_filter.tag, "even");
  EXPECT_EQ(all_pages("", "SHOP.EXAMPLE/ITEM/").size(), 7u);
  EXPECT_EQ(all_pages("", "tem-3"), (std::vector<std::string>{"item-3"}));
  EXPECT_EQ(all_pages("even", "item/4"), (std::vector<std::string>{"item-4"}));
  EXPECT_TRUE(all_pages("none", "").empty());

  const int reads = store_.reads;
  for (auto [tag, query, field] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"a b", "", "tag: "},
           {std::string(51, 'a'), "", "tag: "},
           {"", "ab", "query: "},
           {"", std::string(201, 'a'), "query: "},
           {"", "ab\ncd", "query: "}}) {
    absl::Status s = list(tag, query, 10, "").status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_TRUE(absl::StartsWith(s.message(), field)) << s;
  }
  EXPECT_EQ(store_.reads, reads);
}

// The QR code is the owner's short URL's (qr_image_test.cc scans the images themselves): PNG
// unless asked for SVG, 256 pixels unless asked otherwise; another account's link is NOT_FOUND.
TEST_F(LinksRpcsTest, QrCodeIsTheShortUrlsForItsOwnerOnly) {
  ASSERT_TRUE(Create("acct-a", "https://example.com/", "qr-link").ok());
  absl::StatusOr<google::api::HttpBody> png = Qr("acct-a", "qr-link");
  ASSERT_TRUE(png.ok()) << png.status();
  EXPECT_EQ(png->content_type(), "image/png");
  absl::StatusOr<QrImage> expected = RenderQr("https://kurt.test/qr-link", QrFormat::kPng, 256);
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ(png->data(), expected->data);

  absl::StatusOr<google::api::HttpBody> svg = Qr("acct-a", "qr-link", "svg", 2048);
  ASSERT_TRUE(svg.ok()) << svg.status();
  EXPECT_EQ(svg->content_type(), "image/svg+xml");
  EXPECT_EQ(svg->data(), RenderQr("https://kurt.test/qr-link", QrFormat::kSvg, 2048)->data);
  EXPECT_EQ(Qr("acct-a", "qr-link", "png", 64)->data(),
            RenderQr("https://kurt.test/qr-link", QrFormat::kPng, 64)->data);

  EXPECT_EQ(Qr("acct-b", "qr-link").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Qr("acct-a", "no-such-link").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(LinksRpcsTest, BadQrParametersAreRefusedNamingThemBeforeAnyRead) {
  ASSERT_TRUE(Create("acct-a", "https://example.com/", "qr-link").ok());
  const int reads = store_.reads;
  struct Case {
    std::string code, format;
    std::optional<int> size;
    std::string field;
  } cases[] = {{"qr-link", "PNG", std::nullopt, "format: "},
               {"qr-link", "jpeg", std::nullopt, "format: "},
               {"qr-link", "png", 63, "size: "},
               {"qr-link", "svg", 2049, "size: "},
               {"qr-link", "png", 0, "size: "},
               {"qr-link", "png", -256, "size: "},
               {"q", "png", 256, "code: "}};
  for (const Case& c : cases) {
    absl::Status s = Qr("acct-a", c.code, c.format, c.size).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.format << " " << s;
    EXPECT_TRUE(absl::StartsWith(s.message(), c.field)) << s;
  }
  EXPECT_EQ(store_.reads, reads);
}

// The checks of every annotated request field agree with its kurt.api.v1.rules (what the OpenAPI
// document publishes), at and past each limit.
TEST_F(LinksRpcsTest, MaxClicksLetsExactlyThatManyRedirectsThroughUnderConcurrency) {
  v1::CreateLinkRequest request;
  request.set_target_url("https://example.com/limited");
  request.set_alias("limited");
  request.set_max_clicks(25);
  absl::StatusOr<v1::Link> link = rpcs_.CreateLink(As("acct-a"), request);
  ASSERT_TRUE(link.ok()) << link.status();
  EXPECT_EQ(link->max_clicks(), 25);
  EXPECT_EQ(link->click_count(), 0);

  std::atomic<int> redirected{0}, not_found{0};
  std::vector<std::thread> threads;
  threads.reserve(8);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        absl::StatusOr<v1::ResolveResponse> r = Resolve("limited");
        if (r.ok()) {
          EXPECT_EQ(r->target_url(), "https://example.com/limited");
          EXPECT_EQ(r->cache_max_age_seconds(), 0) << "every redirect must come back to count";
          EXPECT_TRUE(r->has_cache_max_age_seconds());
          ++redirected;
        } else {
          EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound) << r.status();
          ++not_found;
        }
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(redirected, 25);
  EXPECT_EQ(not_found, 55);
  EXPECT_EQ(clicks_.published.size(), 25u) << "a refused redirect is no click";
  EXPECT_EQ(store_.Snapshot().at("limited").click_count, 25);

  // A fallback takes the refused ones; raising the limit lets more through, the count kept.
  v1::UpdateLinkRequest update;
  update.set_code("limited");
  update.set_fallback_url("https://example.com/sold-out");
  ASSERT_TRUE(rpcs_.UpdateLink(As("acct-a"), update).ok());
  EXPECT_EQ(Resolve("limited")->target_url(), "https://example.com/sold-out");
  update.clear_fallback_url();
  update.set_max_clicks(26);
  absl::StatusOr<v1::Link> raised = rpcs_.UpdateLink(As("acct-a"), update);
  ASSERT_TRUE(raised.ok()) << raised.status();
  EXPECT_EQ(raised->click_count(), 25);
  EXPECT_EQ(Resolve("limited")->target_url(), "https://example.com/limited");
  EXPECT_EQ(Resolve("limited")->target_url(), "https://example.com/sold-out");

  // Clearing the limit clears the count; the link resolves without counting.
  v1::UpdateLinkRequest clear;
  clear.set_code("limited");
  clear.set_clear_max_clicks(true);
  absl::StatusOr<v1::Link> cleared = rpcs_.UpdateLink(As("acct-a"), clear);
  ASSERT_TRUE(cleared.ok()) << cleared.status();
  EXPECT_FALSE(cleared->has_max_clicks());
  EXPECT_EQ(cleared->click_count(), 0);
  absl::StatusOr<v1::ResolveResponse> free = Resolve("limited");
  ASSERT_TRUE(free.ok());
  EXPECT_EQ(free->target_url(), "https://example.com/limited");
  EXPECT_FALSE(free->has_cache_max_age_seconds());
}

TEST_F(LinksRpcsTest, ARedirectWhoseDeadlinePassesWhileWaitingToBeCountedIsNotCounted) {
  v1::CreateLinkRequest create;
  create.set_target_url("https://example.com/limited");
  create.set_max_clicks(100);
  absl::StatusOr<v1::Link> link = rpcs_.CreateLink(As("acct"), create);
  ASSERT_TRUE(link.ok()) << link.status();

  // Every counting thread waits in its UPDATE; one more redirect waits for a thread, past its
  // caller's deadline.
  absl::Notification row_unlocked;
  store_.count_waits = &row_unlocked;
  v1::ResolveRequest request;
  request.set_code(link->code());
  struct Call {
    std::unique_ptr<Caller> caller;
    v1::ResolveResponse response;
    absl::Status answer;
    absl::Notification answered;
  };
  std::vector<Call> calls(kCountingThreads + 1);
  for (size_t i = 0; i < calls.size(); ++i) {
    Call& c = calls[i];
    c.caller = std::make_unique<Caller>(
        "", std::map<std::string, std::string>{},
        i < kCountingThreads ? absl::Now() + absl::Seconds(30) : absl::Now() + absl::Seconds(1));
    rpcs_.ResolveAsync(*c.caller, request, &c.response, [&c](const absl::Status& s) {
      c.answer = s;
      c.answered.Notify();
    });
  }
  absl::SleepFor(absl::Milliseconds(1100));
  row_unlocked.Notify();
  for (Call& c : calls) {
    ASSERT_TRUE(c.answered.WaitForNotificationWithTimeout(absl::Seconds(10)));
  }
  store_.count_waits = nullptr;
  for (size_t i = 0; i < kCountingThreads; ++i) {
    EXPECT_TRUE(calls[i].answer.ok()) << calls[i].answer;
  }
  EXPECT_TRUE(absl::IsDeadlineExceeded(calls.back().answer)) << calls.back().answer;
  absl::StatusOr<v1::Link> after = rpcs_.GetLink(As("acct"), [&] {
    v1::GetLinkRequest get;
    get.set_code(link->code());
    return get;
  }());
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->click_count(), kCountingThreads) << "the late redirect used up a click";
  EXPECT_EQ(clicks_.published.size(), static_cast<size_t>(kCountingThreads));
}

TEST_F(LinksRpcsTest, ARedirectWhoseClickIsNotRecordedGivesItsCountBack) {
  v1::CreateLinkRequest request;
  request.set_target_url("https://example.com/once");
  request.set_alias("once-only");
  request.set_max_clicks(1);
  ASSERT_TRUE(rpcs_.CreateLink(As("acct-a"), request).ok());
  clicks_.publish_status = absl::UnavailableError("kafka down");
  EXPECT_EQ(Resolve("once-only").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(store_.Snapshot().at("once-only").click_count, 0);
  clicks_.publish_status = absl::OkStatus();
  EXPECT_TRUE(Resolve("once-only").ok());
  EXPECT_EQ(Resolve("once-only").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(LinksRpcsTest, ValidSinceAndExpiryBoundTheRedirectAndItsCacheAge) {
  const absl::Time now = absl::Now();
  v1::CreateLinkRequest request;
  request.set_target_url("https://example.com/later");
  request.set_alias("not-yet");
  *request.mutable_valid_since() = ToTimestamp(now + absl::Hours(1));
  ASSERT_TRUE(rpcs_.CreateLink(As("acct-a"), request).ok());
  EXPECT_EQ(Resolve("not-yet").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(clicks_.published.empty());

  // With a fallback, the redirect before valid_since goes there, kept at most until valid_since.
  v1::UpdateLinkRequest fallback;
  fallback.set_code("not-yet");
  fallback.set_fallback_url("https://example.com/soon");
  ASSERT_TRUE(rpcs_.UpdateLink(As("acct-a"), fallback).ok());
  absl::StatusOr<v1::ResolveResponse> early = Resolve("not-yet");
  ASSERT_TRUE(early.ok()) << early.status();
  EXPECT_EQ(early->target_url(), "https://example.com/soon");
  EXPECT_GT(early->cache_max_age_seconds(), 3590);
  EXPECT_LE(early->cache_max_age_seconds(), 3600);

  // Moved into the past: the target, kept no longer than the expiry is away.
  v1::UpdateLinkRequest open;
  open.set_code("not-yet");
  *open.mutable_valid_since() = ToTimestamp(now - absl::Seconds(1));
  *open.mutable_expire_time() = ToTimestamp(now + absl::Seconds(3));
  ASSERT_TRUE(rpcs_.UpdateLink(As("acct-a"), open).ok());
  absl::StatusOr<v1::ResolveResponse> live = Resolve("not-yet");
  ASSERT_TRUE(live.ok()) << live.status();
  EXPECT_EQ(live->target_url(), "https://example.com/later");
  EXPECT_LE(live->cache_max_age_seconds(), 3);

  // valid_since at or after the expiry is refused, whether given together or against the stored.
  v1::UpdateLinkRequest inverted;
  inverted.set_code("not-yet");
  *inverted.mutable_valid_since() = ToTimestamp(now + absl::Hours(2));
  *inverted.mutable_expire_time() = ToTimestamp(now + absl::Hours(1));
  absl::Status refused = rpcs_.UpdateLink(As("acct-a"), inverted).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(refused.message(), "valid_since: ")) << refused;
  inverted.clear_expire_time();
  refused = rpcs_.UpdateLink(As("acct-a"), inverted).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument) << refused;

  // A plain link that expires in 2.5 s is kept 2 s at most; one that never expires, unbounded.
  v1::CreateLinkRequest soon;
  soon.set_target_url("https://example.com/soon-gone");
  soon.set_alias("soon-gone");
  *soon.mutable_expire_time() = ToTimestamp(absl::Now() + absl::Milliseconds(2500));
  ASSERT_TRUE(rpcs_.CreateLink(As("acct-a"), soon).ok());
  EXPECT_LE(Resolve("soon-gone")->cache_max_age_seconds(), 2);
  ASSERT_TRUE(Create("acct-a", "https://example.com/forever", "forever").ok());
  EXPECT_FALSE(Resolve("forever")->has_cache_max_age_seconds());
}

TEST_F(LinksRpcsTest, BadLimitsAreRefusedNamingTheFieldAndChangeNothing) {
  ASSERT_TRUE(Create("acct-a", "https://example.com/", "limits-bad").ok());
  const auto before = store_.Snapshot();
  const int writes = store_.writes;
  auto create = [&](auto&& set) {
    v1::CreateLinkRequest request;
    request.set_target_url("https://example.com/");
    set(request);
    return rpcs_.CreateLink(As("acct-a"), request).status();
  };
  auto update = [&](auto&& set) {
    v1::UpdateLinkRequest request;
    request.set_code("limits-bad");
    set(request);
    return rpcs_.UpdateLink(As("acct-a"), request).status();
  };
  auto names = [](const absl::Status& s, absl::string_view field) {
    return s.code() == absl::StatusCode::kInvalidArgument && absl::StartsWith(s.message(), field);
  };
  EXPECT_TRUE(names(create([](auto& r) { r.set_max_clicks(0); }), "max_clicks: "));
  EXPECT_TRUE(names(create([](auto& r) { r.set_max_clicks(-3); }), "max_clicks: "));
  EXPECT_TRUE(names(create([](auto& r) { r.set_max_clicks(1000000001); }), "max_clicks: "));
  EXPECT_TRUE(
      names(create([](auto& r) { r.set_fallback_url("ftp://x.example/"); }), "fallback_url: "));
  EXPECT_TRUE(names(create([](auto& r) { r.set_fallback_url(""); }), "fallback_url: "));
  EXPECT_TRUE(names(create([](auto& r) {
                      *r.mutable_expire_time() = ToTimestamp(absl::Now() + absl::Hours(1));
                      *r.mutable_valid_since() = ToTimestamp(absl::Now() + absl::Hours(2));
                    }),
                    "valid_since: "));
  EXPECT_TRUE(
      names(create([](auto& r) { r.mutable_valid_since()->set_nanos(-1); }), "valid_since: "));
  EXPECT_TRUE(names(update([](auto& r) {
                      r.set_max_clicks(3);
                      r.set_clear_max_clicks(true);
                    }),
                    "max_clicks: "));
  EXPECT_TRUE(names(update([](auto& r) {
                      r.set_fallback_url("https://x.example/");
                      r.set_clear_fallback_url(true);
                    }),
                    "fallback_url: "));
  EXPECT_TRUE(names(update([](auto& r) {
                      *r.mutable_valid_since() = ToTimestamp(absl::Now());
                      r.set_clear_valid_since(true);
                    }),
                    "valid_since: "));
  EXPECT_TRUE(names(update([](auto& r) { r.set_fallback_url("https://u:p@x.example/"); }),
                    "fallback_url: "));
  EXPECT_EQ(store_.writes, writes);
  EXPECT_TRUE(SameLinks(store_.Snapshot(), before));
}

TEST_F(LinksRpcsTest, ForwardQueryMergesTheShortUrlsQueryIntoTheTarget) {
  v1::CreateLinkRequest request;
  request.set_target_url("https://example.com/p?ref=kurt&utm_source=old#top");
  request.set_alias("forwards");
  request.set_forward_query(true);
  absl::StatusOr<v1::Link> link = rpcs_.CreateLink(As("acct-a"), request);
  ASSERT_TRUE(link.ok()) << link.status();
  EXPECT_TRUE(link->forward_query());
  Caller with_query("", {{std::string{mesh::kQueryMetadata}, "utm_source=news&utm_medium=mail"}});
  absl::StatusOr<v1::ResolveResponse> r = Resolve("forwards", with_query);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->target_url(), "https://example.com/p?ref=kurt&utm_source=news&utm_medium=mail#top");
  EXPECT_EQ(r->cache_max_age_seconds(), 0) << "the answer depends on the query";
  EXPECT_EQ(Resolve("forwards")->target_url(), "https://example.com/p?ref=kurt&utm_source=old#top");

  // Off again: the query is ignored, and the redirect may be cached.
  v1::UpdateLinkRequest off;
  off.set_code("forwards");
  off.set_forward_query(false);
  ASSERT_TRUE(rpcs_.UpdateLink(As("acct-a"), off).ok());
  r = Resolve("forwards", with_query);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->target_url(), "https://example.com/p?ref=kurt&utm_source=old#top");
  EXPECT_FALSE(r->has_cache_max_age_seconds());
}

constexpr char kIphoneAgent[] =
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.1 Mobile/15E148 Safari/604.1";
constexpr char kDesktopAgent[] =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36";

v1::RedirectRule RuleOf(const std::string& target,
                        const std::function<void(v1::RedirectCondition*)>& set) {
  v1::RedirectRule rule;
  rule.set_target_url(target);
  set(rule.add_conditions());
  return rule;
}

Caller Visiting(const std::string& agent, const std::string& languages, const std::string& ip,
                const std::string& query = "") {
  return Caller("", {{std::string{mesh::kUserAgentMetadata}, agent},
                     {std::string{mesh::kAcceptLanguageMetadata}, languages},
                     {std::string{mesh::kClientIpMetadata}, ip},
                     {std::string{mesh::kQueryMetadata}, query}});
}

TEST_F(LinksRpcsTest, RedirectRulesChooseTheTargetByTheVisitorAndAreNeverCached) {
  v1::CreateLinkRequest request;
  request.set_target_url("https://example.com/default");
  request.set_alias("ruled");
  *request.add_redirect_rules() =
      RuleOf("https://example.com/ios", [](auto* c) { c->set_os("ios"); });
  *request.add_redirect_rules() =
      RuleOf("https://example.com/fr", [](auto* c) { c->set_language("fr"); });
  *request.add_redirect_rules() =
      RuleOf("https://example.com/de", [](auto* c) { c->set_country("DE"); });
  absl::StatusOr<v1::Link> link = rpcs_.CreateLink(As("acct-a"), request);
  ASSERT_TRUE(link.ok()) << link.status();
  ASSERT_EQ(link->redirect_rules_size(), 3);
  EXPECT_EQ(link->redirect_rules(1).conditions(0).language(), "fr");
  EXPECT_EQ(link->redirect_rules(2).target_url(), "https://example.com/de");

  // An address of Germany's in Debian's tor-geoipdb.
  const std::string german = "2.26.24.1";
  ASSERT_EQ(countries_->Lookup(german), "DE");
  auto target = [&](const Caller& visitor) {
    absl::StatusOr<v1::ResolveResponse> r = Resolve("ruled", visitor);
    EXPECT_TRUE(r.ok()) << r.status();
    if (r.ok()) {
      EXPECT_TRUE(r->has_cache_max_age_seconds());
      EXPECT_EQ(r->cache_max_age_seconds(), 0) << "the answer depends on the visitor";
    }
    return r.ok() ? r->target_url() : std::string();
  };
  EXPECT_EQ(target(Visiting(kIphoneAgent, "fr", german)), "https://example.com/ios");
  EXPECT_EQ(target(Visiting(kDesktopAgent, "fr-FR,en;q=0.8", german)), "https://example.com/fr");
  EXPECT_EQ(target(Visiting(kDesktopAgent, "en,fr;q=0", german)), "https://example.com/de");
  EXPECT_EQ(target(Visiting(kDesktopAgent, "en", "127.0.0.1")), "https://example.com/default");
  EXPECT_EQ(target(Caller("")), "https://example.com/default");

  // The stored link has them: a fresh read (the cache dropped) answers the same.
  cache_.entries.erase("ruled");
  EXPECT_EQ(target(Visiting(kIphoneAgent, "", "")), "https://example.com/ios");
  v1::GetLinkRequest get;
  get.set_code("ruled");
  EXPECT_EQ(rpcs_.GetLink(As("acct-a"), get)->redirect_rules_size(), 3);

  // forward_query applies to a rule's target too.
  v1::UpdateLinkRequest forward;
  forward.set_code("ruled");
  forward.set_forward_query(true);
  ASSERT_TRUE(rpcs_.UpdateLink(As("acct-a"), forward).ok());
  EXPECT_EQ(target(Visiting(kIphoneAgent, "", "", "utm_source=x")),
            "https://example.com/ios?utm_source=x");

  // Replaced, then cleared: the default answers, and may be cached again.
  v1::UpdateLinkRequest replace;
  replace.set_code("ruled");
  *replace.add_redirect_rules() =
      RuleOf("https://example.com/mobile", [](auto* c) { c->set_device("mobile"); });
  absl::StatusOr<v1::Link> replaced = rpcs_.UpdateLink(As("acct-a"), replace);
  ASSERT_TRUE(replaced.ok()) << replaced.status();
  ASSERT_EQ(replaced->redirect_rules_size(), 1);
  EXPECT_EQ(target(Visiting(kIphoneAgent, "", "")), "https://example.com/mobile");
  EXPECT_EQ(target(Visiting(kDesktopAgent, "fr", german)), "https://example.com/default");
  v1::UpdateLinkRequest clear;
  clear.set_code("ruled");
  clear.set_clear_redirect_rules(true);
  clear.set_forward_query(false);
  absl::StatusOr<v1::Link> cleared = rpcs_.UpdateLink(As("acct-a"), clear);
  ASSERT_TRUE(cleared.ok()) << cleared.status();
  EXPECT_EQ(cleared->redirect_rules_size(), 0);
  absl::StatusOr<v1::ResolveResponse> r = Resolve("ruled", Visiting(kIphoneAgent, "", ""));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->target_url(), "https://example.com/default");
  EXPECT_FALSE(r->has_cache_max_age_seconds());
}

TEST_F(LinksRpcsTest, RedirectRulesApplyOnlyWithinTheLinksLimits) {
  v1::CreateLinkRequest request;
  request.set_target_url("https://example.com/default");
  request.set_alias("ruled-later");
  *request.mutable_valid_since() = ToTimestamp(absl::Now() + absl::Hours(1));
  request.set_fallback_url("https://example.com/not-yet");
  *request.add_redirect_rules() =
      RuleOf("https://example.com/ios", [](auto* c) { c->set_os("ios"); });
  ASSERT_TRUE(rpcs_.CreateLink(As("acct-a"), request).ok());
  absl::StatusOr<v1::ResolveResponse> r = Resolve("ruled-later", Visiting(kIphoneAgent, "", ""));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->target_url(), "https://example.com/not-yet");
  EXPECT_GT(r->cache_max_age_seconds(), 0) << "the fallback depends on no visitor";
}

TEST_F(LinksRpcsTest, BadRedirectRulesAreRefusedNamingTheFieldAndChangeNothing) {
  ASSERT_TRUE(Create("acct-a", "https://example.com/", "rules-bad").ok());
  const auto before = store_.Snapshot();
  const int writes = store_.writes;
  const v1::RedirectRule good =
      RuleOf("https://example.com/m", [](auto* c) { c->set_device("mobile"); });
  auto create = [&](const std::vector<v1::RedirectRule>& rules) {
    v1::CreateLinkRequest request;
    request.set_target_url("https://example.com/");
    for (const v1::RedirectRule& r : rules) {
      *request.add_redirect_rules() = r;
    }
    return rpcs_.CreateLink(As("acct-a"), request).status();
  };
  auto names = [](const absl::Status& s, absl::string_view field) {
    return s.code() == absl::StatusCode::kInvalidArgument && absl::StartsWith(s.message(), field);
  };
  EXPECT_TRUE(names(create(std::vector<v1::RedirectRule>(11, good)), "redirect_rules: "));
  EXPECT_TRUE(names(create({good, RuleOf("https://x.example/", [](auto* c) { c->set_os("ios"); }),
                            RuleOf("https://x.example/", [](auto* c) { c->set_os("beos"); })}),
                    "redirect_rules[2].conditions[0].os: "));
  EXPECT_TRUE(
      names(create({good, RuleOf("https://x.example/", [](auto* c) { c->set_country("fr"); })}),
            "redirect_rules[1].conditions[0].country: "));
  EXPECT_TRUE(names(create({RuleOf("javascript:alert(1)", [](auto* c) { c->set_os("ios"); })}),
                    "redirect_rules[0].target_url: "));
  v1::RedirectRule none = good;
  none.clear_conditions();
  EXPECT_TRUE(names(create({none}), "redirect_rules[0].conditions: "));

  v1::UpdateLinkRequest both;
  both.set_code("rules-bad");
  *both.add_redirect_rules() = good;
  both.set_clear_redirect_rules(true);
  EXPECT_TRUE(names(rpcs_.UpdateLink(As("acct-a"), both).status(), "redirect_rules: "));
  v1::UpdateLinkRequest bad;
  bad.set_code("rules-bad");
  *bad.add_redirect_rules() = RuleOf("https://x.example/", [](auto* c) { c->set_device("tv"); });
  EXPECT_TRUE(names(rpcs_.UpdateLink(As("acct-a"), bad).status(),
                    "redirect_rules[0].conditions[0].device: "));

  EXPECT_EQ(store_.writes, writes);
  EXPECT_TRUE(SameLinks(store_.Snapshot(), before));

  // In a batch, the bad link answers its error, naming the field as CreateLink does.
  v1::BatchCreateLinksRequest batch;
  *batch.add_links() = Item("https://example.com/");
  v1::CreateLinkRequest* item = batch.add_links();
  *item = Item("https://example.com/");
  *item->add_redirect_rules() =
      RuleOf("https://x.example/", [](auto* c) { c->set_language("english"); });
  absl::StatusOr<v1::BatchCreateLinksResponse> r = rpcs_.BatchCreateLinks(As("acct-b"), batch);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->results(0).has_link());
  EXPECT_TRUE(absl::StartsWith(r->results(1).error().message(),
                               "redirect_rules[0].conditions[0].language: "))
      << r->results(1).error().message();
  EXPECT_EQ(store_.Snapshot().size(), before.size() + 1) << "only the good link was added";
}

TEST_F(LinksRpcsTest, BatchCreatedLinksCarryTheirRedirectRules) {
  v1::BatchCreateLinksRequest batch;
  v1::CreateLinkRequest* item = batch.add_links();
  *item = Item("https://example.com/default");
  item->set_alias("batch-ruled");
  *item->add_redirect_rules() =
      RuleOf("https://example.com/bot", [](auto* c) { c->set_device("bot"); });
  absl::StatusOr<v1::BatchCreateLinksResponse> r = rpcs_.BatchCreateLinks(As("acct-a"), batch);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->results(0).has_link());
  EXPECT_EQ(r->results(0).link().redirect_rules(0).conditions(0).device(), "bot");
  absl::StatusOr<v1::ResolveResponse> resolved = Resolve(
      "batch-ruled",
      Visiting("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "", ""));
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_EQ(resolved->target_url(), "https://example.com/bot");
}

TEST_F(LinksRpcsTest, ChecksAgreeWithTheFieldRulesOfTheProtos) {
  using rules_testing::ExpectServiceAgrees;
  using rules_testing::RulesOf;
  using rules_testing::StringProbes;
  const api::v1::FieldRules& target = RulesOf(v1::CreateLinkRequest::descriptor(), "target_url");
  const std::vector<std::string> urls = StringProbes(
      target, {"http://example.com", "HTTPS://EXAMPLE.COM/X?q=1#f", "https://example.com:8080/p",
               "https://example.com:65535", "https://example.com:65536/", "https://example.com:0/",
               "https://[::1]:8080/", "https://a.b-c_d~e%41/", "ftp://example.com/",
               "https://user:pw@example.com/", "https://example.com/a b", "https://", "example.com",
               "https://ex\u00e4mple.com/", "https://ex<ample.com/", "https://:80/"});
  ExpectServiceAgrees(target, urls,
                      [&](const std::string& url) { return Create("acct-a", url).ok(); });
  const api::v1::FieldRules& fallback =
      RulesOf(v1::CreateLinkRequest::descriptor(), "fallback_url");
  ExpectServiceAgrees(fallback, urls, [&](const std::string& url) {
    v1::CreateLinkRequest request;
    request.set_target_url("https://example.com/");
    request.set_fallback_url(url);
    return rpcs_.CreateLink(As("acct-a"), request).ok();
  });
  rules_testing::ExpectServiceAgrees(RulesOf(v1::CreateLinkRequest::descriptor(), "max_clicks"),
                                     [&](int64_t n) {
                                       v1::CreateLinkRequest request;
                                       request.set_target_url("https://example.com/");
                                       request.set_max_clicks(static_cast<int32_t>(n));
                                       return rpcs_.CreateLink(As("acct-a"), request).ok();
                                     });
  // A redirect rule's target, and each kind of condition.
  const api::v1::FieldRules& rule_target = RulesOf(v1::RedirectRule::descriptor(), "target_url");
  auto with_rule = [&](const v1::RedirectRule& rule) {
    v1::CreateLinkRequest request;
    request.set_target_url("https://example.com/");
    *request.add_redirect_rules() = rule;
    return rpcs_.CreateLink(As("acct-a"), request).ok();
  };
  ExpectServiceAgrees(rule_target, urls, [&](const std::string& url) {
    return with_rule(RuleOf(url, [](auto* c) { c->set_os("ios"); }));
  });
  const google::protobuf::Descriptor* condition = v1::RedirectCondition::descriptor();
  ExpectServiceAgrees(
      RulesOf(condition, "device"),
      {"mobile", "tablet", "desktop", "bot", "Mobile", "phone", "tv", "", "mobile "},
      [&](const std::string& v) {
        return with_rule(RuleOf("https://x.example/", [&](auto* c) { c->set_device(v); }));
      });
  ExpectServiceAgrees(
      RulesOf(condition, "os"),
      {"android", "ios", "windows", "macos", "linux", "chromeos", "iOS", "osx", "", "other"},
      [&](const std::string& v) {
        return with_rule(RuleOf("https://x.example/", [&](auto* c) { c->set_os(v); }));
      });
  const api::v1::FieldRules& language = RulesOf(condition, "language");
  ExpectServiceAgrees(
      language,
      StringProbes(language, {"fr", "pt-BR", "zh-Hant", "gsw", "en-419", "e", "engl", "fr_FR",
                              "fr-", "fr-B", "fr-CA-x", "*", "es-abcdefghi", "dé"}),
      [&](const std::string& v) {
        return with_rule(RuleOf("https://x.example/", [&](auto* c) { c->set_language(v); }));
      });
  const api::v1::FieldRules& country = RulesOf(condition, "country");
  ExpectServiceAgrees(
      country, StringProbes(country, {"FR", "DE", "fr", "F", "FRA", "F1", "", "ÉU"}),
      [&](const std::string& v) {
        return with_rule(RuleOf("https://x.example/", [&](auto* c) { c->set_country(v); }));
      });

  const api::v1::FieldRules& update = RulesOf(v1::UpdateLinkRequest::descriptor(), "target_url");
  ASSERT_TRUE(Create("acct-a", "https://example.com/", "to-update").ok());
  ExpectServiceAgrees(update, urls, [&](const std::string& url) {
    v1::UpdateLinkRequest request;
    request.set_code("to-update");
    request.set_target_url(url);
    return rpcs_.UpdateLink(As("acct-a"), request).ok();
  });

  // Passwords, where a link takes one and where an update sets it.
  const api::v1::FieldRules& password = RulesOf(v1::CreateLinkRequest::descriptor(), "password");
  const std::vector<std::string> password_probes =
      StringProbes(password, {"abcd", "\u00e9\u00e9\u00e9\u00e9", "a b c", "abc", ""});
  ExpectServiceAgrees(password, password_probes, [&](const std::string& p) {
    v1::CreateLinkRequest request;
    request.set_target_url("https://example.com/");
    request.set_password(p);
    return rpcs_.CreateLink(As("acct-a"), request).ok();
  });
  ExpectServiceAgrees(RulesOf(v1::UpdateLinkRequest::descriptor(), "password"), password_probes,
                      [&](const std::string& p) {
                        v1::UpdateLinkRequest request;
                        request.set_code("to-update");
                        request.set_password(p);
                        return rpcs_.UpdateLink(As("acct-a"), request).ok();
                      });

  const api::v1::FieldRules& alias = RulesOf(v1::CreateLinkRequest::descriptor(), "alias");
  int n = 0;
  ExpectServiceAgrees(
      alias,
      StringProbes(alias, {"my-alias", "A_b-9", "ab.c", "ab c", "abc/", "ab%41", "\u00fcber"}),
      [&](const std::string& a) {
        // Each alias once (a taken one would be refused for that reason): suffix-free probes are
        // distinct, and a new account each time keeps them apart from the fixtures' links.
        return Create(absl::StrCat("acct-alias-", n++), "https://example.com/", a).ok();
      });

  // The code of GetLink, UpdateLink, DeleteLink and GetLinkStats: malformed is INVALID_ARGUMENT,
  // well-formed but unknown is NOT_FOUND.
  const api::v1::FieldRules& code = RulesOf(v1::GetLinkRequest::descriptor(), "code");
  ExpectServiceAgrees(code,
                      StringProbes(code, {"abc", "a-b_C", "ab.c", "ab c", "ab/c", "\u00e4bc"}),
                      [&](const std::string& c) {
                        v1::GetLinkRequest request;
                        request.set_code(c);
                        return rpcs_.GetLink(As("acct-a"), request).status().code() !=
                               absl::StatusCode::kInvalidArgument;
                      });

  const api::v1::FieldRules& request_id =
      RulesOf(v1::BatchCreateLinksRequest::descriptor(), "request_id");
  ExpectServiceAgrees(request_id, StringProbes(request_id, {"", "a b", "x\ty", "r\u00e9q", "~!"}),
                      [&](const std::string& id) {
                        v1::BatchCreateLinksRequest request;
                        request.set_request_id(id);
                        *request.add_links() = Item("https://example.com/");
                        return rpcs_.BatchCreateLinks(As("acct-a"), request).ok();
                      });

  // Tags, where a link takes them and where a list filters by one.
  const api::v1::FieldRules& tags = RulesOf(v1::CreateLinkRequest::descriptor(), "tags");
  const std::vector<std::string> tag_probes =
      StringProbes(tags, {"Q2:promo", "a.b_c-d", "a b", "a,b", "a/b", "caf\u00e9", "#x"});
  int tagged = 0;
  ExpectServiceAgrees(tags, tag_probes, [&](const std::string& t) {
    v1::CreateLinkRequest request;
    request.set_target_url("https://example.com/");
    request.set_alias(absl::StrCat("tagged-", tagged++));
    request.add_tags(t);
    return rpcs_.CreateLink(As("acct-a"), request).ok();
  });
  const api::v1::FieldRules& update_tags = RulesOf(v1::UpdateLinkRequest::descriptor(), "tags");
  ExpectServiceAgrees(update_tags, StringProbes(update_tags, {"a b", "ok"}),
                      [&](const std::string& t) {
                        v1::UpdateLinkRequest request;
                        request.set_code("to-update");
                        request.add_tags(t);
                        return rpcs_.UpdateLink(As("acct-a"), request).ok();
                      });
  const api::v1::FieldRules& tag = RulesOf(v1::ListLinksRequest::descriptor(), "tag");
  ExpectServiceAgrees(tag, StringProbes(tag, {"a b", "ok", "Q2:promo"}), [&](const std::string& t) {
    v1::ListLinksRequest request;
    request.set_tag(t);
    return rpcs_.ListLinks(As("acct-a"), request).ok();
  });
  const api::v1::FieldRules& query = RulesOf(v1::ListLinksRequest::descriptor(), "query");
  ExpectServiceAgrees(
      query, StringProbes(query, {"\u00e4\u00e4\u00e4", "50%_off", "a\tb", "abc\x7f", "x y"}),
      [&](const std::string& q) {
        v1::ListLinksRequest request;
        request.set_query(q);
        return rpcs_.ListLinks(As("acct-a"), request).ok();
      });

  ASSERT_TRUE(Create("acct-a", "https://example.com/", "qr-rules").ok());
  const api::v1::FieldRules& format = RulesOf(v1::GetLinkQrCodeRequest::descriptor(), "format");
  ExpectServiceAgrees(format, StringProbes(format, {"png", "svg", "PNG", "gif", "png ", "svgz"}),
                      [&](const std::string& f) { return Qr("acct-a", "qr-rules", f).ok(); });
  rules_testing::ExpectServiceAgrees(
      RulesOf(v1::GetLinkQrCodeRequest::descriptor(), "size"),
      [&](int64_t size) { return Qr("acct-a", "qr-rules", "", static_cast<int>(size)).ok(); });

  rules_testing::ExpectServiceAgrees(
      RulesOf(v1::ListLinksRequest::descriptor(), "page_size"),
      [&](int64_t size) { return List("acct-a", static_cast<int>(size), "").ok(); });
}

TEST_F(LinksRpcsTest, AProtectedLinkAnswersItsFormWithoutAClickAndRedirectsForItsPassword) {
  v1::CreateLinkRequest create;
  create.set_target_url("https://example.com/secret");
  create.set_password("letmein");
  absl::StatusOr<v1::Link> link = rpcs_.CreateLink(As("acct-a"), create);
  ASSERT_TRUE(link.ok()) << link.status();
  EXPECT_TRUE(link->password_protected());
  const std::string hash = *store_.PasswordHash(link->code()).value();
  EXPECT_TRUE(absl::StartsWith(hash, "$argon2id$")) << hash;
  EXPECT_EQ(link->DebugString().find("letmein"), std::string::npos);

  absl::StatusOr<v1::ResolveResponse> resolved = Resolve(link->code());
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_EQ(resolved->target_url(), "");
  EXPECT_EQ(resolved->cache_max_age_seconds(), 0);
  EXPECT_NE(resolved->page().data().find("<form"), std::string::npos);
  EXPECT_TRUE(clicks_.published.empty()) << "the form is no click";

  const int password_reads = store_.password_reads;
  v1::UnlockLinkRequest unlock;
  unlock.set_code(link->code());
  unlock.set_password("wrong");
  absl::StatusOr<v1::ResolveResponse> wrong = rpcs_.UnlockLink(Caller(""), unlock);
  EXPECT_TRUE(absl::IsUnauthenticated(wrong.status())) << wrong.status();
  EXPECT_TRUE(wrong.status().GetPayload("type.googleapis.com/google.api.HttpBody").has_value());
  EXPECT_TRUE(clicks_.published.empty());

  unlock.set_password("letmein");
  absl::StatusOr<v1::ResolveResponse> right = rpcs_.UnlockLink(Caller(""), unlock);
  ASSERT_TRUE(right.ok()) << right.status();
  EXPECT_EQ(right->target_url(), "https://example.com/secret");
  EXPECT_EQ(right->cache_max_age_seconds(), 0);
  EXPECT_EQ(clicks_.published.size(), 1u);
  EXPECT_EQ(clicks_.last_wait, ClickWait::kRedirectWaits) << "the unlocked redirect waits";
  EXPECT_EQ(store_.password_reads, password_reads + 2) << "the hash is read per attempt";

  // A link without a password: one cache read, no hash read, as before passwords existed.
  absl::StatusOr<v1::Link> open = Create("acct-a", "https://example.com/open");
  ASSERT_TRUE(open.ok());
  EXPECT_FALSE(open->password_protected());
  ASSERT_TRUE(Resolve(open->code()).ok());
  ASSERT_TRUE(Resolve(open->code()).ok());
  EXPECT_EQ(store_.password_reads, password_reads + 2);
}

TEST_F(LinksRpcsTest, WrongPasswordsAreLimitedPerClientAndLinkThenRefusedRightOrNot) {
  v1::CreateLinkRequest create;
  create.set_target_url("https://example.com/secret");
  create.set_password("letmein");
  absl::StatusOr<v1::Link> link = rpcs_.CreateLink(As("acct-a"), create);
  ASSERT_TRUE(link.ok());
  auto attempt = [&](const std::string& ip, const std::string& password) {
    v1::UnlockLinkRequest unlock;
    unlock.set_code(link->code());
    unlock.set_password(password);
    return rpcs_.UnlockLink(Caller("", {{std::string(mesh::kClientIpMetadata), ip}}), unlock)
        .status();
  };
  // 3 per client (the fixture's limits), 5 per link.
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(absl::IsUnauthenticated(attempt("10.0.0.1", "guess")));
  }
  absl::Status limited = attempt("10.0.0.1", "letmein");
  EXPECT_TRUE(absl::IsResourceExhausted(limited)) << limited;
  EXPECT_TRUE(limited.GetPayload("type.googleapis.com/google.rpc.RetryInfo").has_value());
  EXPECT_TRUE(attempt("10.0.0.2", "letmein").ok()) << "another client is not held back";
  EXPECT_TRUE(absl::IsUnauthenticated(attempt("10.0.0.2", "guess")));
  EXPECT_TRUE(absl::IsUnauthenticated(attempt("10.0.0.3", "guess")));
  // The link's own ceiling: 5 wrong ones from any clients.
  EXPECT_TRUE(absl::IsResourceExhausted(attempt("10.0.0.4", "letmein")));
  now_ += absl::Minutes(15);
  EXPECT_TRUE(attempt("10.0.0.1", "letmein").ok()) << "the window is over";
}

TEST_F(LinksRpcsTest, UpdatingThePasswordChangesTheRedirectAndAnnouncesIt) {
  absl::StatusOr<v1::Link> link = Create("acct-a", "https://example.com/x", "pw-later");
  ASSERT_TRUE(link.ok());
  ASSERT_TRUE(Resolve("pw-later").ok());
  v1::UpdateLinkRequest update;
  update.set_code("pw-later");
  update.set_password("secret!");
  absl::StatusOr<v1::Link> updated = rpcs_.UpdateLink(As("acct-a"), update);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_TRUE(updated->password_protected());
  EXPECT_NE(std::find(cache_.announced.begin(), cache_.announced.end(), "pw-later"),
            cache_.announced.end())
      << "edges holding its 302 must drop it";
  absl::StatusOr<v1::ResolveResponse> r = Resolve("pw-later");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->target_url(), "");
  EXPECT_TRUE(r->has_page());

  update.clear_password();
  update.set_clear_password(true);
  updated = rpcs_.UpdateLink(As("acct-a"), update);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_FALSE(updated->password_protected());
  r = Resolve("pw-later");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->target_url(), "https://example.com/x");
}

TEST_F(LinksRpcsTest, AProtectedLinkWithRulesAsksEveryoneThenUnlocksToTheRuleThatHolds) {
  v1::CreateLinkRequest create;
  create.set_target_url("https://example.com/default");
  create.set_alias("locked-rules");
  create.set_password("letmein");
  create.set_forward_query(true);
  *create.add_redirect_rules() =
      RuleOf("https://example.com/ios", [](auto* c) { c->set_os("ios"); });
  *create.add_redirect_rules() =
      RuleOf("https://example.com/fr", [](auto* c) { c->set_language("fr"); });
  absl::StatusOr<v1::Link> link = rpcs_.CreateLink(As("acct-a"), create);
  ASSERT_TRUE(link.ok()) << link.status();
  EXPECT_TRUE(link->password_protected());
  EXPECT_EQ(link->redirect_rules_size(), 2);

  // The form for every visitor, whichever rule would hold for them; no click.
  for (const Caller& visitor :
       {Visiting(kIphoneAgent, "", ""), Visiting(kDesktopAgent, "fr", ""), Caller("")}) {
    absl::StatusOr<v1::ResolveResponse> r = Resolve("locked-rules", visitor);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->target_url(), "");
    EXPECT_TRUE(r->has_page());
  }
  EXPECT_TRUE(clicks_.published.empty());

  // As Redis would hand it back: both the password and the rules survive the record.
  ASSERT_TRUE(cache_.entries.count("locked-rules"));
  const std::string record = cache_.entries.at("locked-rules").Encode();
  EXPECT_TRUE(absl::StartsWith(record, "P|")) << record;
  std::optional<CachedLink> decoded = CachedLink::Decode(record);
  ASSERT_TRUE(decoded.has_value()) << record;
  cache_.entries["locked-rules"] = *decoded;

  auto unlock = [&](const Caller& visitor, const std::string& password) {
    v1::UnlockLinkRequest request;
    request.set_code("locked-rules");
    request.set_password(password);
    return rpcs_.UnlockLink(visitor, request);
  };
  EXPECT_TRUE(absl::IsUnauthenticated(unlock(Visiting(kIphoneAgent, "", ""), "wrong").status()));
  EXPECT_TRUE(clicks_.published.empty());

  // The right password: the target Resolve's rules choose for that visitor, the query forwarded.
  absl::StatusOr<v1::ResolveResponse> ios =
      unlock(Visiting(kIphoneAgent, "", "", "utm_source=x"), "letmein");
  ASSERT_TRUE(ios.ok()) << ios.status();
  EXPECT_EQ(ios->target_url(), "https://example.com/ios?utm_source=x");
  EXPECT_EQ(ios->cache_max_age_seconds(), 0);
  absl::StatusOr<v1::ResolveResponse> fr = unlock(Visiting(kDesktopAgent, "fr-CA", ""), "letmein");
  ASSERT_TRUE(fr.ok()) << fr.status();
  EXPECT_EQ(fr->target_url(), "https://example.com/fr");
  absl::StatusOr<v1::ResolveResponse> other = unlock(Visiting(kDesktopAgent, "en", ""), "letmein");
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_EQ(other->target_url(), "https://example.com/default");
  EXPECT_EQ(clicks_.published.size(), 3u) << "each unlocked redirect is a click";

  // The password removed, the rules stay: Resolve redirects by them at once.
  v1::UpdateLinkRequest open;
  open.set_code("locked-rules");
  open.set_clear_password(true);
  absl::StatusOr<v1::Link> opened = rpcs_.UpdateLink(As("acct-a"), open);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_FALSE(opened->password_protected());
  EXPECT_EQ(opened->redirect_rules_size(), 2);
  absl::StatusOr<v1::ResolveResponse> r = Resolve("locked-rules", Visiting(kIphoneAgent, "", ""));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->target_url(), "https://example.com/ios");
}

}  // namespace
}  // namespace kurt::links
