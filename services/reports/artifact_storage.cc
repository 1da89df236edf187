#include "services/reports/artifact_storage.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace kurt::reports {
namespace {

absl::Status Errno(absl::string_view what, const std::string& path) {
  int e = errno;
  std::string msg = absl::StrCat(what, " ", path, ": ", std::strerror(e));
  if (e == ENOENT) {
    return absl::NotFoundError(msg);
  }
  if (e == ENOSPC || e == EDQUOT) {
    return absl::ResourceExhaustedError(msg);
  }
  return absl::UnavailableError(msg);
}

// A writer's file until Commit renames it: .tmp-<key>-<random digits>.
constexpr absl::string_view kTempPrefix = ".tmp-";

std::string RandomSuffix() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return absl::StrCat(rng() % 1000000000);
}

class FileWriter : public ArtifactWriter {
 public:
  FileWriter(int fd, std::string temp, std::string final_path, std::string dir,
             const DirectoryStorageOptions& options)
      : fd_(fd),
        temp_(std::move(temp)),
        final_(std::move(final_path)),
        dir_(std::move(dir)),
        fsync_(options.fsync),
        limit_(options.buffer_bytes) {
    buffer_.reserve(limit_ + size_t{64} * 1024);
  }

  ~FileWriter() override {
    if (fd_ >= 0) {
      ::close(fd_);
    }
    if (!committed_) {
      ::unlink(temp_.c_str());
    }
  }

  absl::Status Append(absl::string_view data) override {
    if (!status_.ok()) {
      return status_;
    }
    if (buffer_.size() + data.size() > limit_ && !buffer_.empty()) {
      if (absl::Status s = Flush(); !s.ok()) {
        return s;
      }
    }
    if (data.size() >= limit_) {
      return WriteAll(data);
    }
    buffer_.append(data.data(), data.size());
    return absl::OkStatus();
  }

  absl::StatusOr<int64_t> Commit() override {
    if (!status_.ok()) {
      return status_;
    }
    if (absl::Status s = Flush(); !s.ok()) {
      return s;
    }
    if (fsync_ && ::fsync(fd_) != 0) {
      return Errno("fsync", temp_);
    }
    if (::close(fd_) != 0) {
      fd_ = -1;
      return Errno("close", temp_);
    }
    fd_ = -1;
    if (::rename(temp_.c_str(), final_.c_str()) != 0) {
      return Errno("rename", temp_);
    }
    committed_ = true;
    if (fsync_) {
      int dfd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
      }
    }
    return size_;
  }

 private:
  absl::Status Flush() {
    absl::Status s = WriteAll(buffer_);
    buffer_.clear();
    if (s.ok() && fsync_ && size_ > started_sync_) {
      // Start writing back what we have (without waiting), so that the fsync at Commit has
      // little left to do: a large artifact is durable moments after its last byte.
      ::sync_file_range(fd_, started_sync_, size_ - started_sync_, SYNC_FILE_RANGE_WRITE);
      started_sync_ = size_;
    }
    return s;
  }

  absl::Status WriteAll(absl::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::write(fd_, data.data(), data.size());
      if (n < 0) {
        if (errno == EINTR) {
          continue;
        }
        status_ = Errno("write", temp_);
        return status_;
      }
      data.remove_prefix(static_cast<size_t>(n));
      size_ += n;
    }
    return absl::OkStatus();
  }

  int fd_;
  const std::string temp_;
  const std::string final_;
  const std::string dir_;
  const bool fsync_;
  const size_t limit_;
  std::string buffer_;
  int64_t size_ = 0;
  int64_t started_sync_ = 0;
  bool committed_ = false;
  absl::Status status_;
};

class FileReader : public ArtifactReader {
 public:
  FileReader(int fd, int64_t size, std::string path)
      : fd_(fd), size_(size), path_(std::move(path)) {}
  ~FileReader() override { ::close(fd_); }

  int64_t size() const override { return size_; }

  absl::Status Read(size_t max, std::string* out) override {
    out->resize(max);
    for (;;) {
      ssize_t n = ::read(fd_, out->data(), max);
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n < 0) {
        out->clear();
        return Errno("read", path_);
      }
      out->resize(static_cast<size_t>(n));
      return absl::OkStatus();
    }
  }

 private:
  int fd_;
  const int64_t size_;
  const std::string path_;
};

}  // namespace

bool IsValidArtifactKey(absl::string_view key) {
  if (key.empty() || key.size() > 200 || key[0] == '.') {
    return false;
  }
  for (char c : key) {
    if (!(absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) {
      return false;
    }
  }
  return true;
}

std::string ArtifactDirOrDefault(const std::string& flag) {
  if (!flag.empty()) {
    return flag;
  }
  const char* state = std::getenv("KURT_STATE_DIR");
  if (state != nullptr && *state != '\0') {
    return absl::StrCat(state, "/reports");
  }
  return ".kurt/reports";
}

DirectoryStorage::DirectoryStorage(DirectoryStorageOptions options)
    : options_(std::move(options)) {}

absl::Status DirectoryStorage::Init() {
  // Named absolutely: a relative default under a read-only root (a container's) is the usual cause.
  std::error_code ec;
  std::string shown = std::filesystem::absolute(options_.dir, ec).string();
  if (ec) {
    shown = options_.dir;
  }
  constexpr absl::string_view kFix =
      " (set --artifact_dir, or KURT_ARTIFACT_DIR, to a writable directory shared by kurt-reports "
      "and kurt-report-worker, or keep artifacts in S3 with --s3_bucket)";
  std::filesystem::create_directories(options_.dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("artifact directory ", shown, " cannot be created: ", ec.message(), kFix));
  }
  if (::access(options_.dir.c_str(), W_OK | X_OK) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "artifact directory ", shown, " is not writable: ", std::strerror(errno), kFix));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ArtifactWriter>> DirectoryStorage::Create(const std::string& key) {
  if (!IsValidArtifactKey(key)) {
    return absl::InvalidArgumentError(absl::StrCat("invalid artifact key '", key, "'"));
  }
  std::string final_path = absl::StrCat(options_.dir, "/", key);
  std::string temp = absl::StrCat(options_.dir, "/", kTempPrefix, key, "-", RandomSuffix());
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
  if (fd < 0) {
    return Errno("create", temp);
  }
  return std::unique_ptr<ArtifactWriter>(
      new FileWriter(fd, std::move(temp), std::move(final_path), options_.dir, options_));
}

absl::StatusOr<std::unique_ptr<ArtifactReader>> DirectoryStorage::Open(const std::string& key) {
  if (!IsValidArtifactKey(key)) {
    return absl::InvalidArgumentError(absl::StrCat("invalid artifact key '", key, "'"));
  }
  std::string path = absl::StrCat(options_.dir, "/", key);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return Errno("open", path);
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    absl::Status s = Errno("stat", path);
    ::close(fd);
    return s;
  }
  return std::unique_ptr<ArtifactReader>(new FileReader(fd, st.st_size, std::move(path)));
}

absl::Status DirectoryStorage::Delete(const std::string& key) {
  if (!IsValidArtifactKey(key)) {
    return absl::InvalidArgumentError(absl::StrCat("invalid artifact key '", key, "'"));
  }
  std::string path = absl::StrCat(options_.dir, "/", key);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return Errno("unlink", path);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Temporary>> DirectoryStorage::ListTemporaries() {
  std::vector<Temporary> out;
  std::error_code ec;
  std::filesystem::directory_iterator it(options_.dir, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("list artifact directory ", options_.dir, ": ", ec.message()));
  }
  for (; !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    absl::string_view rest = name;
    if (!absl::ConsumePrefix(&rest, kTempPrefix)) {
      continue;
    }
    struct stat st;
    if (::lstat(it->path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
      continue;  // gone meanwhile (committed or discarded), or not a writer's
    }
    Temporary t;
    t.handle = name;
    // .tmp-<key>-<random digits>
    if (size_t dash = rest.rfind('-'); dash != absl::string_view::npos) {
      absl::string_view key = rest.substr(0, dash);
      if (IsValidArtifactKey(key)) {
        t.key = std::string(key);
      }
    }
    t.modified = absl::TimeFromTimespec(st.st_mtim);
    out.push_back(std::move(t));
  }
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("list artifact directory ", options_.dir, ": ", ec.message()));
  }
  return out;
}

absl::Status DirectoryStorage::RemoveTemporary(const Temporary& temporary) {
  // Only a name ListTemporaries can give: never a path, never a committed artifact.
  if (!absl::StartsWith(temporary.handle, kTempPrefix) ||
      temporary.handle.find('/') != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a temporary artifact file: '", temporary.handle, "'"));
  }
  std::string path = absl::StrCat(options_.dir, "/", temporary.handle);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return Errno("unlink", path);
  }
  return absl::OkStatus();
}

}  // namespace kurt::reports
