// An S3 client (libcurl, which signs each request with AWS Signature V4 itself) for objects of any
// size in bounded memory: uploads go in parts (multipart upload: initiate, parts, complete; abort
// when the upload is abandoned), downloads stream, and errors become absl::Status codes a caller
// can act on (NOT_FOUND for a missing key, PERMISSION_DENIED for refused credentials,
// UNAVAILABLE for what a retry may cure, and so on), each message naming the bucket and key.
//
// Works against AWS S3 and S3-compatible servers (SeaweedFS in the --ha stack). Credentials are
// static keys, optionally with a session token (what AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
// AWS_SESSION_TOKEN carry), or the pod's role through the container credentials endpoint that EKS
// Pod Identity (and ECS) provide, renewed before they expire. The secret key is never logged nor
// put in a message.
//
// S3Client lives as long as its users and is thread-safe; the ObjectWriter and ObjectReader it
// makes are used by one thread at a time and must not outlive it.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

ABSL_DECLARE_FLAG(std::string, s3_url);
ABSL_DECLARE_FLAG(std::string, s3_bucket);
ABSL_DECLARE_FLAG(std::string, s3_region);
ABSL_DECLARE_FLAG(std::string, s3_access_key);
ABSL_DECLARE_FLAG(std::string, s3_secret_key);

namespace kurt::s3 {

struct Credentials {
  std::string access_key;
  std::string secret_key;
  // Temporary credentials' token (sent as x-amz-security-token); empty for long-term keys.
  std::string session_token;
};

// Where temporary credentials come from, each time the last ones are about to expire.
class CredentialsProvider {
 public:
  virtual ~CredentialsProvider() = default;
  // Thread-safe; cheap while the credentials it holds are fresh.
  virtual absl::StatusOr<Credentials> Get() = 0;
};

// The container credentials endpoint: GET AWS_CONTAINER_CREDENTIALS_FULL_URI with the token read
// from AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (EKS Pod Identity; the agent serves the pod's role)
// answers {"AccessKeyId", "SecretAccessKey", "Token", "Expiration"}. Fetched again 5 minutes
// before the expiration.
class ContainerCredentials : public CredentialsProvider {
 public:
  ContainerCredentials(std::string url, std::string token_file);
  // From the environment; null when AWS_CONTAINER_CREDENTIALS_FULL_URI is not set.
  static std::shared_ptr<ContainerCredentials> FromEnvironment();
  absl::StatusOr<Credentials> Get() override;

 private:
  absl::StatusOr<Credentials> Fetch(absl::Time* expiration);

  const std::string url_;
  const std::string token_file_;
  std::mutex mu_;
  Credentials cached_;
  absl::Time refresh_at_ = absl::InfinitePast();
};

struct Options {
  // The endpoint, e.g. http://127.0.0.1:25303; the bucket goes in the path. Empty: AWS S3 in
  // `region`, the bucket in the host name (https://BUCKET.s3.REGION.amazonaws.com).
  std::string url;
  std::string bucket;
  std::string region = "us-east-1";
  Credentials credentials;
  // When set, asked for credentials before each request instead of `credentials`.
  std::shared_ptr<CredentialsProvider> provider;
  // Bytes per uploaded part (S3's minimum is 5 MiB for every part but the last); an object of at
  // most this size goes in one PUT. One writer holds one part in memory.
  size_t part_bytes = size_t{8} << 20;
  // Attempts of an idempotent request (a part, a PUT, a DELETE, a HEAD, the start of a GET) when
  // the server is unavailable or answers 5xx; the wait doubles from `retry_backoff`.
  int max_attempts = 3;
  absl::Duration retry_backoff = absl::Milliseconds(200);
  absl::Duration connect_timeout = absl::Seconds(5);
  // A transfer slower than 1 KiB/s for this long fails (a stalled server), whatever its size.
  absl::Duration stall_timeout = absl::Seconds(30);

  // From --s3_url, --s3_bucket, --s3_region, --s3_access_key, --s3_secret_key (or their KURT_*
  // environment twins); without keys in the flags, from AWS_ACCESS_KEY_ID,
  // AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, else from the container credentials endpoint
  // (AWS_CONTAINER_CREDENTIALS_FULL_URI: the pod's role). INVALID_ARGUMENT naming the flag when
  // one is missing or malformed; call only when --s3_bucket is set.
  static absl::StatusOr<Options> FromFlags();
  // Whether --s3_bucket is set, i.e. whether the process is meant to use S3.
  static bool Configured();
};

// A multipart upload under construction. Append buffers up to one part and uploads each full part;
// Commit uploads the rest and completes the upload (the object appears whole, at once). Destroyed
// without a successful Commit, the upload is aborted: no object, no parts left behind.
class ObjectWriter {
 public:
  virtual ~ObjectWriter() = default;
  virtual absl::Status Append(absl::string_view data) = 0;
  // Returns the object's size in bytes.
  virtual absl::StatusOr<int64_t> Commit() = 0;
};

// A GET in progress: the body arrives as Read asks for it (at most one read and 1 MiB ahead are
// buffered; the server waits on TCP's flow control meanwhile).
class ObjectReader {
 public:
  virtual ~ObjectReader() = default;
  virtual int64_t size() const = 0;
  // Reads up to `max` bytes into `out` (replacing it); an empty `out` means the end. Fails when the
  // connection breaks or the body is shorter than announced.
  virtual absl::Status Read(size_t max, std::string* out) = 0;
};

struct UploadInfo {
  std::string key;
  std::string upload_id;
  // When it was initiated (InfinitePast when the server did not say).
  absl::Time initiated = absl::InfinitePast();
};

class S3Client {
 public:
  explicit S3Client(Options options);
  ~S3Client();
  S3Client(const S3Client&) = delete;
  S3Client& operator=(const S3Client&) = delete;

  const Options& options() const { return options_; }

  // OK when the bucket exists and the credentials may use it (HEAD bucket).
  absl::Status CheckBucket();

  absl::Status PutObject(absl::string_view key, absl::string_view data);
  absl::StatusOr<std::unique_ptr<ObjectWriter>> NewWriter(absl::string_view key);
  // NOT_FOUND when there is no such object.
  absl::StatusOr<std::unique_ptr<ObjectReader>> GetObject(absl::string_view key);
  // The object's size; NOT_FOUND when there is none.
  absl::StatusOr<int64_t> HeadObject(absl::string_view key);
  // Deleting a missing object is not an error.
  absl::Status DeleteObject(absl::string_view key);

  // Multipart uploads started and neither completed nor aborted, under `prefix` (the first 1,000,
  // as one ListMultipartUploads answer holds).
  absl::StatusOr<std::vector<UploadInfo>> ListMultipartUploads(absl::string_view prefix);
  absl::Status AbortMultipartUpload(absl::string_view key, absl::string_view upload_id);

  // The steps of a multipart upload (NewWriter's writer takes them).
  absl::StatusOr<std::string> InitiateMultipartUpload(absl::string_view key);
  // Returns the part's ETag.
  absl::StatusOr<std::string> UploadPart(absl::string_view key, absl::string_view upload_id,
                                         int part_number, absl::string_view data);
  absl::Status CompleteMultipartUpload(absl::string_view key, absl::string_view upload_id,
                                       const std::vector<std::string>& etags);

  // One request and its answer (defined, and used, in s3.cc only).
  struct Request;
  struct Response;

 private:
  friend class StreamingReader;
  struct Handle;
  struct HandleDeleter {
    void operator()(Handle* h) const;
  };
  using HandlePtr = std::unique_ptr<Handle, HandleDeleter>;

  // libcurl handles keep their connections open between requests: they are reused.
  HandlePtr AcquireHandle();
  void ReleaseHandle(HandlePtr handle);
  // Sets up `handle` for one request (URL, method, signature, timeouts, headers); fails only when
  // the credentials cannot be had.
  absl::Status Prepare(Handle* handle, const Request& request, Response* response) const;
  absl::StatusOr<Response> Perform(const Request& request);
  absl::StatusOr<Response> PerformOnce(const Request& request);

  const Options options_;
  std::mutex mu_;
  std::vector<HandlePtr> idle_;
};

// Exposed for tests: what the client makes of S3's answers.
namespace internal {
// The text of the first <tag>…</tag> in an XML document, unescaped; empty if absent.
std::string XmlText(absl::string_view xml, absl::string_view tag);
// Every <tag>…</tag>, in order.
std::vector<std::string> XmlTexts(absl::string_view xml, absl::string_view tag);
// The Status for an HTTP answer `http_status` with S3's error document `body`, for `what` (e.g.
// "GET kurt-reports/r1.csv").
absl::Status StatusFromResponse(int http_status, absl::string_view body, absl::string_view what);
// Percent-encodes all but RFC 3986's unreserved characters (and '/' when keep_slash).
std::string UriEncode(absl::string_view s, bool keep_slash);
}  // namespace internal

}  // namespace kurt::s3
