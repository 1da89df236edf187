// ClickProcessor against an in-memory store and dead-letter sink: the order of the steps inside a
// batch's transaction, and what a failure at each step leaves behind.
#include "services/analytics/click_processor.h"

#include <cstddef>
#include <mutex>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "services/analytics/copy_rows_for_tests.h"

namespace kurt::analytics {
namespace {

// What the database would hold; copied at the start of a transaction, swapped in on commit.
struct FakeState {
  OffsetMap offsets;
  std::vector<CopyRow> rows;  // as COPY got them
  std::map<std::pair<std::string, int64_t>, int64_t> hourly;
  std::map<std::tuple<std::string, int64_t, std::string>, int64_t> referrers;
  std::map<std::tuple<std::string, int64_t, std::string>, int64_t> agents;
};

class FakeStore : public ClickStore {
 public:
  absl::Status InTransaction(const std::function<absl::Status(ClickTransaction&)>& fn) override {
    // Transactions of a parallel batch run one after the other here.
    std::lock_guard<std::mutex> lock(mu);
    ++transactions;
    Tx tx(this, state);
    absl::Status s = fn(tx);
    if (s.ok()) {
      state = tx.state;
    }
    return s;
  }
  absl::StatusOr<OffsetMap> LoadOffsets(const std::string&, const std::string&) override {
    return state.offsets;
  }
  absl::StatusOr<int> EnsurePartitions(absl::Time, int) override { return 0; }
  absl::StatusOr<DayIndexing> IndexEndedDays() override { return DayIndexing(); }

  std::mutex mu;
  int transactions = 0;
  // SetOffsets fails in transactions holding this partition.
  int32_t fail_partition = -1;
  FakeState state;
  std::set<std::string> links = {"aaa", "bbb"};
  int code_lookups = 0;
  int seeds = 0;    // ClicksSince calls
  int lookups = 0;  // StoredClicks calls
  absl::Status write_error;
  std::vector<std::string>* calls = nullptr;

 private:
  struct Tx : ClickTransaction {
    Tx(FakeStore* s, FakeState st) : store(s), state(std::move(st)) {}
    void Call(const std::string& what) {
      if (store->calls && (store->calls->empty() || store->calls->back() != what)) {
        store->calls->push_back(what);
      }
    }
    absl::StatusOr<OffsetMap> LockOffsets(const std::string& group,
                                          const std::vector<PartitionKey>& partitions) override {
      EXPECT_EQ(group, "g");
      Call("lock");
      locked = partitions;
      OffsetMap out;
      for (const auto& p : partitions) {
        if (auto it = state.offsets.find(p); it != state.offsets.end()) {
          out.insert(*it);
        }
      }
      return out;
    }
    absl::StatusOr<std::vector<std::string>> ExistingCodes(
        const std::vector<std::string>& codes) override {
      ++store->code_lookups;
      Call("codes");
      std::vector<std::string> out;
      for (const auto& c : codes) {
        if (store->links.count(c)) {
          out.push_back(c);
        }
      }
      return out;
    }
    absl::StatusOr<std::vector<ClickKey>> ClicksSince(int32_t partition,
                                                      absl::Time since) override {
      ++store->seeds;
      std::vector<ClickKey> out;
      for (const CopyRow& r : state.rows) {
        if (r.partition == partition && absl::FromUnixMicros(r.time_micros) >= since) {
          out.push_back({r.code, r.event_id, absl::FromUnixMicros(r.time_micros)});
        }
      }
      return out;
    }
    absl::StatusOr<std::vector<ClickKey>> StoredClicks(const std::vector<ClickKey>& clicks,
                                                       absl::Duration margin) override {
      ++store->lookups;
      std::vector<ClickKey> out;
      for (const ClickKey& c : clicks) {
        for (const CopyRow& r : state.rows) {
          if (r.code == c.code && r.event_id == c.event_id &&
              absl::AbsDuration(absl::FromUnixMicros(r.time_micros) - c.time) <= margin) {
            out.push_back(c);
            break;
          }
        }
      }
      return out;
    }
    absl::Status CopyClicks(std::string tuples) override {
      Call("copy");
      std::optional<std::vector<CopyRow>> rows = DecodeCopyRows(tuples);
      EXPECT_TRUE(rows.has_value()) << "whole binary COPY tuples";
      if (rows) {
        state.rows.insert(state.rows.end(), rows->begin(), rows->end());
      }
      return absl::OkStatus();
    }
    absl::Status AddAggregates(const Aggregates& a) override {
      Call("aggregates");
      if (!store->write_error.ok()) {
        return store->write_error;
      }
      for (const auto& h : a.hourly) {
        state.hourly[{h.code, h.hour}] += h.clicks;
      }
      for (const auto& d : a.referrers) {
        state.referrers[{d.code, d.hour, d.value}] += d.clicks;
      }
      for (const auto& d : a.agents) {
        state.agents[{d.code, d.hour, d.value}] += d.clicks;
      }
      return absl::OkStatus();
    }
    absl::Status SetOffsets(const std::string&, const OffsetMap& next) override {
      Call("offsets");
      for (const auto& p : locked) {
        if (p.second == store->fail_partition) {
          return absl::AbortedError("deadlock detected");
        }
      }
      for (const auto& [p, n] : next) {
        state.offsets[p] = n;
      }
      return absl::OkStatus();
    }
    FakeStore* store;
    FakeState state;
    std::vector<PartitionKey> locked;
  };
};

class FakeDeadLetters : public DeadLetterSink {
 public:
  absl::Status Publish(const std::vector<DeadLetter>& letters) override {
    if (letters.empty()) {
      return absl::OkStatus();
    }
    if (calls) {
      calls->push_back("dead-letters");
    }
    if (!error.ok()) {
      return error;
    }
    for (const auto& l : letters) {
      published.emplace_back(l.message->offset, l.reason);
    }
    return absl::OkStatus();
  }
  std::vector<std::pair<int64_t, RejectReason>> published;
  absl::Status error;
  std::vector<std::string>* calls = nullptr;
};

kafka::Message Click(int32_t partition, int64_t offset, const std::string& code) {
  events::v1::ClickEvent e;
  e.set_event_id(absl::StrCat("e", partition, "-", offset));
  e.set_code(code);
  e.mutable_time()->set_seconds(1709632800 + offset);
  e.set_referrer("https://r.example/");
  e.set_user_agent("curl/8");
  kafka::Message m;
  m.topic = "clicks";
  m.partition = partition;
  m.offset = offset;
  m.key = code;
  m.value = e.SerializeAsString();
  m.timestamp_ms = (1709632800 + offset) * 1000;  // the broker's time: the click's, as a rule
  return m;
}

// A click's second event, as links publishes it again: the same code, id and time, at another
// offset.
kafka::Message Again(const kafka::Message& first, int64_t offset) {
  kafka::Message m = first;
  m.offset = offset;
  m.timestamp_ms = first.timestamp_ms + 1500;
  return m;
}

kafka::Message Garbage(int32_t partition, int64_t offset) {
  kafka::Message m;
  m.topic = "clicks";
  m.partition = partition;
  m.offset = offset;
  m.value = "\xff\xff\xff";
  return m;
}

int64_t Sum(const FakeState& s) {
  int64_t n = 0;
  for (const auto& [k, v] : s.hourly) {
    n += v;
  }
  return n;
}

class ClickProcessorTest : public ::testing::Test {
 protected:
  metrics::Registry registry_;
  FakeStore store_;
  FakeDeadLetters dead_letters_;
  ClickProcessor processor_{"g", &store_, &dead_letters_, &registry_};
};

TEST_F(ClickProcessorTest, StoresRowsAggregatesAndOffsetsTogether) {
  ASSERT_TRUE(processor_.Handle({Click(0, 0, "aaa"), Click(0, 1, "aaa"), Click(1, 0, "bbb")}).ok());
  EXPECT_EQ(store_.state.rows.size(), 3u);
  EXPECT_EQ(Sum(store_.state), 3);
  EXPECT_EQ(store_.state.offsets, (OffsetMap{{{"clicks", 0}, 2}, {{"clicks", 1}, 1}}));
  EXPECT_EQ((store_.state.referrers[{"aaa", 1709632800, "r.example"}]), 2);
  EXPECT_EQ((store_.state.agents[{"bbb", 1709632800, "HTTP library"}]), 1);
}

TEST_F(ClickProcessorTest, RedeliveredMessagesCountOnce) {
  ASSERT_TRUE(processor_.Handle({Click(0, 0, "aaa"), Click(0, 1, "aaa")}).ok());
  // The same messages again (a crash before Kafka knew), then an overlapping batch.
  ASSERT_TRUE(processor_.Handle({Click(0, 0, "aaa"), Click(0, 1, "aaa")}).ok());
  ASSERT_TRUE(processor_.Handle({Click(0, 1, "aaa"), Click(0, 2, "aaa")}).ok());
  EXPECT_EQ(store_.state.rows.size(), 3u);
  EXPECT_EQ(Sum(store_.state), 3);
  EXPECT_EQ(store_.state.offsets.at({"clicks", 0}), 3);
  EXPECT_NE(registry_.Render().find("kurt_analytics_clicks_total{outcome=\"duplicate\"} 3"),
            std::string::npos)
      << registry_.Render();
}

TEST_F(ClickProcessorTest, MessagesTwiceInOneBatchCountOnce) {
  // A partition that went away and came back while the batch filled is fetched again from the
  // stored offset: the batch holds offsets 0-5 of partition 0, then 3-7 again, between messages
  // of partition 1 (one of which also comes twice, a dead letter).
  std::vector<kafka::Message> batch;
  for (int64_t o = 0; o < 6; ++o) {
    batch.push_back(Click(0, o, "aaa"));
  }
  batch.push_back(Click(1, 0, "bbb"));
  batch.push_back(Click(1, 1, "zz"));  // not a well-formed code: a dead letter
  for (int64_t o = 3; o < 8; ++o) {
    batch.push_back(Click(0, o, "aaa"));
  }
  batch.push_back(Click(1, 1, "zz"));
  batch.push_back(Click(1, 2, "bbb"));
  ASSERT_TRUE(processor_.Handle(batch).ok());
  EXPECT_EQ(store_.state.rows.size(), 10u);  // 0-7 and 0, 2 of partition 1
  EXPECT_EQ(Sum(store_.state), 10);
  EXPECT_EQ(store_.state.offsets, (OffsetMap{{{"clicks", 0}, 8}, {{"clicks", 1}, 3}}));
  EXPECT_EQ(dead_letters_.published.size(), 1u);
  EXPECT_NE(registry_.Render().find("kurt_analytics_clicks_total{outcome=\"duplicate\"} 4"),
            std::string::npos)
      << registry_.Render();
}

TEST_F(ClickProcessorTest, DeadLettersArePublishedBeforeTheWrite) {
  std::vector<std::string> calls;
  store_.calls = &calls;
  dead_letters_.calls = &calls;
  ASSERT_TRUE(processor_.Handle({Click(0, 0, "aaa"), Garbage(0, 1), Click(0, 2, "nope")}).ok());
  // "aaa" is not confirmed yet: it is looked up with "nope" before any row is copied.
  EXPECT_EQ(calls, (std::vector<std::string>{"lock", "codes", "copy", "dead-letters", "aggregates",
                                             "offsets"}));
  // Once confirmed, rows stream to COPY before any lookup.
  calls.clear();
  ASSERT_TRUE(processor_.Handle({Click(0, 3, "aaa"), Click(0, 4, "bbb")}).ok());
  EXPECT_EQ(calls,
            (std::vector<std::string>{"lock", "copy", "codes", "copy", "aggregates", "offsets"}));
  EXPECT_EQ(dead_letters_.published,
            (std::vector<std::pair<int64_t, RejectReason>>{{1, RejectReason::kBadProtobuf},
                                                           {2, RejectReason::kUnknownCode}}));
  EXPECT_EQ(store_.state.rows.size(), 3u);
  // Consumption goes on past them.
  EXPECT_EQ(store_.state.offsets.at({"clicks", 0}), 5);
  EXPECT_NE(registry_.Render().find("kurt_analytics_dead_letters_total{reason=\"unknown-code\"} 1"),
            std::string::npos);
}

TEST_F(ClickProcessorTest, UnacknowledgedDeadLettersCommitNothing) {
  dead_letters_.error = absl::UnavailableError("broker down");
  absl::Status s = processor_.Handle({Click(0, 0, "aaa"), Garbage(0, 1)});
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(store_.state.rows.empty());
  EXPECT_TRUE(store_.state.offsets.empty());

  // The consumer retries the same batch once the broker is back.
  dead_letters_.error = absl::OkStatus();
  ASSERT_TRUE(processor_.Handle({Click(0, 0, "aaa"), Garbage(0, 1)}).ok());
  EXPECT_EQ(store_.state.rows.size(), 1u);
  EXPECT_EQ(dead_letters_.published.size(), 1u);
  EXPECT_EQ(store_.state.offsets.at({"clicks", 0}), 2);
}

TEST_F(ClickProcessorTest, FailedWriteLeavesEverythingForTheRetry) {
  store_.write_error = absl::UnavailableError("connection lost");
  EXPECT_FALSE(processor_.Handle({Click(0, 0, "aaa"), Click(0, 1, "bbb")}).ok());
  EXPECT_TRUE(store_.state.rows.empty());
  store_.write_error = absl::OkStatus();
  ASSERT_TRUE(processor_.Handle({Click(0, 0, "aaa"), Click(0, 1, "bbb")}).ok());
  EXPECT_EQ(Sum(store_.state), 2);
}

TEST_F(ClickProcessorTest, ConfirmedCodesAreNotLookedUpAgain) {
  ASSERT_TRUE(processor_.Handle({Click(0, 0, "aaa"), Click(0, 1, "bbb")}).ok());
  EXPECT_EQ(store_.code_lookups, 1);
  ASSERT_TRUE(processor_.Handle({Click(0, 2, "aaa"), Click(0, 3, "bbb")}).ok());
  EXPECT_EQ(store_.code_lookups, 1);
  // Unknown codes are asked about every time: the link may exist by then.
  ASSERT_TRUE(processor_.Handle({Click(0, 4, "ccc")}).ok());
  store_.links.insert("ccc");
  ASSERT_TRUE(processor_.Handle({Click(0, 5, "ccc")}).ok());
  EXPECT_EQ(store_.code_lookups, 3);
  EXPECT_EQ(Sum(store_.state), 5);
  EXPECT_EQ(dead_letters_.published.size(), 1u);
}

TEST_F(ClickProcessorTest, ABatchEntirelyCountedBeforeChangesNothing) {
  store_.state.offsets[{"clicks", 0}] = 100;
  std::vector<std::string> calls;
  store_.calls = &calls;
  ASSERT_TRUE(processor_.Handle({Click(0, 10, "aaa"), Garbage(0, 11)}).ok());
  EXPECT_TRUE(store_.state.rows.empty());
  EXPECT_TRUE(dead_letters_.published.empty());
  EXPECT_EQ(store_.state.offsets.at({"clicks", 0}), 100);
  EXPECT_EQ(calls, (std::vector<std::string>{"lock", "offsets"}));
}

// A click links published twice (a retried resolve, a batch of cached hits reported again)
// counts once, whether its second event is in the same batch or a later one.
TEST_F(ClickProcessorTest, AClickPublishedTwiceCountsOnce) {
  const kafka::Message first = Click(0, 0, "aaa");
  ASSERT_TRUE(processor_.Handle({first, Again(first, 1)}).ok());
  ASSERT_TRUE(processor_.Handle({Again(first, 2), Click(0, 3, "aaa")}).ok());
  EXPECT_EQ(Sum(store_.state), 2);
  EXPECT_EQ(store_.state.rows.size(), 2u);
  EXPECT_EQ(store_.state.offsets.at({"clicks", 0}), 4);
  // Decided in memory: the partition's clicks were read once, when it was first seen.
  EXPECT_EQ(store_.seeds, 1);
  EXPECT_EQ(store_.lookups, 0);
  EXPECT_NE(registry_.Render().find("kurt_analytics_clicks_total{outcome=\"repeated\"} 2"),
            std::string::npos);
}

// The same event id on another link is another click.
TEST_F(ClickProcessorTest, AnIdIsAClickOnlyWithItsCode) {
  kafka::Message other = Click(0, 0, "aaa");
  events::v1::ClickEvent e;
  ASSERT_TRUE(e.ParseFromString(other.value));
  e.set_code("bbb");
  other.value = e.SerializeAsString();
  other.offset = 1;
  ASSERT_TRUE(processor_.Handle({Click(0, 0, "aaa"), other}).ok());
  EXPECT_EQ(Sum(store_.state), 2);
}

// A consumer that starts (or takes the partition over) reads the partition's recent clicks first:
// a second event of a click another consumer stored still counts once.
TEST_F(ClickProcessorTest, ANewConsumerKnowsTheClicksStoredBeforeIt) {
  const kafka::Message first = Click(0, 0, "aaa");
  ASSERT_TRUE(processor_.Handle({first}).ok());
  ClickProcessor other("g", &store_, &dead_letters_, &registry_);
  ASSERT_TRUE(other.Handle({Again(first, 1)}).ok());
  EXPECT_EQ(Sum(store_.state), 1);

  // And back to the first consumer, whose window missed what the other one stored: it reads the
  // partition again, since the stored offset is not the one it left.
  const kafka::Message second = Click(0, 2, "aaa");
  ASSERT_TRUE(other.Handle({second}).ok());
  const int seeds = store_.seeds;
  ASSERT_TRUE(processor_.Handle({Again(second, 3)}).ok());
  EXPECT_EQ(store_.seeds, seeds + 1);
  EXPECT_EQ(Sum(store_.state), 2);
}

// A click older than the window (a cached hit the edge held while links was down) is looked up
// in the database instead.
TEST_F(ClickProcessorTest, AnOldClickPublishedTwiceCountsOnce) {
  kafka::Message old = Click(0, 0, "aaa");
  old.timestamp_ms += int64_t{3600} * 1000;  // published an hour after the redirect
  ASSERT_TRUE(processor_.Handle({old, Click(0, 3700, "aaa")}).ok());
  ASSERT_TRUE(processor_.Handle({Again(old, 3701)}).ok());
  ASSERT_TRUE(processor_.Handle({Again(old, 3702), Again(old, 3703)}).ok());
  EXPECT_EQ(Sum(store_.state), 2);
  EXPECT_GE(store_.lookups, 3);
}

TEST(ClickProcessorParallelTest, OneTransactionPerPartitionAndExactRetries) {
  metrics::Registry registry;
  FakeStore store;
  FakeDeadLetters dead_letters;
  ClickProcessor processor("g", &store, &dead_letters, &registry, 3);
  std::vector<kafka::Message> batch;
  for (int32_t p = 0; p < 4; ++p) {
    for (int64_t o = 0; o < 50; ++o) {
      batch.push_back(Click(p, o, p % 2 ? "aaa" : "bbb"));
    }
  }
  batch.push_back(Garbage(3, 50));
  store.fail_partition = 2;
  EXPECT_EQ(processor.Handle(batch).code(), absl::StatusCode::kAborted);
  EXPECT_EQ(store.transactions, 4);
  // The other partitions are committed.
  EXPECT_EQ(store.state.rows.size(), 150u);
  EXPECT_EQ(store.state.offsets.count({"clicks", 2}), 0u);

  store.fail_partition = -1;
  ASSERT_TRUE(processor.Handle(batch).ok());
  EXPECT_EQ(store.state.rows.size(), 200u);
  EXPECT_EQ(Sum(store.state), 200);
  EXPECT_EQ(
      store.state.offsets,
      (OffsetMap{
          {{"clicks", 0}, 50}, {{"clicks", 1}, 50}, {{"clicks", 2}, 50}, {{"clicks", 3}, 51}}));
  // The dead letter of partition 3 went out once: its partition committed the first time.
  EXPECT_EQ(dead_letters.published.size(), 1u);
  const std::string page = registry.Render();
  EXPECT_NE(page.find("kurt_analytics_clicks_total{outcome=\"stored\"} 200"), std::string::npos)
      << page;
  EXPECT_NE(page.find("kurt_analytics_clicks_total{outcome=\"duplicate\"} 151"), std::string::npos)
      << page;
}

}  // namespace
}  // namespace kurt::analytics
