#include "services/reports/artifact_storage.h"

#include <filesystem>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kurt::reports {
namespace {

class DirectoryStorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("artifacts-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    DirectoryStorageOptions o;
    o.dir = dir_.string();
    o.buffer_bytes = 16;  // small, so that appends cross the buffer
    storage_ = std::make_unique<DirectoryStorage>(o);
    ASSERT_TRUE(storage_->Init().ok());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string ReadAll(const std::string& key) {
    auto reader = storage_->Open(key);
    EXPECT_TRUE(reader.ok()) << reader.status();
    if (!reader.ok()) {
      return "";
    }
    std::string all, chunk;
    do {
      EXPECT_TRUE((*reader)->Read(7, &chunk).ok());
      all += chunk;
    } while (!chunk.empty());
    EXPECT_EQ((*reader)->size(), static_cast<int64_t>(all.size()));
    return all;
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
  std::unique_ptr<DirectoryStorage> storage_;
};

TEST_F(DirectoryStorageTest, ArtifactAppearsOnlyAtCommit) {
  auto w = storage_->Create("r1-1.csv");
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append("code,time\n").ok());
  ASSERT_TRUE((*w)->Append(std::string(100, 'x')).ok());
  ASSERT_TRUE((*w)->Append("\n").ok());
  EXPECT_TRUE(absl::IsNotFound(storage_->Open("r1-1.csv").status()));
  auto size = (*w)->Commit();
  ASSERT_TRUE(size.ok());
  EXPECT_EQ(*size, 111);
  EXPECT_EQ(ReadAll("r1-1.csv"), "code,time\n" + std::string(100, 'x') + "\n");
  EXPECT_EQ(Files(), 1u) << "no temporary file left";
}

TEST_F(DirectoryStorageTest, AnAbandonedWriterLeavesNothing) {
  {
    auto w = storage_->Create("r2-1.csv");
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Append(std::string(100, 'y')).ok());
  }
  EXPECT_EQ(Files(), 0u);
  EXPECT_TRUE(absl::IsNotFound(storage_->Open("r2-1.csv").status()));
}

TEST_F(DirectoryStorageTest, DeleteIsIdempotentAndKeysAreChecked) {
  auto w = storage_->Create("r3-1.json");
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Commit().ok());
  EXPECT_TRUE(storage_->Delete("r3-1.json").ok());
  EXPECT_TRUE(storage_->Delete("r3-1.json").ok());
  for (const char* bad : {"", "../etc/passwd", ".hidden", "a/b", "a b"}) {
    EXPECT_FALSE(IsValidArtifactKey(bad)) << bad;
    EXPECT_TRUE(absl::IsInvalidArgument(storage_->Create(bad).status())) << bad;
    EXPECT_TRUE(absl::IsInvalidArgument(storage_->Open(bad).status())) << bad;
  }
}

TEST(ArtifactDirTest, FlagWinsThenStateDir) {
  EXPECT_EQ(ArtifactDirOrDefault("/x/y"), "/x/y");
  setenv("KURT_STATE_DIR", "/state", 1);
  EXPECT_EQ(ArtifactDirOrDefault(""), "/state/reports");
  unsetenv("KURT_STATE_DIR");
  EXPECT_EQ(ArtifactDirOrDefault(""), ".kurt/reports");
}

TEST(DirectoryStorageInitTest, AFileInTheWayIsAnError) {
  std::string path = ::testing::TempDir() + "/not-a-dir-" + std::to_string(::getpid());
  FILE* f = fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  fclose(f);
  DirectoryStorageOptions o;
  o.dir = path;
  DirectoryStorage storage(o);
  EXPECT_TRUE(absl::IsFailedPrecondition(storage.Init()));
  std::filesystem::remove(path);
}

// A relative default under a read-only root (a container's) must say where it tried and what to
// set instead, not only "Read-only file system".
TEST(DirectoryStorageInitTest, AnUncreatableDirectoryIsNamedAbsolutelyWithTheFix) {
  const std::string base =
      (std::filesystem::path(::testing::TempDir()) / ("kurt-ro-" + std::to_string(::getpid())))
          .string();
  std::filesystem::create_directories(base);
  FILE* f = fopen((base + "/root").c_str(), "w");  // a file where a directory should be
  ASSERT_NE(f, nullptr);
  fclose(f);
  const std::filesystem::path cwd = std::filesystem::current_path();
  std::filesystem::current_path(base);
  DirectoryStorageOptions o;
  o.dir = "root/.kurt/reports";
  DirectoryStorage storage(o);
  absl::Status s = storage.Init();
  std::filesystem::current_path(cwd);
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr(base + "/root/.kurt/reports"));
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("cannot be created"));
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("--artifact_dir"));
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("--s3_bucket"));
  std::filesystem::remove_all(base);
}

}  // namespace
}  // namespace kurt::reports
