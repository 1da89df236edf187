#include "services/reports/s3_artifact_storage.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "platform/core/log.h"

namespace kurt::reports {
namespace {

absl::Status InvalidKey(const std::string& key) {
  return absl::InvalidArgumentError(absl::StrCat("invalid artifact key '", key, "'"));
}

class S3Writer : public ArtifactWriter {
 public:
  explicit S3Writer(std::unique_ptr<s3::ObjectWriter> writer) : writer_(std::move(writer)) {}
  absl::Status Append(absl::string_view data) override { return writer_->Append(data); }
  absl::StatusOr<int64_t> Commit() override { return writer_->Commit(); }

 private:
  std::unique_ptr<s3::ObjectWriter> writer_;
};

class S3Reader : public ArtifactReader {
 public:
  explicit S3Reader(std::unique_ptr<s3::ObjectReader> reader) : reader_(std::move(reader)) {}
  int64_t size() const override { return reader_->size(); }
  absl::Status Read(size_t max, std::string* out) override { return reader_->Read(max, out); }

 private:
  std::unique_ptr<s3::ObjectReader> reader_;
};

}  // namespace

S3Storage::S3Storage(s3::Options options, std::string prefix)
    : client_(std::move(options)), prefix_(std::move(prefix)) {}

absl::Status S3Storage::Init() {
  absl::Status s = client_.CheckBucket();
  if (!s.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("artifact bucket ", client_.options().bucket, ": ", s.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ArtifactWriter>> S3Storage::Create(const std::string& key) {
  if (!IsValidArtifactKey(key)) {
    return InvalidKey(key);
  }
  auto writer = client_.NewWriter(prefix_ + key);
  if (!writer.ok()) {
    return writer.status();
  }
  return std::unique_ptr<ArtifactWriter>(new S3Writer(*std::move(writer)));
}

absl::StatusOr<std::unique_ptr<ArtifactReader>> S3Storage::Open(const std::string& key) {
  if (!IsValidArtifactKey(key)) {
    return InvalidKey(key);
  }
  auto reader = client_.GetObject(prefix_ + key);
  if (!reader.ok()) {
    return reader.status();
  }
  return std::unique_ptr<ArtifactReader>(new S3Reader(*std::move(reader)));
}

absl::Status S3Storage::Delete(const std::string& key) {
  if (!IsValidArtifactKey(key)) {
    return InvalidKey(key);
  }
  return client_.DeleteObject(prefix_ + key);
}

absl::StatusOr<std::vector<Temporary>> S3Storage::ListTemporaries() {
  auto uploads = client_.ListMultipartUploads(prefix_);
  if (!uploads.ok()) {
    return uploads.status();
  }
  std::vector<Temporary> out;
  for (s3::UploadInfo& u : *uploads) {
    absl::string_view key = u.key;
    if (!absl::ConsumePrefix(&key, prefix_)) {
      continue;
    }
    Temporary t;
    t.key = IsValidArtifactKey(key) ? std::string(key) : "";
    t.handle = std::move(u.upload_id);
    t.modified = u.initiated;
    // An upload under the prefix whose name is no artifact's is not ours to remove.
    if (!t.key.empty()) {
      out.push_back(std::move(t));
    }
  }
  return out;
}

absl::Status S3Storage::RemoveTemporary(const Temporary& temporary) {
  if (!IsValidArtifactKey(temporary.key) || temporary.handle.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("not an artifact upload: key '", temporary.key, "'"));
  }
  return client_.AbortMultipartUpload(prefix_ + temporary.key, temporary.handle);
}

absl::StatusOr<ArtifactStoreConfig> ArtifactStoreFromFlags(const std::string& dir_flag) {
  ArtifactStoreConfig config;
  config.dir = ArtifactDirOrDefault(dir_flag);
  if (!s3::Options::Configured()) {
    return config;
  }
  absl::StatusOr<s3::Options> s3 = s3::Options::FromFlags();
  if (!s3.ok()) {
    return s3.status();
  }
  KURT_LOG(kInfo, "report artifacts in S3", {"url", s3->url}, {"bucket", s3->bucket},
           {"region", s3->region});
  config.s3 = *std::move(s3);
  return config;
}

absl::StatusOr<std::unique_ptr<ArtifactStorage>> OpenArtifactStorage(
    const ArtifactStoreConfig& config) {
  if (config.s3.has_value()) {
    auto storage = std::make_unique<S3Storage>(*config.s3);
    if (absl::Status s = storage->Init(); !s.ok()) {
      return s;
    }
    return std::unique_ptr<ArtifactStorage>(std::move(storage));
  }
  DirectoryStorageOptions options;
  options.dir = config.dir;
  options.fsync = config.fsync;
  auto storage = std::make_unique<DirectoryStorage>(options);
  if (absl::Status s = storage->Init(); !s.ok()) {
    return s;
  }
  return std::unique_ptr<ArtifactStorage>(std::move(storage));
}

}  // namespace kurt::reports
