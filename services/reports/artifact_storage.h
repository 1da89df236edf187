// Where report artifacts live: an interface (so object storage can replace the directory) and
// DirectoryStorage, files in one directory shared by the workers that write and the reports
// replicas that serve them (a volume in Kubernetes).
//
// A writer's bytes become visible under their key only at Commit (write to a temporary name,
// fsync, rename), so a reader never sees half an artifact and a killed writer leaves only a
// temporary file. Storage objects are thread-safe; a writer or reader is used by one thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace kurt::reports {

class ArtifactWriter {
 public:
  // Discards the bytes unless Commit succeeded.
  virtual ~ArtifactWriter() = default;
  virtual absl::Status Append(absl::string_view data) = 0;
  // Makes the artifact durable and visible under its key; returns its size in bytes.
  virtual absl::StatusOr<int64_t> Commit() = 0;
};

class ArtifactReader {
 public:
  virtual ~ArtifactReader() = default;
  virtual int64_t size() const = 0;
  // Reads up to `max` bytes into `out` (replacing it); an empty `out` means the end.
  virtual absl::Status Read(size_t max, std::string* out) = 0;
};

// What a writer leaves when its process dies before Commit or its destructor: a temporary file,
// a multipart upload. Live writers have them too; whoever sweeps decides which are stale.
struct Temporary {
  // The artifact key it was written for; "" when its name says none.
  std::string key;
  // What RemoveTemporary needs besides the key: the file's name, the upload's id.
  std::string handle;
  // The file's last write; the upload's start.
  absl::Time modified;
};

class ArtifactStorage {
 public:
  virtual ~ArtifactStorage() = default;
  // Keys are [A-Za-z0-9._-], 1 to 200 characters, not starting with '.'.
  virtual absl::StatusOr<std::unique_ptr<ArtifactWriter>> Create(const std::string& key) = 0;
  // NOT_FOUND when there is no committed artifact with this key.
  virtual absl::StatusOr<std::unique_ptr<ArtifactReader>> Open(const std::string& key) = 0;
  // Removing a missing artifact is not an error.
  virtual absl::Status Delete(const std::string& key) = 0;
  // Every temporary (live writers' included).
  virtual absl::StatusOr<std::vector<Temporary>> ListTemporaries() = 0;
  // Removes what ListTemporaries listed; one that is gone already is not an error. A writer
  // whose temporary is removed fails at its next Append or its Commit.
  virtual absl::Status RemoveTemporary(const Temporary& temporary) = 0;
};

bool IsValidArtifactKey(absl::string_view key);

// `flag` if set, else $KURT_STATE_DIR/reports (the local stack's state), else .kurt/reports.
std::string ArtifactDirOrDefault(const std::string& flag);

struct DirectoryStorageOptions {
  std::string dir;
  // fsync the file and the directory at Commit (off only for throwaway set-ups).
  bool fsync = true;
  // Bytes buffered before a write(2).
  size_t buffer_bytes = 1 << 20;
};

class DirectoryStorage : public ArtifactStorage {
 public:
  explicit DirectoryStorage(DirectoryStorageOptions options);
  // Creates the directory if needed; fails when it cannot be written.
  absl::Status Init();

  absl::StatusOr<std::unique_ptr<ArtifactWriter>> Create(const std::string& key) override;
  absl::StatusOr<std::unique_ptr<ArtifactReader>> Open(const std::string& key) override;
  absl::Status Delete(const std::string& key) override;
  // The directory's .tmp-<key>-<n> files.
  absl::StatusOr<std::vector<Temporary>> ListTemporaries() override;
  absl::Status RemoveTemporary(const Temporary& temporary) override;

 private:
  const DirectoryStorageOptions options_;
};

}  // namespace kurt::reports
