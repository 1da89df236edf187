#include "edge/hit_reporter.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "kurt/api/v1/options.pb.h"
#include "tests/support/metric_value.h"

namespace kurt::edge {
namespace {

using kurt::api::v1::CachedRedirects;

// Records every batch it is given and answers with the statuses it was told to (then OK).
class FakeSender : public HitSender {
 public:
  grpc::Status Send(const std::string& service, const std::string& method, const std::string& batch,
                    absl::Duration timeout) override {
    std::lock_guard<std::mutex> lock(mu);
    calls.push_back(service + " " + method);
    timeouts.push_back(timeout);
    CachedRedirects parsed;
    EXPECT_TRUE(parsed.ParseFromString(batch));
    grpc::Status answer = grpc::Status::OK;
    if (!answers.empty()) {
      answer = answers.front();
      answers.pop_front();
    }
    if (answer.ok()) {
      batches.push_back(parsed);
    }
    return answer;
  }

  // The `request` of every hit accepted so far, in order.
  std::vector<std::string> Requests() {
    std::lock_guard<std::mutex> lock(mu);
    std::vector<std::string> out;
    for (const CachedRedirects& b : batches) {
      for (const auto& hit : b.hits()) {
        out.push_back(hit.request());
      }
    }
    return out;
  }
  size_t Batches() {
    std::lock_guard<std::mutex> lock(mu);
    return batches.size();
  }

  std::mutex mu;
  std::vector<std::string> calls;
  std::vector<absl::Duration> timeouts;
  std::vector<CachedRedirects> batches;
  std::deque<grpc::Status> answers;
};

double Counter(metrics::Registry& registry, const std::string& outcome) {
  return testing::MetricValue(
      registry.Render(), absl::StrCat("kurt_edge_cached_hits_total{outcome=\"", outcome, "\"}"));
}

// Each test's own registry and sender; reporters are made in the tests (their lifetimes matter).
class HitReporterTest : public ::testing::Test {
 protected:
  metrics::Registry registry;
  FakeSender sender;
};

std::string Hit(const std::string& request) { return EncodeCachedHit(request, absl::Now(), {}); }

HitReporterOptions Slow(size_t max_batch = 100, size_t max_pending = 1000) {
  HitReporterOptions o;
  o.interval = absl::Hours(1);  // only Flush, a full batch or the destructor send
  o.max_batch = max_batch;
  o.max_pending = max_pending;
  return o;
}

TEST(HitReporterEncodingTest, EncodesAHitAsTheCachedRedirectsMessage) {
  const absl::Time when = absl::FromUnixMicros(1'700'000'000'123'456);
  std::string bytes = EncodeCachedHit("request bytes", when,
                                      {{"x-kurt-user-agent", "Agent/1"}, {"x-request-id", "r-1"}});
  CachedRedirects::Hit hit;
  ASSERT_TRUE(hit.ParseFromString(bytes));
  EXPECT_EQ(hit.request(), "request bytes");
  EXPECT_EQ(hit.time().seconds(), 1'700'000'000);
  EXPECT_EQ(hit.time().nanos(), 123'456'000);
  EXPECT_EQ(hit.metadata().at("x-kurt-user-agent"), "Agent/1");
  EXPECT_EQ(hit.metadata().at("x-request-id"), "r-1");
  EXPECT_EQ(hit.metadata().size(), 2u);

  // Before 1970 the nanos stay positive, as google.protobuf.Timestamp requires.
  ASSERT_TRUE(hit.ParseFromString(EncodeCachedHit("", absl::FromUnixMicros(-1'500'000), {})));
  EXPECT_EQ(hit.time().seconds(), -2);
  EXPECT_EQ(hit.time().nanos(), 500'000'000);
}

TEST_F(HitReporterTest, SendsEachMethodsHitsInOrderInBatchesOfAtMostMaxBatch) {
  HitReporter reporter(Slow(/*max_batch=*/2), &sender, &registry);
  int links = reporter.AddMethod("kurt.links.v1.LinksService", "/kurt.links.v1.LinksService/R");
  // (A full batch may go while the next hits are added: only order and sizes are certain.)
  for (const char* r : {"a", "b", "c", "d", "e"}) {
    reporter.Add(links, Hit(r));
  }
  reporter.Flush();
  EXPECT_EQ(sender.Requests(), (std::vector<std::string>{"a", "b", "c", "d", "e"}));
  ASSERT_GE(sender.batches.size(), 3u);
  for (const CachedRedirects& b : sender.batches) {
    EXPECT_LE(b.hits_size(), 2);
  }
  EXPECT_EQ(sender.calls[0], "kurt.links.v1.LinksService /kurt.links.v1.LinksService/R");
  EXPECT_EQ(Counter(registry, "reported"), 5);
  EXPECT_EQ(Counter(registry, "dropped"), 0);
  EXPECT_EQ(reporter.Pending(links), 0u);
}

TEST_F(HitReporterTest, ABatchIsClosedOnceItReachesItsByteLimit) {
  HitReporterOptions o = Slow();
  o.max_batch_bytes = 1000;
  HitReporter reporter(o, &sender, &registry);
  int id = reporter.AddMethod("S", "/S/R");
  const std::string big(300, 'x');
  for (int i = 0; i < 10; ++i) {
    reporter.Add(id, Hit(big));
  }
  reporter.Flush();
  EXPECT_EQ(sender.Requests().size(), 10u);
  for (const CachedRedirects& b : sender.batches) {
    EXPECT_LE(b.ByteSizeLong(), 1000u + 400u) << "a batch is closed once it reaches the limit";
    EXPECT_GE(b.hits_size(), 1);
  }
  EXPECT_GE(sender.batches.size(), 3u);
}

TEST_F(HitReporterTest, HitsTheServiceDidNotTakeGoAgainWithTheNextOnesInOrder) {
  sender.answers = {grpc::Status(grpc::StatusCode::UNAVAILABLE, "connection refused"),
                    grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "slow")};
  HitReporter reporter(Slow(), &sender, &registry);
  int id = reporter.AddMethod("S", "/S/R");
  reporter.Add(id, Hit("a"));
  reporter.Add(id, Hit("b"));
  reporter.Flush();
  EXPECT_EQ(reporter.Pending(id), 2u);
  reporter.Add(id, Hit("c"));
  reporter.Flush();
  EXPECT_EQ(reporter.Pending(id), 3u);
  EXPECT_EQ(sender.Batches(), 0u);
  reporter.Flush();
  EXPECT_EQ(sender.Requests(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(sender.Batches(), 1u);
  EXPECT_EQ(Counter(registry, "reported"), 3);
  EXPECT_EQ(Counter(registry, "dropped"), 0);
}

TEST_F(HitReporterTest, ABatchTheServiceRefusesIsDroppedAndCounted) {
  sender.answers = {grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "hits[0].time")};
  HitReporter reporter(Slow(), &sender, &registry);
  int id = reporter.AddMethod("S", "/S/R");
  reporter.Add(id, Hit("a"));
  reporter.Add(id, Hit("b"));
  reporter.Flush();
  EXPECT_EQ(reporter.Pending(id), 0u);
  EXPECT_EQ(Counter(registry, "dropped"), 2);
  reporter.Add(id, Hit("c"));
  reporter.Flush();
  EXPECT_EQ(sender.Requests(), (std::vector<std::string>{"c"}));
  EXPECT_EQ(Counter(registry, "reported"), 1);
}

TEST_F(HitReporterTest, HitsStillUnsentWhenTheReporterEndsAreCountedAsDropped) {
  sender.answers = {grpc::Status(grpc::StatusCode::UNAVAILABLE, "down")};
  {
    HitReporter reporter(Slow(), &sender, &registry);
    int id = reporter.AddMethod("S", "/S/R");
    reporter.Add(id, Hit("a"));
    reporter.Add(id, Hit("b"));
  }
  EXPECT_EQ(sender.Batches(), 0u);
  EXPECT_EQ(Counter(registry, "dropped"), 2);
  EXPECT_EQ(Counter(registry, "reported"), 0);
}

TEST_F(HitReporterTest, TheLastRoundAtShutdownHasTheShorterDeadline) {
  {
    HitReporter reporter(Slow(), &sender, &registry);
    int id = reporter.AddMethod("S", "/S/R");
    reporter.Add(id, Hit("a"));
    reporter.Flush();
    reporter.Add(id, Hit("b"));
  }
  EXPECT_EQ(sender.timeouts, (std::vector<absl::Duration>{HitReporterOptions().timeout,
                                                          HitReporterOptions().shutdown_timeout}));
  EXPECT_LT(HitReporterOptions().shutdown_timeout, HitReporterOptions().timeout);
}

TEST_F(HitReporterTest, WhileTheServiceIsUnreachableAtMostMaxPendingHitsWait) {
  sender.answers = {grpc::Status(grpc::StatusCode::UNAVAILABLE, "down")};
  HitReporter reporter(Slow(/*max_batch=*/100, /*max_pending=*/3), &sender, &registry);
  int id = reporter.AddMethod("S", "/S/R");
  for (const char* r : {"a", "b", "c", "d", "e"}) {
    reporter.Add(id, Hit(r));
  }
  EXPECT_EQ(reporter.Pending(id), 3u);
  EXPECT_EQ(Counter(registry, "dropped"), 2);
  reporter.Flush();  // UNAVAILABLE
  reporter.Flush();
  EXPECT_EQ(sender.Requests(), (std::vector<std::string>{"a", "b", "c"}));
}

TEST_F(HitReporterTest, AFullBatchGoesWithoutWaitingForTheInterval) {
  HitReporter reporter(Slow(/*max_batch=*/3), &sender, &registry);
  int id = reporter.AddMethod("S", "/S/R");
  for (const char* r : {"a", "b", "c"}) {
    reporter.Add(id, Hit(r));
  }
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (sender.Batches() == 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(sender.Requests(), (std::vector<std::string>{"a", "b", "c"}));
}

TEST_F(HitReporterTest, PendingHitsAreSentEveryIntervalAndWhenTheReporterEnds) {
  HitReporterOptions o = Slow();
  o.interval = absl::Milliseconds(20);
  {
    HitReporter reporter(o, &sender, &registry);
    int id = reporter.AddMethod("S", "/S/R");
    reporter.Add(id, Hit("a"));
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (sender.Batches() == 0 && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(5));
    }
    EXPECT_EQ(sender.Requests(), (std::vector<std::string>{"a"}));
  }
  {
    HitReporter reporter(Slow(), &sender, &registry);
    int id = reporter.AddMethod("S", "/S/R");
    reporter.Add(id, Hit("b"));
  }
  EXPECT_EQ(sender.Requests(), (std::vector<std::string>{"a", "b"}));
}

// What held hits' callbacks heard, in order.
struct Outcomes {
  HitReporter::Done Next() {
    return [this](bool reported) {
      std::lock_guard<std::mutex> lock(mu);
      heard.push_back(reported);
    };
  }
  // Waits (up to 10 s) until `n` callbacks ran; returns what they heard.
  std::vector<bool> Wait(size_t n) {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (absl::Now() < deadline) {
      {
        std::lock_guard<std::mutex> lock(mu);
        if (heard.size() >= n) {
          return heard;
        }
      }
      absl::SleepFor(absl::Milliseconds(2));
    }
    std::lock_guard<std::mutex> lock(mu);
    return heard;
  }
  std::mutex mu;
  std::vector<bool> heard;
};

// A held hit (the redirect has not gone out) is sent at once, not after the interval, and its
// answer waits for the service to have it.
TEST_F(HitReporterTest, AHeldHitIsSentAtOnceAndItsCallbackHearsTheServiceHasIt) {
  HitReporter reporter(Slow(), &sender, &registry);
  int id = reporter.AddMethod("S", "/S/R");
  Outcomes outcomes;
  reporter.Add(id, Hit("a"), outcomes.Next());
  EXPECT_EQ(outcomes.Wait(1), (std::vector<bool>{true}));
  EXPECT_EQ(sender.Requests(), (std::vector<std::string>{"a"}));
  EXPECT_EQ(Counter(registry, "reported"), 1);
}

// The service learns from each batch whether redirects wait for it: it publishes a held batch at
// once, and may gather the others (links' unhurried producer).
TEST_F(HitReporterTest, ABatchSaysWhetherRedirectsWaitForIt) {
  HitReporter reporter(Slow(), &sender, &registry);
  int id = reporter.AddMethod("S", "/S/R");
  reporter.Add(id, Hit("not held"));
  reporter.Flush();
  Outcomes outcomes;
  reporter.Add(id, Hit("held"), outcomes.Next());
  ASSERT_EQ(outcomes.Wait(1), (std::vector<bool>{true}));
  ASSERT_EQ(sender.Batches(), 2u);
  EXPECT_EQ(sender.batches[0].hits(0).request(), "not held");
  EXPECT_FALSE(sender.batches[0].held());
  EXPECT_EQ(sender.batches[1].hits(0).request(), "held");
  EXPECT_TRUE(sender.batches[1].held());
}

// A held hit queued behind a batch the service keeps refusing (never sent while that one fails)
// still goes out once its hold has passed: the service being down must not keep its redirect
// waiting. Its hit stays queued and is reported once the service takes batches again.
TEST_F(HitReporterTest, AHeldHitBehindARefusedBatchGoesOutAfterItsHold) {
  for (int i = 0; i < 1000; ++i) {  // 20 s of refusals at hold_retry
    sender.answers.push_back(grpc::Status(grpc::StatusCode::UNAVAILABLE, "restarting"));
  }
  HitReporterOptions options = Slow(/*max_batch=*/1);  // each hit a batch of its own
  options.hold_timeout = absl::Milliseconds(200);
  HitReporter reporter(options, &sender, &registry);
  int id = reporter.AddMethod("S", "/S/R");
  reporter.Add(id, Hit("not held"));
  Outcomes outcomes;
  reporter.Add(id, Hit("held"), outcomes.Next());
  EXPECT_EQ(outcomes.Wait(1), (std::vector<bool>{false})) << "the redirect still waits";
  {
    std::lock_guard<std::mutex> lock(sender.mu);
    sender.answers.clear();  // the service is back
  }
  reporter.Flush();
  EXPECT_EQ(sender.Requests(), (std::vector<std::string>{"not held", "held"}));
  EXPECT_EQ(Counter(registry, "dropped"), 0);
}

// The client whose redirect went out past its hold asks again at once: the service is failing by
// then, so the second redirect is not held (it would wait a whole hold of its own).
TEST_F(HitReporterTest, AHitThatComesAsAHeldBatchGivesUpIsNotHeld) {
  for (int i = 0; i < 1000; ++i) {
    sender.answers.push_back(grpc::Status(grpc::StatusCode::UNAVAILABLE, "restarting"));
  }
  HitReporterOptions options = Slow();
  options.hold_timeout = absl::Milliseconds(500);
  HitReporter reporter(options, &sender, &registry);
  int id = reporter.AddMethod("S", "/S/R");
  Outcomes outcomes;
  absl::Time first_out, second_out;
  reporter.Add(id, Hit("first"), [&](bool reported) {
    first_out = absl::Now();
    outcomes.Next()(reported);
    reporter.Add(id, Hit("second"), [&](bool reported) {
      second_out = absl::Now();
      outcomes.Next()(reported);
    });
  });
  ASSERT_EQ(outcomes.Wait(2), (std::vector<bool>{false, false}));
  EXPECT_LT(second_out - first_out, absl::Milliseconds(250)) << "the second redirect was held";
  {
    std::lock_guard<std::mutex> lock(sender.mu);
    sender.answers.clear();
  }
  reporter.Flush();
  EXPECT_EQ(sender.Requests(), (std::vector<std::string>{"first", "second"}));
}

// The service restarting: the held batch goes again after hold_retry (the channel picks another
// replica), and its redirects go out once it is taken.
TEST_F(HitReporterTest, AHeldBatchTheServiceDidNotTakeGoesAgainSoon) {
  sender.answers = {grpc::Status(grpc::StatusCode::UNAVAILABLE, "connection refused"),
                    grpc::Status(grpc::StatusCode::UNAVAILABLE, "connection refused")};
  HitReporter reporter(Slow(), &sender, &registry);
  int id = reporter.AddMethod("S", "/S/R");
  Outcomes outcomes;
  reporter.Add(id, Hit("a"), outcomes.Next());
  reporter.Add(id, Hit("b"), outcomes.Next());
  EXPECT_EQ(outcomes.Wait(2), (std::vector<bool>{true, true}));
  EXPECT_EQ(sender.Requests(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(sender.calls.size(), 3u);
  EXPECT_EQ(Counter(registry, "dropped"), 0);
}

// Past hold_timeout the redirects go out all the same (the service being down must not take the
// cached redirects down), their hits stay queued, and new hits are not held until a report
// succeeds again.
TEST_F(HitReporterTest, PastTheHoldTheRedirectsGoOutAndTheirHitsWaitForTheService) {
  for (int i = 0; i < 1000; ++i) {
    sender.answers.emplace_back(grpc::StatusCode::UNAVAILABLE, "down");
  }
  HitReporterOptions o = Slow();
  o.hold_timeout = absl::Milliseconds(200);
  HitReporter reporter(o, &sender, &registry);
  int id = reporter.AddMethod("S", "/S/R");
  Outcomes outcomes;
  const absl::Time start = absl::Now();
  reporter.Add(id, Hit("a"), outcomes.Next());
  EXPECT_EQ(outcomes.Wait(1), (std::vector<bool>{false}));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(200));
  for (absl::Duration t : sender.timeouts) {
    EXPECT_LE(t, absl::Milliseconds(200));  // no call outlives the hold
  }
  reporter.Add(id, Hit("b"), outcomes.Next());
  EXPECT_EQ(outcomes.heard, (std::vector<bool>{false, false})) << "b was held";
  EXPECT_EQ(reporter.Pending(id), 2u);
  EXPECT_EQ(Counter(registry, "dropped"), 0);

  {
    std::lock_guard<std::mutex> lock(sender.mu);
    sender.answers.clear();  // the service is back
  }
  reporter.Flush();
  EXPECT_EQ(sender.Requests(), (std::vector<std::string>{"a", "b"}));
  reporter.Add(id, Hit("c"), outcomes.Next());  // held again
  EXPECT_EQ(outcomes.Wait(3), (std::vector<bool>{false, false, true}));
}

// With a spool, a hit whose redirect went out before its service had it is on disk first: a
// reporter started on the same file (the edge after a SIGKILL) sends it, and the file is emptied
// once it is reported.
TEST_F(HitReporterTest, HitsReleasedBeforeTheirServiceHadThemOutliveTheProcess) {
  for (int i = 0; i < 1000; ++i) {
    sender.answers.emplace_back(grpc::StatusCode::UNAVAILABLE, "down");
  }
  const std::string spool = ::testing::TempDir() + "/hits-" + std::to_string(getpid()) + ".spool";
  std::remove(spool.c_str());
  HitReporterOptions o = Slow();
  o.hold_timeout = absl::Milliseconds(100);
  o.spool_path = spool;
  auto killed = std::make_unique<HitReporter>(o, &sender, &registry);
  int id = killed->AddMethod("S", "/S/R");
  Outcomes outcomes;
  killed->Add(id, Hit("past-the-hold"), outcomes.Next());
  EXPECT_EQ(outcomes.Wait(1), (std::vector<bool>{false}));
  killed->Add(id, Hit("while-failing"), outcomes.Next());  // not held: out once synced
  EXPECT_EQ(outcomes.Wait(2), (std::vector<bool>{false, false}));
  EXPECT_GT(std::filesystem::file_size(spool), 0u);

  // The next process, while the first is still "alive" (as after a SIGKILL, nothing of it ran).
  FakeSender fresh;
  metrics::Registry fresh_registry;
  HitReporterOptions no = Slow();
  no.spool_path = spool;
  auto next = std::make_unique<HitReporter>(no, &fresh, &fresh_registry);
  int next_id = next->AddMethod("S", "/S/R");
  next->Flush();
  EXPECT_EQ(fresh.Requests(), (std::vector<std::string>{"past-the-hold", "while-failing"}));
  EXPECT_EQ(next->Pending(next_id), 0u);
  EXPECT_EQ(std::filesystem::file_size(spool), 0u) << "reported: the spool is emptied";
  std::remove(spool.c_str());
}

// While the service fails, a redirect goes out only once its hit is synced to the spool, yet no
// caller of Add (an I/O thread) waits for the disk: one sync serves every hit written while the
// one before it ran.
TEST_F(HitReporterTest, RedirectsWhileFailingWaitForTheSpoolsSyncButNotForEachOthers) {
  for (int i = 0; i < 1000; ++i) {
    sender.answers.emplace_back(grpc::StatusCode::UNAVAILABLE, "down");
  }
  const std::string spool = ::testing::TempDir() + "/hits-sync-" + std::to_string(getpid());
  std::remove(spool.c_str());
  // A slow disk: each sync takes 100 ms and covers what the file held when it began.
  std::mutex mu;
  off_t synced_bytes = 0;
  int syncs = 0;
  constexpr int kRedirects = 20;
  std::vector<int> in_synced_part(kRedirects, -1);  // per redirect: was its hit synced (1)?
  Outcomes outcomes;
  HitReporterOptions o = Slow();
  o.hold_timeout = absl::Milliseconds(50);
  o.spool_path = spool;
  o.spool_sync = [&](int fd) {
    const off_t size = lseek(fd, 0, SEEK_END);
    absl::SleepFor(absl::Milliseconds(100));
    std::lock_guard<std::mutex> lock(mu);
    synced_bytes = size;
    ++syncs;
    return 0;
  };
  HitReporter reporter(o, &sender, &registry);
  int id = reporter.AddMethod("S", "/S/R");
  reporter.Add(id, Hit("past-the-hold"), outcomes.Next());
  ASSERT_EQ(outcomes.Wait(1), (std::vector<bool>{false}));  // failing from now on

  const absl::Time start = absl::Now();
  for (int i = 0; i < kRedirects; ++i) {
    const std::string request = absl::StrCat("while-failing-", i < 10 ? "0" : "", i);
    reporter.Add(id, Hit(request), [&, i, request](bool reported) {
      {
        std::lock_guard<std::mutex> lock(mu);
        std::string file(static_cast<size_t>(synced_bytes), '\0');
        std::ifstream(spool, std::ios::binary).read(file.data(), synced_bytes);
        in_synced_part[static_cast<size_t>(i)] = file.find(request) != std::string::npos;
      }
      outcomes.Next()(reported);
    });
  }
  const absl::Duration adding = absl::Now() - start;
  // Twenty writes take well under a millisecond; a sync each would take 2 s.
  EXPECT_LT(adding, absl::Seconds(1)) << "each Add waited for a sync of its own (20 x 100 ms)";
  EXPECT_EQ(outcomes.Wait(1 + kRedirects), std::vector<bool>(1 + kRedirects, false));
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(in_synced_part, std::vector<int>(kRedirects, 1))
      << "a redirect went out before its hit was synced";
  // One for the first hit; then each sync covers every hit added while the one before it ran.
  EXPECT_LE(syncs, 3 + static_cast<int>(adding / absl::Milliseconds(100)))
      << "the twenty were not synced together";
  std::remove(spool.c_str());
}

// At shutdown, what could not be reported goes to the spool instead of being dropped.
TEST_F(HitReporterTest, HitsUnsentAtShutdownAreKeptInTheSpool) {
  const std::string spool = ::testing::TempDir() + "/hits-down-" + std::to_string(getpid());
  std::remove(spool.c_str());
  HitReporterOptions o = Slow();
  o.spool_path = spool;
  for (int i = 0; i < 10; ++i) {
    sender.answers.emplace_back(grpc::StatusCode::UNAVAILABLE, "down");
  }
  {
    HitReporter reporter(o, &sender, &registry);
    int id = reporter.AddMethod("S", "/S/R");
    reporter.Add(id, Hit("a"));
    reporter.Add(id, Hit("b"));
  }
  EXPECT_EQ(Counter(registry, "dropped"), 0);
  FakeSender fresh;
  metrics::Registry fresh_registry;
  HitReporter next(o, &fresh, &fresh_registry);
  next.AddMethod("S", "/S/R");
  next.Flush();
  EXPECT_EQ(fresh.Requests(), (std::vector<std::string>{"a", "b"}));
  std::remove(spool.c_str());
}

// A refused batch is not worth waiting for: its redirects go out at once, its hits are dropped.
TEST_F(HitReporterTest, AHeldHitTheServiceRefusesGoesOutAtOnceAndIsDropped) {
  sender.answers = {grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "not the edge")};
  HitReporter reporter(Slow(), &sender, &registry);
  int id = reporter.AddMethod("S", "/S/R");
  Outcomes outcomes;
  reporter.Add(id, Hit("a"), outcomes.Next());
  EXPECT_EQ(outcomes.Wait(1), (std::vector<bool>{false}));
  EXPECT_EQ(Counter(registry, "dropped"), 1);
}

// Beyond max_pending a held hit is refused before Add returns; and every callback runs by the
// time the reporter is gone (no redirect waits for ever).
TEST_F(HitReporterTest, EveryHeldHitHearsAnAnswerEvenWhenPendingIsFullOrAtShutdown) {
  {
    HitReporter reporter(Slow(/*max_batch=*/100, /*max_pending=*/1), &sender, &registry);
    int id = reporter.AddMethod("S", "/S/R");
    reporter.Add(id, Hit("a"));  // not held: waits for the interval
    Outcomes outcomes;
    reporter.Add(id, Hit("b"), outcomes.Next());
    EXPECT_EQ(outcomes.heard, (std::vector<bool>{false}));  // no room, answered at once
  }
  for (int i = 0; i < 1000; ++i) {
    sender.answers.emplace_back(grpc::StatusCode::UNAVAILABLE, "down");
  }
  auto calls = [this] {
    std::lock_guard<std::mutex> lock(sender.mu);
    return sender.calls.size();
  };
  const size_t before = calls();
  Outcomes outcomes;
  {
    HitReporterOptions o = Slow();
    o.hold_retry = absl::Hours(1);
    HitReporter reporter(o, &sender, &registry);
    int id = reporter.AddMethod("S", "/S/R");
    reporter.Add(id, Hit("c"), outcomes.Next());
    while (calls() == before) {  // its first try failed; the next would be an hour away
      absl::SleepFor(absl::Milliseconds(2));
    }
  }
  EXPECT_EQ(outcomes.heard, (std::vector<bool>{false}));
}

// With several senders, held batches do not queue behind one call: a second batch goes while the
// first is still in flight.
TEST_F(HitReporterTest, SeveralSendersKeepSeveralHeldBatchesInFlight) {
  class BlockingSender : public HitSender {
   public:
    grpc::Status Send(const std::string&, const std::string&, const std::string&,
                      absl::Duration) override {
      std::unique_lock<std::mutex> lock(mu);
      ++in_flight;
      max_in_flight = std::max(max_in_flight, in_flight);
      changed.notify_all();
      // Until two calls were in flight at once (not "are": the other may have left already).
      changed.wait_for(lock, std::chrono::seconds(10), [this] { return max_in_flight >= 2; });
      --in_flight;
      return grpc::Status::OK;
    }
    std::mutex mu;
    std::condition_variable changed;
    int in_flight = 0;
    int max_in_flight = 0;
  } blocking;
  HitReporterOptions o = Slow();
  o.senders = 2;
  HitReporter reporter(o, &blocking, &registry);
  int id = reporter.AddMethod("S", "/S/R");
  Outcomes outcomes;
  reporter.Add(id, Hit("a"), outcomes.Next());
  {
    std::unique_lock<std::mutex> lock(blocking.mu);
    blocking.changed.wait_for(lock, std::chrono::seconds(10),
                              [&] { return blocking.in_flight == 1; });
  }
  reporter.Add(id, Hit("b"), outcomes.Next());
  EXPECT_EQ(outcomes.Wait(2), (std::vector<bool>{true, true}));
  EXPECT_EQ(blocking.max_in_flight, 2);
}

}  // namespace
}  // namespace kurt::edge
