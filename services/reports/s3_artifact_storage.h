// Report artifacts as objects in an S3 bucket (platform/s3), for replicas on many machines: a
// worker uploads in parts as the report is written, and any kurt-reports replica streams it back.
// The object appears only when Commit completes the upload (as DirectoryStorage's rename); a
// writer destroyed before that aborts its upload, so nothing is left (a killed worker's upload is
// removed by the bucket's lifecycle rule, AbortIncompleteMultipartUpload).
//
// Thread-safe, as its S3Client; writers and readers are used by one thread each.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "platform/s3/s3.h"
#include "services/reports/artifact_storage.h"

namespace kurt::reports {

class S3Storage : public ArtifactStorage {
 public:
  // Objects are named `prefix` + key (tests share a bucket under prefixes of their own).
  explicit S3Storage(s3::Options options, std::string prefix = "");
  // Fails when the bucket cannot be reached with these credentials (a message says which).
  absl::Status Init();

  absl::StatusOr<std::unique_ptr<ArtifactWriter>> Create(const std::string& key) override;
  absl::StatusOr<std::unique_ptr<ArtifactReader>> Open(const std::string& key) override;
  absl::Status Delete(const std::string& key) override;
  // The multipart uploads in progress under the prefix.
  absl::StatusOr<std::vector<Temporary>> ListTemporaries() override;
  absl::Status RemoveTemporary(const Temporary& temporary) override;

 private:
  s3::S3Client client_;
  const std::string prefix_;
};

// Where artifacts go, from the binaries' flags: S3 when `s3` is set, else the directory.
struct ArtifactStoreConfig {
  std::string dir;
  bool fsync = true;
  std::optional<s3::Options> s3;
};

// The binaries' artifact store: the directory `dir_flag` names (ArtifactDirOrDefault), and the
// S3 settings of --s3_* when --s3_bucket is set (logged, without the secret); an error names the
// flag that is wrong.
absl::StatusOr<ArtifactStoreConfig> ArtifactStoreFromFlags(const std::string& dir_flag);

// The storage `config` names, ready to use: FAILED_PRECONDITION (with what to change) when the
// directory cannot be created or written, or the bucket cannot be reached.
absl::StatusOr<std::unique_ptr<ArtifactStorage>> OpenArtifactStorage(
    const ArtifactStoreConfig& config);

}  // namespace kurt::reports
