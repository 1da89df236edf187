// The S3 client and the S3 artifact storage against the --ha stack's real SeaweedFS
// (tools/stack up --ha; KURT_S3_* from its stack.env): multipart uploads read back byte for byte,
// failed and abandoned uploads leaving nothing, errors a caller can act on, and the throughput of
// S3 beside the directory backend, printed; the sweep of a killed writer's upload.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "platform/core/metrics.h"
#include "platform/s3/s3.h"
#include "services/report-worker/artifact_janitor.h"
#include "services/reports/artifact_storage.h"
#include "services/reports/reports_rpcs.h"
#include "services/reports/s3_artifact_storage.h"
#include "tests/ha/ha_env.h"
#include "tests/support/stack_env.h"

namespace kurt::s3 {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

Options StackOptions() {
  Options o;
  o.url = testing::HaEnv("KURT_S3_URL");
  o.bucket = testing::HaEnv("KURT_S3_BUCKET");
  o.region = testing::HaEnv("KURT_S3_REGION");
  o.credentials.access_key = testing::HaEnv("KURT_S3_ACCESS_KEY");
  o.credentials.secret_key = testing::HaEnv("KURT_S3_SECRET_KEY");
  o.part_bytes = size_t{5} << 20;
  return o;
}

std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string out(n, '\0');
  for (size_t i = 0; i + 8 <= n; i += 8) {
    uint64_t v = rng();
    std::memcpy(&out[i], &v, 8);
  }
  for (size_t i = n - n % 8; i < n; ++i) {
    out[i] = static_cast<char>(rng());
  }
  return out;
}

// Everything a reader gives, read in `chunk`-sized pieces.
std::string ReadAll(ObjectReader& reader, size_t chunk) {
  std::string all, piece;
  for (;;) {
    absl::Status s = reader.Read(chunk, &piece);
    EXPECT_TRUE(s.ok()) << s;
    if (!s.ok() || piece.empty()) {
      return all;
    }
    EXPECT_LE(piece.size(), chunk);
    all += piece;
  }
}

class S3HaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(options_.url.empty());
    ASSERT_TRUE(client_.CheckBucket().ok()) << client_.CheckBucket();
  }

  // The uploads in progress under this test's prefix.
  std::vector<UploadInfo> Uploads() {
    auto uploads = client_.ListMultipartUploads(prefix_);
    EXPECT_TRUE(uploads.ok()) << uploads.status();
    return uploads.ok() ? *uploads : std::vector<UploadInfo>{};
  }

  Options options_ = StackOptions();
  S3Client client_{options_};
  const std::string prefix_ = (testing::RandomName("kurt-test-") + "-");
};

TEST_F(S3HaTest, ObjectLargerThanOnePartGoesInPartsAndReadsBackByteForByte) {
  const std::string key = prefix_ + "big.csv";
  const std::string data = RandomBytes(12'000'000, 42);
  auto writer = client_.NewWriter(key);
  ASSERT_TRUE(writer.ok()) << writer.status();
  // Uneven appends, as a report's rows come.
  size_t at = 0, step = 1;
  while (at < data.size()) {
    size_t n = std::min(data.size() - at, step);
    ASSERT_TRUE((*writer)->Append(absl::string_view(data).substr(at, n)).ok());
    at += n;
    step = step * 7 % 300'007 + 1;
  }
  // Two full parts are up, in one multipart upload; the object does not exist yet.
  std::vector<UploadInfo> uploads = Uploads();
  ASSERT_EQ(uploads.size(), 1u);
  EXPECT_EQ(uploads[0].key, key);
  EXPECT_TRUE(absl::IsNotFound(client_.HeadObject(key).status()));

  absl::StatusOr<int64_t> size = (*writer)->Commit();
  ASSERT_TRUE(size.ok()) << size.status();
  EXPECT_EQ(*size, 12'000'000);
  EXPECT_THAT(Uploads(), IsEmpty());
  EXPECT_EQ(*client_.HeadObject(key), 12'000'000);

  auto reader = client_.GetObject(key);
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_EQ((*reader)->size(), 12'000'000);
  std::string back = ReadAll(**reader, 65536);
  ASSERT_EQ(back.size(), data.size());
  EXPECT_TRUE(back == data) << "the object read back differs from what was written";

  ASSERT_TRUE(client_.DeleteObject(key).ok());
  EXPECT_TRUE(absl::IsNotFound(client_.GetObject(key).status()));
  EXPECT_TRUE(client_.DeleteObject(key).ok()) << "deleting a missing object is not an error";
}

TEST_F(S3HaTest, AFailedUploadLeavesNoObjectAndAbortsTheMultipartUpload) {
  const std::string key = prefix_ + "failed.csv";
  auto writer = client_.NewWriter(key);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Append(RandomBytes(6 << 20, 1)).ok());
  std::vector<UploadInfo> uploads = Uploads();
  ASSERT_EQ(uploads.size(), 1u);
  // The upload vanishes under the writer (as a bucket's lifecycle rule would do to a stalled
  // one): its next part fails, and so does everything after.
  ASSERT_TRUE(client_.AbortMultipartUpload(key, uploads[0].upload_id).ok());
  absl::Status s = (*writer)->Append(RandomBytes(6 << 20, 2));
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr(key));
  EXPECT_FALSE((*writer)->Commit().ok());
  writer->reset();
  EXPECT_TRUE(absl::IsNotFound(client_.HeadObject(key).status()));
  EXPECT_THAT(Uploads(), IsEmpty());
}

TEST_F(S3HaTest, AnAbandonedWriterAbortsItsUpload) {
  const std::string key = prefix_ + "abandoned.csv";
  {
    auto writer = client_.NewWriter(key);
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->Append(RandomBytes(11 << 20, 3)).ok());
    ASSERT_EQ(Uploads().size(), 1u) << "two parts should be up";
  }  // destroyed without Commit, as when a report's scan fails
  EXPECT_THAT(Uploads(), IsEmpty());
  EXPECT_TRUE(absl::IsNotFound(client_.HeadObject(key).status()));
}

TEST_F(S3HaTest, SmallAndEmptyObjectsGoInOnePut) {
  for (size_t n : {size_t{0}, size_t{1}, size_t{5} << 20}) {
    const std::string key = absl::StrCat(prefix_, "small-", n);
    const std::string data = RandomBytes(n, n);
    auto writer = client_.NewWriter(key);
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->Append(data).ok());
    EXPECT_THAT(Uploads(), IsEmpty()) << "no multipart upload for " << n << " bytes";
    ASSERT_EQ(*(*writer)->Commit(), static_cast<int64_t>(n));
    auto reader = client_.GetObject(key);
    ASSERT_TRUE(reader.ok()) << reader.status();
    EXPECT_EQ((*reader)->size(), static_cast<int64_t>(n));
    EXPECT_TRUE(ReadAll(**reader, 1 << 20) == data) << n << " bytes";
    EXPECT_TRUE(client_.DeleteObject(key).ok());
  }
}

TEST_F(S3HaTest, AReaderStopsEarlyWithoutReadingTheRest) {
  const std::string key = prefix_ + "partial.csv";
  const std::string data = RandomBytes(12'000'000, 5);
  ASSERT_TRUE(client_.PutObject(key, data).ok());
  auto reader = client_.GetObject(key);
  ASSERT_TRUE(reader.ok());
  std::string piece;
  ASSERT_TRUE((*reader)->Read(1000, &piece).ok());
  EXPECT_EQ(piece, data.substr(0, 1000));
  reader->reset();  // a client gone mid-download
  // The client still works (the next request gets a sound connection).
  EXPECT_EQ(*client_.HeadObject(key), 12'000'000);
  EXPECT_TRUE(client_.DeleteObject(key).ok());
}

TEST_F(S3HaTest, ErrorsSayWhatIsWrong) {
  absl::Status s = client_.GetObject(prefix_ + "missing.csv").status();
  EXPECT_TRUE(absl::IsNotFound(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr("missing.csv"));

  Options wrong_secret = options_;
  wrong_secret.credentials.secret_key = "not-the-secret";
  S3Client refused(wrong_secret);
  s = refused.PutObject(prefix_ + "x", "x");
  EXPECT_TRUE(absl::IsUnauthenticated(s) || absl::IsPermissionDenied(s)) << s;
  EXPECT_THAT(s.message(), Not(HasSubstr("not-the-secret")));
  EXPECT_FALSE(refused.CheckBucket().ok());

  Options no_bucket = options_;
  no_bucket.bucket = "kurt-no-such-bucket";
  S3Client nowhere(no_bucket);
  s = nowhere.CheckBucket();
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr("kurt-no-such-bucket"));
}

// ---------------------------------------------------------------------------------------------
// The artifact storage's S3 backend, and its throughput beside the directory backend's.

TEST_F(S3HaTest, ArtifactStorageInS3CommitsWholeAndAbandonsCleanly) {
  reports::S3Storage storage(options_, prefix_);
  ASSERT_TRUE(storage.Init().ok());

  auto w = storage.Create("r1-1.csv");
  ASSERT_TRUE(w.ok());
  const std::string data = RandomBytes(7 << 20, 9);
  ASSERT_TRUE((*w)->Append(data).ok());
  EXPECT_TRUE(absl::IsNotFound(storage.Open("r1-1.csv").status()));
  ASSERT_EQ(*(*w)->Commit(), static_cast<int64_t>(data.size()));
  auto r = storage.Open("r1-1.csv");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)->size(), static_cast<int64_t>(data.size()));
  std::string back, piece;
  do {
    ASSERT_TRUE((*r)->Read(size_t{64} * 1024, &piece).ok());
    back += piece;
  } while (!piece.empty());
  EXPECT_TRUE(back == data);

  EXPECT_TRUE(absl::IsInvalidArgument(storage.Create("../escape").status()));
  EXPECT_TRUE(storage.Delete("r1-1.csv").ok());
  EXPECT_TRUE(absl::IsNotFound(storage.Open("r1-1.csv").status()));

  {
    auto abandoned = storage.Create("r2-1.csv");
    ASSERT_TRUE((*abandoned)->Append(RandomBytes(6 << 20, 10)).ok());
  }
  EXPECT_THAT(Uploads(), IsEmpty());
  EXPECT_TRUE(absl::IsNotFound(storage.Open("r2-1.csv").status()));

  reports::ArtifactStoreConfig bad;
  bad.s3 = options_;
  bad.s3->credentials.secret_key = "wrong";
  absl::Status s = reports::OpenArtifactStorage(bad).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr(options_.bucket));
}

// One SUCCEEDED report of account "acct-a", whose artifact is `key`.
class OneReportStore : public reports::ReportsStore {
 public:
  explicit OneReportStore(std::string key) {
    job_.id = "00000000-0000-0000-0000-000000000001";
    job_.account_id = "acct-a";
    job_.state = reports::v1::SUCCEEDED;
    job_.artifact_key = std::move(key);
    job_.content_type = "text/csv";
  }
  absl::StatusOr<reports::CreateResult> Create(const reports::NewReport&) override {
    return absl::UnimplementedError("");
  }
  absl::StatusOr<reports::ReportJob> Get(const std::string& account,
                                         const std::string& id) override {
    if (account != job_.account_id || id != job_.id) {
      return absl::NotFoundError("no such report");
    }
    return job_;
  }
  absl::StatusOr<std::vector<reports::ReportJob>> List(
      const std::string&, int, const std::optional<platform::PageKey>&) override {
    return absl::UnimplementedError("");
  }
  absl::StatusOr<reports::ReportJob> Cancel(const std::string&, const std::string&) override {
    return absl::UnimplementedError("");
  }
  absl::StatusOr<bool> OwnsLink(const std::string&, const std::string&) override { return false; }

  reports::ReportJob job_;
};

class CollectingWriter : public reports::ContentWriter {
 public:
  void SendInitialMetadata() override {}
  bool Write(const google::api::HttpBody& body, grpc::WriteOptions) override {
    bytes += body.data();
    ++messages;
    largest = std::max(largest, body.data().size());
    return true;
  }
  std::string bytes;
  int messages = 0;
  size_t largest = 0;
};

// What the worker uploaded, GetReportContent streams to the client from S3, chunk by chunk.
// A JanitorStore for the storage side alone: the attempts it is told are live.
class LiveSet : public report_worker::JanitorStore {
 public:
  explicit LiveSet(std::set<report_worker::Attempt> live) : live_(std::move(live)) {}
  absl::StatusOr<std::set<report_worker::Attempt>> LiveAttempts(
      const std::vector<report_worker::Attempt>& attempts) override {
    std::set<report_worker::Attempt> out;
    for (const auto& a : attempts) {
      if (live_.count(a) > 0) {
        out.insert(a);
      }
    }
    return out;
  }
  absl::StatusOr<int> ExpireFinished(absl::Duration, int) override { return 0; }
  absl::StatusOr<std::vector<report_worker::ExpiredArtifact>> ArtifactsToDelete(int) override {
    return std::vector<report_worker::ExpiredArtifact>{};
  }
  absl::StatusOr<bool> ForgetArtifact(const report_worker::ExpiredArtifact&) override {
    return false;
  }

 private:
  std::set<report_worker::Attempt> live_;
};

TEST_F(S3HaTest, TheSweepAbortsTheUploadOfAKilledWriterAndKeepsALiveOne) {
  const std::string dead_id = "00000000-0000-4000-8000-000000000001";
  const std::string live_id = "00000000-0000-4000-8000-000000000002";
  // A worker killed (SIGKILL) after its first part: its multipart upload stays behind.
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    reports::S3Storage child(options_, prefix_);
    auto w = child.Create(dead_id + "-1.csv");
    if (w.ok()) {
      (void)(*w)->Append(RandomBytes(6 << 20, 21));
    }
    ::raise(SIGKILL);
    ::_exit(1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status));
  // A live writer, mid-report.
  reports::S3Storage storage(options_, prefix_);
  ASSERT_TRUE(storage.Init().ok());
  auto live = storage.Create(live_id + "-1.csv");
  ASSERT_TRUE(live.ok());
  const std::string data = RandomBytes(6 << 20, 22);
  ASSERT_TRUE((*live)->Append(data).ok());
  ASSERT_EQ(Uploads().size(), 2u);

  auto temporaries = storage.ListTemporaries();
  ASSERT_TRUE(temporaries.ok()) << temporaries.status();
  ASSERT_EQ(temporaries->size(), 2u);
  for (const reports::Temporary& t : *temporaries) {
    EXPECT_LT(absl::AbsDuration(absl::Now() - t.modified), absl::Minutes(5)) << t.key;
  }

  LiveSet store({{live_id, 1}});
  metrics::Registry registry;
  report_worker::JanitorOptions o;
  o.temp_min_age = absl::ZeroDuration();
  report_worker::ArtifactJanitor janitor(o, &store, &storage, &registry);
  auto swept = janitor.SweepTemporaries();
  ASSERT_TRUE(swept.ok()) << swept.status();
  EXPECT_EQ(*swept, 1);
  std::vector<UploadInfo> left = Uploads();
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].key, prefix_ + live_id + "-1.csv");
  // The live writer never noticed.
  ASSERT_EQ(*(*live)->Commit(), static_cast<int64_t>(data.size()));
  EXPECT_THAT(Uploads(), IsEmpty());
  EXPECT_TRUE(storage.Delete(live_id + "-1.csv").ok());
}

TEST_F(S3HaTest, ReportContentIsStreamedFromTheBucket) {
  reports::S3Storage storage(options_, prefix_);
  ASSERT_TRUE(storage.Init().ok());
  const std::string data = RandomBytes(11'000'000, 12);
  auto w = storage.Create("r1-1.csv");
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append(data).ok());
  ASSERT_TRUE((*w)->Commit().ok());

  OneReportStore store("r1-1.csv");
  metrics::Registry registry;
  reports::ReportsRpcsOptions o;
  o.content_chunk_bytes = size_t{256} * 1024;
  reports::ReportsRpcs rpcs(o, &store, &storage, nullptr, &registry);
  reports::v1::GetReportContentRequest request;
  request.set_id(store.job_.id);
  CollectingWriter writer;
  absl::Status s = rpcs.GetReportContent(platform::Caller("acct-a"), request, &writer);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_TRUE(writer.bytes == data) << "the download differs from the upload";
  EXPECT_LE(writer.largest, o.content_chunk_bytes);
  EXPECT_GE(writer.messages, 42);

  // Gone from the bucket: the report's content is lost, and the client is told so.
  ASSERT_TRUE(storage.Delete("r1-1.csv").ok());
  CollectingWriter nothing;
  s = rpcs.GetReportContent(platform::Caller("acct-a"), request, &nothing);
  EXPECT_TRUE(absl::IsDataLoss(s)) << s;
  EXPECT_EQ(nothing.messages, 0);
}

struct Rate {
  double write_mb_s = 0, read_mb_s = 0;
};

// Writes `data` as one artifact in 64 KiB appends (as the report worker does), reads it back in
// 64 KiB messages (as GetReportContent does), checks it, and times both.
Rate Measure(reports::ArtifactStorage& storage, const std::string& key, const std::string& data) {
  using Clock = std::chrono::steady_clock;
  Rate rate;
  auto t0 = Clock::now();
  auto w = storage.Create(key);
  EXPECT_TRUE(w.ok());
  for (size_t at = 0; at < data.size(); at += 65536) {
    EXPECT_TRUE((*w)->Append(absl::string_view(data).substr(at, 65536)).ok());
  }
  EXPECT_TRUE((*w)->Commit().ok());
  auto t1 = Clock::now();
  auto r = storage.Open(key);
  EXPECT_TRUE(r.ok());
  std::string back, piece;
  back.reserve(data.size());
  do {
    EXPECT_TRUE((*r)->Read(65536, &piece).ok());
    back += piece;
  } while (!piece.empty());
  auto t2 = Clock::now();
  EXPECT_TRUE(back == data);
  EXPECT_TRUE(storage.Delete(key).ok());
  const double mb = static_cast<double>(data.size()) / 1e6;
  rate.write_mb_s = mb / std::chrono::duration<double>(t1 - t0).count();
  rate.read_mb_s = mb / std::chrono::duration<double>(t2 - t1).count();
  return rate;
}

TEST_F(S3HaTest, ThroughputBesideTheDirectoryBackend) {
  const std::string data = RandomBytes(64'000'000, 11);
  std::string dir = absl::StrCat(::testing::TempDir(), "/kurt-s3-bench-", getpid());
  reports::DirectoryStorageOptions dopts;
  dopts.dir = dir;
  reports::DirectoryStorage directory(dopts);
  ASSERT_TRUE(directory.Init().ok());
  Options o = options_;
  o.part_bytes = size_t{8} << 20;  // the default
  reports::S3Storage s3(o, prefix_);
  ASSERT_TRUE(s3.Init().ok());

  // Alternated, so both see the same machine load; best of three each.
  Rate best_dir, best_s3;
  for (int round = 0; round < 3; ++round) {
    Rate d = Measure(directory, absl::StrCat("bench-", round, ".csv"), data);
    Rate s = Measure(s3, absl::StrCat("bench-", round, ".csv"), data);
    best_dir = {std::max(best_dir.write_mb_s, d.write_mb_s),
                std::max(best_dir.read_mb_s, d.read_mb_s)};
    best_s3 = {std::max(best_s3.write_mb_s, s.write_mb_s),
               std::max(best_s3.read_mb_s, s.read_mb_s)};
  }
  std::printf(
      "64 MB artifact, best of 3 (MB/s)   write (fsync'd / multipart)   read\n"
      "  directory backend                %8.0f                    %8.0f\n"
      "  S3 backend (SeaweedFS, 8 MiB parts) %5.0f                    %8.0f\n",
      best_dir.write_mb_s, best_dir.read_mb_s, best_s3.write_mb_s, best_s3.read_mb_s);
  std::filesystem::remove_all(dir);
  // Not a race: S3 only has to keep up with a report scan (tens of MB/s).
  EXPECT_GT(best_s3.write_mb_s, 10);
  EXPECT_GT(best_s3.read_mb_s, 10);
}

}  // namespace
}  // namespace kurt::s3
