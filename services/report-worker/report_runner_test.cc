// ReportRunner and Worker over a fake job store and a fake report source, with a real artifact
// directory.
#include "services/report-worker/report_runner.h"

#include <filesystem>
#include <map>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "services/report-worker/artifact_janitor.h"
#include "services/report-worker/worker.h"

namespace kurt::report_worker {

using reports::ArtifactWriter;
using reports::DirectoryStorage;
using reports::DirectoryStorageOptions;
using reports::ReportJob;
namespace v1 = reports::v1;

namespace {

class FakeJobStore : public JobStore {
 public:
  absl::StatusOr<ClaimResult> Claim(const std::string& id) override {
    std::lock_guard<std::mutex> lock(mu);
    ++claims;
    auto it = jobs.find(id);
    if (it == jobs.end()) {
      return ClaimResult{ClaimOutcome::kUnknown, {}};
    }
    ReportJob& j = it->second;
    if (j.state != v1::PENDING) {
      return ClaimResult{ClaimOutcome::kNotClaimable, j};
    }
    j.state = v1::RUNNING;
    ++j.attempts;
    return ClaimResult{ClaimOutcome::kClaimed, j};
  }
  absl::StatusOr<std::set<std::string>> Heartbeat(
      const std::vector<std::pair<std::string, int64_t>>& progress) override {
    std::lock_guard<std::mutex> lock(mu);
    std::set<std::string> held;
    for (const auto& [id, rows] : progress) {
      last_progress[id] = rows;
      if (jobs[id].state == v1::RUNNING) {
        held.insert(id);
      }
    }
    return held;
  }
  absl::StatusOr<bool> Succeed(const ReportJob& job, const Artifact& a) override {
    std::lock_guard<std::mutex> lock(mu);
    if (jobs[job.id].state != v1::RUNNING) {
      return false;
    }
    jobs[job.id].state = v1::SUCCEEDED;
    jobs[job.id].row_count = a.rows;
    jobs[job.id].artifact_key = a.key;
    return true;
  }
  absl::StatusOr<bool> Fail(const ReportJob& job, const std::string& reason) override {
    std::lock_guard<std::mutex> lock(mu);
    if (jobs[job.id].state != v1::RUNNING) {
      return false;
    }
    jobs[job.id].state = v1::FAILED;
    jobs[job.id].error = reason;
    return true;
  }
  absl::StatusOr<bool> RetryLater(const ReportJob& job, const std::string& reason,
                                  absl::Duration backoff) override {
    std::lock_guard<std::mutex> lock(mu);
    jobs[job.id].error = reason;
    jobs[job.id].state = v1::PENDING;  // claimable again (the fake ignores the backoff)
    backoffs.push_back(backoff);
    return true;
  }
  absl::Status Release(const ReportJob& job) override {
    std::lock_guard<std::mutex> lock(mu);
    jobs[job.id].state = v1::PENDING;
    --jobs[job.id].attempts;
    ++releases;
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<std::string>> Expired(int) override {
    return std::vector<std::string>{};
  }
  absl::Status DeadLetter(const kafka::Message& m, const std::string& reason) override {
    std::lock_guard<std::mutex> lock(mu);
    dead.push_back(absl::StrCat(m.offset, ":", reason));
    return absl::OkStatus();
  }

  ReportJob Get(const std::string& id) {
    std::lock_guard<std::mutex> lock(mu);
    return jobs[id];
  }

  std::mutex mu;
  std::map<std::string, ReportJob> jobs;
  std::map<std::string, int64_t> last_progress;
  std::vector<absl::Duration> backoffs;
  std::vector<std::string> dead;
  int claims = 0;
  int releases = 0;
};

// Writes `rows` CSV lines in chunks of 10; fails with `errors` first, one per call; can block
// at a gate until told to go on.
class FakeSource : public ReportSource {
 public:
  absl::StatusOr<int64_t> Write(const ReportJob&, ArtifactWriter* out,
                                const ProgressCallback& progress) override {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!errors.empty()) {
        absl::Status e = errors.front();
        errors.erase(errors.begin());
        return e;
      }
    }
    for (int64_t i = 0; i < rows; ++i) {
      if (absl::Status s = out->Append(absl::StrCat("row", i, "\n")); !s.ok()) {
        return s;
      }
      if (i % 10 == 9) {
        if (!progress(i + 1)) {
          return absl::CancelledError("stopped");
        }
        if (gate) {
          started.Notify();
          while (!release.HasBeenNotified()) {
            if (!progress(i + 1)) {
              return absl::CancelledError("stopped");
            }
            absl::SleepFor(absl::Milliseconds(5));
          }
        }
      }
    }
    return rows;
  }
  std::mutex mu;
  std::vector<absl::Status> errors;
  int64_t rows = 100;
  bool gate = false;
  absl::Notification started, release;
};

constexpr char kId[] = "0b7e7dc8-2c1d-4a7a-9b8e-3f1f2f3c4d5e";

class RunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           absl::StrCat("runner-", ::getpid(), "-",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    DirectoryStorageOptions so;
    so.dir = dir_.string();
    so.fsync = false;
    storage_ = std::make_unique<DirectoryStorage>(so);
    ASSERT_TRUE(storage_->Init().ok());
    RunnerOptions ro;
    ro.max_attempts = 3;
    ro.retry_backoff = absl::Seconds(2);
    runner_ = std::make_unique<ReportRunner>(ro, &store_, &source_, storage_.get(), &registry_);
    ReportJob job;
    job.id = kId;
    job.account_id = "acct";
    job.kind = v1::CLICKS_CSV;
    job.state = v1::PENDING;
    store_.jobs[kId] = job;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  RunOutcome ClaimAndRun(JobControl* control) {
    auto claim = store_.Claim(kId);
    EXPECT_TRUE(claim.ok());
    EXPECT_EQ(claim->outcome, ClaimOutcome::kClaimed);
    return runner_->Run(claim->job, control);
  }

  size_t Files() {
    size_t n = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir_)) {
      (void)e;
      ++n;
    }
    return n;
  }

  std::filesystem::path dir_;
  FakeJobStore store_;
  FakeSource source_;
  metrics::Registry registry_;
  std::unique_ptr<DirectoryStorage> storage_;
  std::unique_ptr<ReportRunner> runner_;
};

TEST_F(RunnerTest, SucceedsWithTheArtifactOfItsAttempt) {
  JobControl control;
  EXPECT_EQ(ClaimAndRun(&control), RunOutcome::kSucceeded);
  ReportJob job = store_.Get(kId);
  EXPECT_EQ(job.state, v1::SUCCEEDED);
  EXPECT_EQ(job.row_count, 100);
  EXPECT_EQ(job.artifact_key, absl::StrCat(kId, "-1.csv"));
  EXPECT_EQ(control.progress.load(), 100);
  auto reader = storage_->Open(job.artifact_key);
  ASSERT_TRUE(reader.ok());
  EXPECT_GT((*reader)->size(), 0);
  EXPECT_EQ(Files(), 1u);
}

TEST_F(RunnerTest, RetriesWithGrowingBackoffThenFailsForGood) {
  source_.errors = {absl::UnavailableError("replica gone"), absl::UnavailableError("replica gone"),
                    absl::UnavailableError("replica still gone")};
  JobControl c1, c2, c3;
  EXPECT_EQ(ClaimAndRun(&c1), RunOutcome::kRetrying);
  EXPECT_EQ(ClaimAndRun(&c2), RunOutcome::kRetrying);
  EXPECT_EQ(ClaimAndRun(&c3), RunOutcome::kFailed);
  EXPECT_EQ(store_.backoffs, (std::vector<absl::Duration>{absl::Seconds(2), absl::Seconds(4)}));
  ReportJob job = store_.Get(kId);
  EXPECT_EQ(job.state, v1::FAILED);
  EXPECT_EQ(job.error, "gave up after 3 attempts: replica still gone");
  EXPECT_EQ(Files(), 0u) << "failed attempts leave no file";
}

TEST_F(RunnerTest, AnErrorNoRetryCanFixFailsAtOnce) {
  source_.errors = {absl::InvalidArgumentError("report kind X is not known to this worker")};
  JobControl control;
  EXPECT_EQ(ClaimAndRun(&control), RunOutcome::kFailed);
  EXPECT_EQ(store_.Get(kId).error, "report kind X is not known to this worker");
}

TEST_F(RunnerTest, AJobNoLongerOursIsDiscarded) {
  JobControl control;
  auto claim = store_.Claim(kId);
  store_.jobs[kId].state = v1::CANCELLED;  // cancelled while it ran
  EXPECT_EQ(runner_->Run(claim->job, &control), RunOutcome::kLost);
  EXPECT_EQ(store_.Get(kId).state, v1::CANCELLED);
  EXPECT_EQ(Files(), 0u) << "the finished artifact is deleted";
}

TEST_F(RunnerTest, ShutdownGivesTheJobBack) {
  JobControl control;
  control.stop = JobControl::kShutdown;
  EXPECT_EQ(ClaimAndRun(&control), RunOutcome::kReleased);
  EXPECT_EQ(store_.releases, 1);
  EXPECT_EQ(store_.Get(kId).attempts, 0) << "a released attempt is not counted";
  EXPECT_EQ(Files(), 0u);
}

TEST_F(RunnerTest, WorkerDeadLettersWhatItCannotRunAndRunsTheRest) {
  WorkerOptions wo;
  wo.max_concurrent_jobs = 1;
  wo.heartbeat_interval = absl::Milliseconds(10);
  wo.lease_scan_interval = absl::Hours(1);
  Worker worker(wo, &store_, runner_.get(), &registry_);
  worker.Start();
  events::v1::ReportRequested good;
  good.set_report_id(kId);
  events::v1::ReportRequested unknown;
  unknown.set_report_id("00000000-0000-0000-0000-000000000000");
  std::vector<kafka::Message> batch(4);
  batch[0].offset = 1;
  batch[0].value = "garbage";
  batch[1].offset = 2;
  batch[1].value = unknown.SerializeAsString();
  batch[2].offset = 3;
  batch[2].value = good.SerializeAsString();
  batch[3].offset = 4;
  batch[3].value = good.SerializeAsString();  // a duplicate delivery
  ASSERT_TRUE(worker.HandleBatch(batch).ok());
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (store_.Get(kId).state != v1::SUCCEEDED && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  worker.Stop();
  EXPECT_EQ(store_.Get(kId).state, v1::SUCCEEDED);
  EXPECT_EQ(store_.Get(kId).attempts, 1) << "the duplicate did not run it again";
  ASSERT_EQ(store_.dead.size(), 2u);
  EXPECT_EQ(store_.dead[0].rfind("1:not a ReportRequested", 0), 0u) << store_.dead[0];
  EXPECT_EQ(store_.dead[1].rfind("2:no report job", 0), 0u) << store_.dead[1];
}

TEST_F(RunnerTest, WorkerStopsAJobTheHeartbeatFindsCancelled) {
  source_.gate = true;
  WorkerOptions wo;
  wo.heartbeat_interval = absl::Milliseconds(10);
  wo.lease_scan_interval = absl::Hours(1);
  Worker worker(wo, &store_, runner_.get(), &registry_);
  worker.Start();
  ASSERT_TRUE(worker.TryStart(kId, absl::Seconds(1)).value());
  source_.started.WaitForNotification();
  {
    std::lock_guard<std::mutex> lock(store_.mu);
    store_.jobs[kId].state = v1::CANCELLED;
  }
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (worker.running() > 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(worker.running(), 0) << "the job stopped at its next chunk";
  worker.Stop();
  EXPECT_EQ(store_.Get(kId).state, v1::CANCELLED);
  EXPECT_EQ(store_.last_progress[kId], 10) << "progress was reported";
  EXPECT_EQ(Files(), 0u);
}

TEST(AttemptOfKey, ReadsTheRunnersKeysOnly) {
  const std::string id = "0b3c8a52-5a4e-4d43-9c77-2f4f1c1e6a10";
  EXPECT_EQ(AttemptOfKey(id + "-3.csv"), (Attempt{id, 3}));
  EXPECT_EQ(AttemptOfKey(id + "-12.json"), (Attempt{id, 12}));
  for (const std::string& key : {std::string("committed-1.csv"), id + ".csv", id + "-.csv",
                                 id + "-x.csv", id + "--1.csv", std::string("")}) {
    EXPECT_EQ(AttemptOfKey(key), std::nullopt) << key;
  }
}

}  // namespace
}  // namespace kurt::report_worker
