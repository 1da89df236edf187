#include "platform/s3/s3.h"

#include <curl/curl.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "platform/core/log.h"

ABSL_FLAG(std::string, s3_url, "",
          "S3 endpoint, e.g. http://127.0.0.1:25303 (empty: AWS S3 in --s3_region)");
ABSL_FLAG(std::string, s3_bucket, "", "S3 bucket of report artifacts (empty: no S3)");
ABSL_FLAG(std::string, s3_region, "us-east-1", "S3 region (signs requests)");
ABSL_FLAG(std::string, s3_access_key, "",
          "S3 access key (empty: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, with "
          "AWS_SESSION_TOKEN)");
ABSL_FLAG(std::string, s3_secret_key, "", "S3 secret key (never logged)");

namespace kurt::s3 {

// ---------------------------------------------------------------------------------------------
// Requests

struct S3Client::Handle {
  CURL* easy = nullptr;
};

void S3Client::HandleDeleter::operator()(Handle* h) const {
  if (h->easy != nullptr) {
    curl_easy_cleanup(h->easy);
  }
  delete h;
}

struct S3Client::Request {
  const char* method = "GET";
  std::string key;    // empty: the bucket itself
  std::string query;  // already encoded and sorted, e.g. "partNumber=1&uploadId=abc"
  absl::string_view body;
  bool has_body = false;
  bool retry = true;  // idempotent
};

struct S3Client::Response {
  int status = 0;
  std::string body;
  std::string etag;
  int64_t content_length = -1;
  // Body bytes go to `sink` instead of `body` when set (the streaming reader).
  size_t (*sink)(char*, size_t, void*) = nullptr;
  void* sink_arg = nullptr;
  // Fed to an upload.
  absl::string_view upload;
  // Headers and options that must live as long as the transfer.
  curl_slist* headers = nullptr;
  std::string url, userpwd, sigv4, what;

  Response() = default;
  Response(Response&& o) noexcept { *this = std::move(o); }
  Response& operator=(Response&& o) noexcept {
    status = o.status;
    body = std::move(o.body);
    etag = std::move(o.etag);
    content_length = o.content_length;
    what = std::move(o.what);
    std::swap(headers, o.headers);
    return *this;
  }
  ~Response() { curl_slist_free_all(headers); }
};

namespace {

std::once_flag curl_init_once;

size_t CollectBody(char* data, size_t size, size_t n, void* arg) {
  auto* r = static_cast<S3Client::Response*>(arg);
  if (r->sink != nullptr) {
    return r->sink(data, size * n, r->sink_arg);
  }
  // An error document is small; a body we did not ask to stream is bounded too.
  if (r->body.size() + size * n > (size_t{4} << 20)) {
    return 0;
  }
  r->body.append(data, size * n);
  return size * n;
}

size_t CollectHeader(char* data, size_t size, size_t n, void* arg) {
  auto* r = static_cast<S3Client::Response*>(arg);
  absl::string_view line(data, size * n);
  if (absl::StartsWith(line, "HTTP/")) {
    // A new response (after a 100 Continue or a redirect): forget the last one's headers.
    r->etag.clear();
    r->content_length = -1;
    return size * n;
  }
  size_t colon = line.find(':');
  if (colon == absl::string_view::npos) {
    return size * n;
  }
  absl::string_view name = absl::StripAsciiWhitespace(line.substr(0, colon));
  absl::string_view value = absl::StripAsciiWhitespace(line.substr(colon + 1));
  if (absl::EqualsIgnoreCase(name, "etag")) {
    r->etag = std::string(value);
  } else if (absl::EqualsIgnoreCase(name, "content-length")) {
    int64_t v = 0;
    if (absl::SimpleAtoi(value, &v)) {
      r->content_length = v;
    }
  }
  return size * n;
}

size_t FeedUpload(char* buffer, size_t size, size_t n, void* arg) {
  auto* r = static_cast<S3Client::Response*>(arg);
  size_t count = std::min(size * n, r->upload.size());
  std::memcpy(buffer, r->upload.data(), count);
  r->upload.remove_prefix(count);
  return count;
}

int ResponseCode(CURL* e) {
  long code = 0;  // NOLINT(google-runtime-int): libcurl's type
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
  return static_cast<int>(code);
}

bool Retryable(const absl::Status& s) {
  return absl::IsUnavailable(s) || absl::IsDeadlineExceeded(s);
}

absl::Status StatusFromCurl(CURLcode code, const char* error_buffer, absl::string_view what) {
  std::string detail = error_buffer != nullptr && *error_buffer != '\0'
                           ? std::string(error_buffer)
                           : std::string(curl_easy_strerror(code));
  std::string msg = absl::StrCat("S3 ", what, ": ", detail);
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      return absl::DeadlineExceededError(msg);
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return absl::InvalidArgumentError(msg);
    case CURLE_ABORTED_BY_CALLBACK:
    case CURLE_WRITE_ERROR:
      return absl::CancelledError(msg);
    default:
      return absl::UnavailableError(msg);
  }
}

std::string ObjectPath(const Options& o, absl::string_view key) {
  std::string base = o.url;
  if (base.empty()) {
    base = absl::StrCat("https://", o.bucket, ".s3.", o.region, ".amazonaws.com");
  } else {
    while (!base.empty() && base.back() == '/') {
      base.pop_back();
    }
    absl::StrAppend(&base, "/", internal::UriEncode(o.bucket, false));
  }
  if (key.empty()) {
    // The bucket: path-style needs no trailing slash; virtual-hosted the root.
    return o.url.empty() ? absl::StrCat(base, "/") : base;
  }
  return absl::StrCat(base, "/", internal::UriEncode(key, true));
}

std::string XmlEscape(absl::string_view s) {
  return absl::StrReplaceAll(
      s, {{"&", "&amp;"}, {"<", "&lt;"}, {">", "&gt;"}, {"\"", "&quot;"}, {"'", "&apos;"}});
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// internal

namespace internal {

std::vector<std::string> XmlTexts(absl::string_view xml, absl::string_view tag) {
  std::vector<std::string> out;
  const std::string open = absl::StrCat("<", tag, ">");
  const std::string close = absl::StrCat("</", tag, ">");
  size_t pos = 0;
  for (;;) {
    size_t start = xml.find(open, pos);
    if (start == absl::string_view::npos) {
      break;
    }
    start += open.size();
    size_t end = xml.find(close, start);
    if (end == absl::string_view::npos) {
      break;
    }
    out.push_back(absl::StrReplaceAll(xml.substr(start, end - start), {{"&quot;", "\""},
                                                                       {"&apos;", "'"},
                                                                       {"&lt;", "<"},
                                                                       {"&gt;", ">"},
                                                                       {"&#34;", "\""},
                                                                       {"&amp;", "&"}}));
    pos = end + close.size();
  }
  return out;
}

std::string XmlText(absl::string_view xml, absl::string_view tag) {
  std::vector<std::string> all = XmlTexts(xml, tag);
  return all.empty() ? std::string() : std::move(all.front());
}

absl::Status StatusFromResponse(int http_status, absl::string_view body, absl::string_view what) {
  std::string code = XmlText(body, "Code");
  std::string message = XmlText(body, "Message");
  std::string msg = absl::StrCat("S3 ", what, ": HTTP ", http_status);
  if (!code.empty()) {
    absl::StrAppend(&msg, " ", code);
  }
  if (!message.empty()) {
    absl::StrAppend(&msg, ": ", message);
  }
  if (code == "NoSuchBucket") {
    return absl::FailedPreconditionError(
        absl::StrCat(msg, " (create the bucket or correct --s3_bucket)"));
  }
  if (code == "NoSuchKey" || code == "NoSuchUpload" || http_status == 404) {
    return absl::NotFoundError(msg);
  }
  if (code == "InvalidAccessKeyId" || code == "SignatureDoesNotMatch" || code == "ExpiredToken" ||
      code == "InvalidToken") {
    return absl::UnauthenticatedError(
        absl::StrCat(msg, " (check --s3_access_key, --s3_secret_key and --s3_region)"));
  }
  if (http_status == 401 || http_status == 403) {
    return absl::PermissionDeniedError(msg);
  }
  if (code == "SlowDown" || http_status == 429 || http_status == 500 || http_status == 502 ||
      http_status == 503 || http_status == 504) {
    return absl::UnavailableError(msg);
  }
  if (http_status == 507 || code == "EntityTooLarge") {
    return absl::ResourceExhaustedError(msg);
  }
  if (http_status == 409 || http_status == 412) {
    return absl::FailedPreconditionError(msg);
  }
  if (http_status >= 400 && http_status < 500) {
    return absl::InvalidArgumentError(msg);
  }
  return absl::InternalError(msg);
}

std::string UriEncode(absl::string_view s, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ||
        (keep_slash && c == '/')) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

}  // namespace internal

// ---------------------------------------------------------------------------------------------
// Options

bool Options::Configured() { return !absl::GetFlag(FLAGS_s3_bucket).empty(); }

absl::StatusOr<Options> Options::FromFlags() {
  Options o;
  o.url = absl::GetFlag(FLAGS_s3_url);
  o.bucket = absl::GetFlag(FLAGS_s3_bucket);
  o.region = absl::GetFlag(FLAGS_s3_region);
  if (o.bucket.empty()) {
    return absl::InvalidArgumentError("--s3_bucket is empty");
  }
  if (o.region.empty()) {
    return absl::InvalidArgumentError("--s3_region is empty");
  }
  if (!o.url.empty() && !absl::StartsWith(o.url, "http://") &&
      !absl::StartsWith(o.url, "https://")) {
    return absl::InvalidArgumentError(
        absl::StrCat("--s3_url '", o.url, "' is not an http:// or https:// URL"));
  }
  o.credentials.access_key = absl::GetFlag(FLAGS_s3_access_key);
  o.credentials.secret_key = absl::GetFlag(FLAGS_s3_secret_key);
  if (o.credentials.access_key.empty() != o.credentials.secret_key.empty()) {
    return absl::InvalidArgumentError(
        "--s3_access_key and --s3_secret_key go together: set both or neither");
  }
  if (o.credentials.access_key.empty()) {
    const char* id = std::getenv("AWS_ACCESS_KEY_ID");
    const char* secret = std::getenv("AWS_SECRET_ACCESS_KEY");
    const char* token = std::getenv("AWS_SESSION_TOKEN");
    if (id == nullptr || *id == '\0' || secret == nullptr || *secret == '\0') {
      o.provider = ContainerCredentials::FromEnvironment();
      if (o.provider != nullptr) {
        return o;
      }
      return absl::InvalidArgumentError(
          "no S3 credentials: set --s3_access_key and --s3_secret_key, or AWS_ACCESS_KEY_ID and "
          "AWS_SECRET_ACCESS_KEY (with AWS_SESSION_TOKEN for temporary ones), or run with a pod "
          "role (EKS Pod Identity sets AWS_CONTAINER_CREDENTIALS_FULL_URI)");
    }
    o.credentials.access_key = id;
    o.credentials.secret_key = secret;
    o.credentials.session_token = token != nullptr ? token : "";
  }
  return o;
}

// ---------------------------------------------------------------------------------------------
// ContainerCredentials

ContainerCredentials::ContainerCredentials(std::string url, std::string token_file)
    : url_(std::move(url)), token_file_(std::move(token_file)) {
  std::call_once(curl_init_once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::shared_ptr<ContainerCredentials> ContainerCredentials::FromEnvironment() {
  const char* url = std::getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
  if (url == nullptr || *url == '\0') {
    return nullptr;
  }
  const char* token_file = std::getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
  return std::make_shared<ContainerCredentials>(url, token_file != nullptr ? token_file : "");
}

absl::StatusOr<Credentials> ContainerCredentials::Get() {
  std::lock_guard<std::mutex> lock(mu_);
  if (absl::Now() < refresh_at_) {
    return cached_;
  }
  absl::Time expiration;
  absl::StatusOr<Credentials> fresh = Fetch(&expiration);
  if (!fresh.ok()) {
    // Credentials that have not expired yet still serve while the endpoint is away.
    if (!cached_.access_key.empty() && absl::Now() < refresh_at_ + absl::Minutes(4)) {
      return cached_;
    }
    return fresh.status();
  }
  cached_ = *std::move(fresh);
  refresh_at_ = expiration - absl::Minutes(5);
  return cached_;
}

absl::StatusOr<Credentials> ContainerCredentials::Fetch(absl::Time* expiration) {
  std::string token;
  if (!token_file_.empty()) {
    std::FILE* f = std::fopen(token_file_.c_str(), "re");
    if (f == nullptr) {
      return absl::FailedPreconditionError(absl::StrCat("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE ",
                                                        token_file_, ": ", std::strerror(errno)));
    }
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) {
      token.append(buf, n);
    }
    std::fclose(f);
    token = std::string(absl::StripAsciiWhitespace(token));
  }
  CURL* e = curl_easy_init();
  if (e == nullptr) {
    return absl::ResourceExhaustedError("curl_easy_init failed");
  }
  S3Client::Response response;
  char error_buffer[CURL_ERROR_SIZE] = {0};
  curl_slist* headers = nullptr;
  if (!token.empty()) {
    headers = curl_slist_append(headers, absl::StrCat("Authorization: ", token).c_str());
  }
  curl_easy_setopt(e, CURLOPT_URL, url_.c_str());
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 5000L);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, CollectBody);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &response);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, error_buffer);
  CURLcode code = curl_easy_perform(e);
  response.status = ResponseCode(e);
  curl_easy_cleanup(e);
  curl_slist_free_all(headers);
  const std::string what = absl::StrCat("container credentials from ", url_);
  if (code != CURLE_OK) {
    return StatusFromCurl(code, error_buffer, what);
  }
  if (response.status != 200) {
    return absl::UnavailableError(absl::StrCat(what, ": HTTP ", response.status));
  }
  google::protobuf::Struct doc;
  if (!google::protobuf::util::JsonStringToMessage(response.body, &doc).ok()) {
    return absl::InternalError(absl::StrCat(what, ": the answer is not JSON"));
  }
  auto field = [&](const char* name) -> std::string {
    auto it = doc.fields().find(name);
    return it == doc.fields().end() ? std::string() : it->second.string_value();
  };
  Credentials c{field("AccessKeyId"), field("SecretAccessKey"), field("Token")};
  std::string error;
  if (c.access_key.empty() || c.secret_key.empty() ||
      !absl::ParseTime(absl::RFC3339_full, field("Expiration"), expiration, &error)) {
    return absl::InternalError(absl::StrCat(
        what, ": the answer lacks AccessKeyId, SecretAccessKey or a valid Expiration"));
  }
  return c;
}

// ---------------------------------------------------------------------------------------------
// S3Client

S3Client::S3Client(Options options) : options_(std::move(options)) {
  std::call_once(curl_init_once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

S3Client::~S3Client() = default;

S3Client::HandlePtr S3Client::AcquireHandle() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      HandlePtr h = std::move(idle_.back());
      idle_.pop_back();
      return h;
    }
  }
  HandlePtr h(new Handle);
  h->easy = curl_easy_init();
  return h;
}

void S3Client::ReleaseHandle(HandlePtr handle) {
  if (handle == nullptr || handle->easy == nullptr) {
    return;
  }
  // Keeps the connection; forgets this request's options.
  curl_easy_reset(handle->easy);
  std::lock_guard<std::mutex> lock(mu_);
  if (idle_.size() < 16) {
    idle_.push_back(std::move(handle));
  }
}

absl::Status S3Client::Prepare(Handle* handle, const Request& request, Response* response) const {
  CURL* e = handle->easy;
  Credentials credentials = options_.credentials;
  if (options_.provider != nullptr) {
    absl::StatusOr<Credentials> fresh = options_.provider->Get();
    if (!fresh.ok()) {
      return fresh.status();
    }
    credentials = *std::move(fresh);
  }
  response->url = ObjectPath(options_, request.key);
  if (!request.query.empty()) {
    absl::StrAppend(&response->url, "?", request.query);
  }
  response->what = absl::StrCat(request.method, " ", options_.bucket,
                                request.key.empty() ? "" : "/", request.key);
  response->userpwd = absl::StrCat(credentials.access_key, ":", credentials.secret_key);
  response->sigv4 = absl::StrCat("aws:amz:", options_.region, ":s3");

  curl_easy_setopt(e, CURLOPT_URL, response->url.c_str());
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_USERPWD, response->userpwd.c_str());
  curl_easy_setopt(e, CURLOPT_AWS_SIGV4, response->sigv4.c_str());
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(absl::ToInt64Milliseconds(options_.connect_timeout)));
  curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl_easy_setopt(
      e, CURLOPT_LOW_SPEED_TIME,
      static_cast<long>(std::max<int64_t>(1, absl::ToInt64Seconds(options_.stall_timeout))));
  curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 256L * 1024);
  curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, 512L * 1024);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, CollectBody);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, response);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, CollectHeader);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, response);

  // The payload is not hashed into the signature (S3's UNSIGNED-PAYLOAD): TLS protects it in
  // transit, and hashing every part would cost a pass over each byte.
  response->headers =
      curl_slist_append(response->headers, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
  // (No "Expect:" header to turn 100-continue off: libcurl 7.88 would sign the empty header it
  // then leaves out, and every upload would fail its signature.)
  if (!credentials.session_token.empty()) {
    response->headers = curl_slist_append(
        response->headers,
        absl::StrCat("x-amz-security-token: ", credentials.session_token).c_str());
  }

  const absl::string_view method = request.method;
  if (method == "HEAD") {
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  } else if (method == "PUT" || (method == "POST" && request.has_body)) {
    response->upload = request.body;
    curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(e, CURLOPT_READFUNCTION, FeedUpload);
    curl_easy_setopt(e, CURLOPT_READDATA, response);
    curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    if (method == "POST") {
      curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "POST");
    }
  } else if (method == "POST") {
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, 0L);
  } else if (method != "GET") {
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, request.method);
  }
  if (method == "POST") {
    // libcurl would add a form content type.
    response->headers = curl_slist_append(response->headers, "Content-Type: application/xml");
  }
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, response->headers);
  return absl::OkStatus();
}

absl::StatusOr<S3Client::Response> S3Client::PerformOnce(const Request& request) {
  HandlePtr handle = AcquireHandle();
  if (handle->easy == nullptr) {
    return absl::ResourceExhaustedError("curl_easy_init failed");
  }
  Response response;
  if (absl::Status s = Prepare(handle.get(), request, &response); !s.ok()) {
    return s;
  }
  char error_buffer[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(handle->easy, CURLOPT_ERRORBUFFER, error_buffer);
  CURLcode code = curl_easy_perform(handle->easy);
  if (code != CURLE_OK) {
    // The connection may be broken: do not reuse this handle.
    return StatusFromCurl(code, error_buffer, response.what);
  }
  response.status = ResponseCode(handle->easy);
  ReleaseHandle(std::move(handle));
  if (response.status < 200 || response.status > 299) {
    return internal::StatusFromResponse(response.status, response.body, response.what);
  }
  return response;
}

absl::StatusOr<S3Client::Response> S3Client::Perform(const Request& request) {
  absl::Duration backoff = options_.retry_backoff;
  for (int attempt = 1;; ++attempt) {
    absl::StatusOr<Response> r = PerformOnce(request);
    if (r.ok() || !request.retry || !Retryable(r.status()) || attempt >= options_.max_attempts) {
      return r;
    }
    KURT_LOG(kWarn, "S3 request failed; retrying", {"attempt", attempt},
             {"error", r.status().ToString()});
    absl::SleepFor(backoff);
    backoff *= 2;
  }
}

absl::Status S3Client::CheckBucket() {
  Request r;
  r.method = "HEAD";
  absl::StatusOr<Response> resp = Perform(r);
  if (!resp.ok() && absl::IsNotFound(resp.status())) {
    // HEAD has no body, so no NoSuchBucket code: say what the 404 means here.
    return absl::FailedPreconditionError(absl::StrCat("S3 bucket ", options_.bucket,
                                                      " does not exist at ",
                                                      options_.url.empty() ? "AWS" : options_.url));
  }
  return resp.status();
}

absl::Status S3Client::PutObject(absl::string_view key, absl::string_view data) {
  Request r;
  r.method = "PUT";
  r.key = std::string(key);
  r.body = data;
  r.has_body = true;
  return Perform(r).status();
}

absl::StatusOr<int64_t> S3Client::HeadObject(absl::string_view key) {
  Request r;
  r.method = "HEAD";
  r.key = std::string(key);
  absl::StatusOr<Response> resp = Perform(r);
  if (!resp.ok()) {
    return resp.status();
  }
  return resp->content_length;
}

absl::Status S3Client::DeleteObject(absl::string_view key) {
  Request r;
  r.method = "DELETE";
  r.key = std::string(key);
  absl::StatusOr<Response> resp = Perform(r);
  if (!resp.ok() && absl::IsNotFound(resp.status())) {
    return absl::OkStatus();
  }
  return resp.status();
}

absl::StatusOr<std::string> S3Client::InitiateMultipartUpload(absl::string_view key) {
  Request r;
  r.method = "POST";
  r.key = std::string(key);
  r.query = "uploads=";
  // Retrying could start a second upload that nobody aborts.
  r.retry = false;
  absl::StatusOr<Response> resp = Perform(r);
  if (!resp.ok()) {
    return resp.status();
  }
  std::string id = internal::XmlText(resp->body, "UploadId");
  if (id.empty()) {
    return absl::InternalError(absl::StrCat("S3 ", resp->what, "?uploads: no UploadId in '",
                                            resp->body.substr(0, 200), "'"));
  }
  return id;
}

absl::StatusOr<std::string> S3Client::UploadPart(absl::string_view key, absl::string_view upload_id,
                                                 int part_number, absl::string_view data) {
  Request r;
  r.method = "PUT";
  r.key = std::string(key);
  r.query =
      absl::StrCat("partNumber=", part_number, "&uploadId=", internal::UriEncode(upload_id, false));
  r.body = data;
  r.has_body = true;
  absl::StatusOr<Response> resp = Perform(r);
  if (!resp.ok()) {
    return resp.status();
  }
  if (resp->etag.empty()) {
    return absl::InternalError(
        absl::StrCat("S3 ", resp->what, " part ", part_number, ": no ETag in the answer"));
  }
  return resp->etag;
}

absl::Status S3Client::CompleteMultipartUpload(absl::string_view key, absl::string_view upload_id,
                                               const std::vector<std::string>& etags) {
  std::string xml = "<CompleteMultipartUpload>";
  for (size_t i = 0; i < etags.size(); ++i) {
    absl::StrAppend(&xml, "<Part><PartNumber>", i + 1, "</PartNumber><ETag>", XmlEscape(etags[i]),
                    "</ETag></Part>");
  }
  absl::StrAppend(&xml, "</CompleteMultipartUpload>");
  Request r;
  r.method = "POST";
  r.key = std::string(key);
  r.query = absl::StrCat("uploadId=", internal::UriEncode(upload_id, false));
  r.body = xml;
  r.has_body = true;
  absl::StatusOr<Response> resp = Perform(r);
  if (!resp.ok()) {
    return resp.status();
  }
  // S3 may answer 200 and still fail the completion, in the body.
  if (absl::StrContains(resp->body, "<Error>")) {
    return internal::StatusFromResponse(500, resp->body, resp->what);
  }
  return absl::OkStatus();
}

absl::Status S3Client::AbortMultipartUpload(absl::string_view key, absl::string_view upload_id) {
  Request r;
  r.method = "DELETE";
  r.key = std::string(key);
  r.query = absl::StrCat("uploadId=", internal::UriEncode(upload_id, false));
  absl::StatusOr<Response> resp = Perform(r);
  if (!resp.ok() && absl::IsNotFound(resp.status())) {
    return absl::OkStatus();
  }
  return resp.status();
}

absl::StatusOr<std::vector<UploadInfo>> S3Client::ListMultipartUploads(absl::string_view prefix) {
  Request r;
  r.method = "GET";
  r.query = absl::StrCat("prefix=", internal::UriEncode(prefix, false), "&uploads=");
  absl::StatusOr<Response> resp = Perform(r);
  if (!resp.ok()) {
    return resp.status();
  }
  std::vector<UploadInfo> out;
  for (const std::string& upload : internal::XmlTexts(resp->body, "Upload")) {
    UploadInfo info{internal::XmlText(upload, "Key"), internal::XmlText(upload, "UploadId")};
    absl::Time initiated;
    std::string error;
    if (absl::ParseTime(absl::RFC3339_full, internal::XmlText(upload, "Initiated"), &initiated,
                        &error)) {
      info.initiated = initiated;
    }
    out.push_back(std::move(info));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The multipart writer

namespace {

class MultipartWriter : public ObjectWriter {
 public:
  MultipartWriter(S3Client* client, std::string key)
      : client_(client), key_(std::move(key)), part_bytes_(client->options().part_bytes) {
    buffer_.reserve(part_bytes_);
  }

  ~MultipartWriter() override {
    if (!committed_ && !upload_id_.empty()) {
      if (absl::Status s = client_->AbortMultipartUpload(key_, upload_id_); !s.ok()) {
        // A bucket lifecycle rule (AbortIncompleteMultipartUpload) removes it later.
        KURT_LOG(kWarn, "S3 multipart upload left behind", {"key", key_}, {"error", s.ToString()});
      }
    }
  }

  absl::Status Append(absl::string_view data) override {
    if (!status_.ok()) {
      return status_;
    }
    while (!data.empty()) {
      // A full part goes up only once more bytes follow it: an object of exactly one part is
      // then one PUT, and the last part is never empty.
      if (buffer_.size() == part_bytes_) {
        if (absl::Status s = SendPart(); !s.ok()) {
          return s;
        }
      }
      size_t take = std::min(data.size(), part_bytes_ - buffer_.size());
      buffer_.append(data.data(), take);
      data.remove_prefix(take);
    }
    return absl::OkStatus();
  }

  absl::StatusOr<int64_t> Commit() override {
    if (!status_.ok()) {
      return status_;
    }
    if (upload_id_.empty()) {
      // Fits in one part: one PUT, no multipart upload at all.
      status_ = client_->PutObject(key_, buffer_);
      if (!status_.ok()) {
        return status_;
      }
      committed_ = true;
      return static_cast<int64_t>(buffer_.size());
    }
    if (!buffer_.empty()) {
      if (absl::Status s = SendPart(); !s.ok()) {
        return s;
      }
    }
    status_ = client_->CompleteMultipartUpload(key_, upload_id_, etags_);
    if (!status_.ok()) {
      return status_;
    }
    committed_ = true;
    return size_;
  }

 private:
  absl::Status SendPart() {
    if (upload_id_.empty()) {
      absl::StatusOr<std::string> id = client_->InitiateMultipartUpload(key_);
      if (!id.ok()) {
        status_ = id.status();
        return status_;
      }
      upload_id_ = *std::move(id);
    }
    absl::StatusOr<std::string> etag =
        client_->UploadPart(key_, upload_id_, static_cast<int>(etags_.size()) + 1, buffer_);
    if (!etag.ok()) {
      status_ = etag.status();
      return status_;
    }
    etags_.push_back(*std::move(etag));
    size_ += static_cast<int64_t>(buffer_.size());
    buffer_.clear();
    return absl::OkStatus();
  }

  S3Client* const client_;
  const std::string key_;
  const size_t part_bytes_;
  std::string buffer_;
  std::string upload_id_;
  std::vector<std::string> etags_;
  int64_t size_ = 0;
  bool committed_ = false;
  absl::Status status_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<ObjectWriter>> S3Client::NewWriter(absl::string_view key) {
  if (key.empty()) {
    return absl::InvalidArgumentError("empty S3 key");
  }
  if (options_.part_bytes < (size_t{5} << 20)) {
    return absl::InvalidArgumentError(
        absl::StrCat("S3 part size ", options_.part_bytes, " is below S3's minimum of 5 MiB"));
  }
  return std::make_unique<MultipartWriter>(this, std::string(key));
}

// ---------------------------------------------------------------------------------------------
// The streaming reader: libcurl's multi interface, driven only while Read wants bytes, so the
// body stays in the socket (and the server waits) until the caller is ready for it.

class StreamingReader : public ObjectReader {
 public:
  // Bytes buffered beyond what Read asked for (fewer pauses of the transfer, bounded memory).
  static constexpr size_t kReadAhead = size_t{1} << 20;

  StreamingReader(S3Client* client, std::string key) : client_(client), key_(std::move(key)) {}

  ~StreamingReader() override {
    // (The connection belongs to the multi handle's cache and closes with it.)
    if (multi_ != nullptr) {
      curl_multi_remove_handle(multi_, handle_->easy);
      curl_multi_cleanup(multi_);
    }
  }

  // Sends the GET and waits for the status line and headers.
  absl::Status Start() {
    handle_ = client_->AcquireHandle();
    if (handle_->easy == nullptr) {
      return absl::ResourceExhaustedError("curl_easy_init failed");
    }
    S3Client::Request r;
    r.method = "GET";
    r.key = key_;
    if (absl::Status s = client_->Prepare(handle_.get(), r, &response_); !s.ok()) {
      return s;
    }
    response_.sink = &StreamingReader::Sink;
    response_.sink_arg = this;
    curl_easy_setopt(handle_->easy, CURLOPT_ERRORBUFFER, error_buffer_);
    multi_ = curl_multi_init();
    curl_multi_add_handle(multi_, handle_->easy);
    while (!done_ && response_.status == 0) {
      Drive();
      int status = ResponseCode(handle_->easy);
      if (status >= 200) {
        response_.status = status;
      }
    }
    if (done_ && result_ != CURLE_OK) {
      return StatusFromCurl(result_, error_buffer_, response_.what);
    }
    if (response_.status < 200 || response_.status > 299) {
      // The error document: read it whole (it is small).
      error_body_ = true;
      if (paused_) {
        paused_ = false;
        curl_easy_pause(handle_->easy, CURLPAUSE_CONT);
      }
      while (!done_) {
        Drive();
      }
      return internal::StatusFromResponse(response_.status, buffer_, response_.what);
    }
    size_ = response_.content_length;
    return absl::OkStatus();
  }

  int64_t size() const override { return size_; }

  absl::Status Read(size_t max, std::string* out) override {
    out->clear();
    if (max == 0) {
      return absl::OkStatus();
    }
    want_ = max;
    while (buffer_.size() - offset_ < max && !done_) {
      if (paused_) {
        paused_ = false;
        // May call Sink at once with the data it held back.
        curl_easy_pause(handle_->easy, CURLPAUSE_CONT);
        if (buffer_.size() - offset_ >= max) {
          break;
        }
      }
      Drive();
    }
    if (done_ && result_ != CURLE_OK) {
      return StatusFromCurl(result_, error_buffer_, response_.what);
    }
    size_t n = std::min(max, buffer_.size() - offset_);
    out->assign(buffer_, offset_, n);
    offset_ += n;
    received_ += static_cast<int64_t>(n);
    if (offset_ == buffer_.size()) {
      buffer_.clear();
      offset_ = 0;
    }
    if (n == 0 && size_ >= 0 && received_ != size_) {
      return absl::DataLossError(absl::StrCat("S3 ", response_.what, ": the body ended after ",
                                              received_, " of ", size_, " bytes"));
    }
    return absl::OkStatus();
  }

 private:
  static size_t Sink(char* data, size_t n, void* arg) {
    auto* self = static_cast<StreamingReader*>(arg);
    if (!self->error_body_ &&
        self->buffer_.size() - self->offset_ >= std::max(self->want_, kReadAhead)) {
      // Enough for the current Read and a little ahead: hold the rest in the socket.
      self->paused_ = true;
      return CURL_WRITEFUNC_PAUSE;
    }
    if (self->error_body_ && self->buffer_.size() > 65536) {
      return n;  // an error document is small; ignore the tail of a large one
    }
    self->buffer_.append(data, n);
    return n;
  }

  void Drive() {
    int running = 0;
    curl_multi_perform(multi_, &running);
    int queued = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi_, &queued)) {
      if (msg->msg == CURLMSG_DONE) {
        done_ = true;
        result_ = msg->data.result;
      }
    }
    if (!done_ && running > 0 && !paused_) {
      curl_multi_poll(multi_, nullptr, 0, 1000, nullptr);
    }
  }

  S3Client* const client_;
  const std::string key_;
  S3Client::HandlePtr handle_;
  S3Client::Response response_;
  CURLM* multi_ = nullptr;
  char error_buffer_[CURL_ERROR_SIZE] = {0};
  std::string buffer_;
  size_t offset_ = 0;
  size_t want_ = 1;
  int64_t size_ = -1;
  int64_t received_ = 0;
  bool paused_ = false;
  bool done_ = false;
  bool error_body_ = false;
  CURLcode result_ = CURLE_OK;
};

absl::StatusOr<std::unique_ptr<ObjectReader>> S3Client::GetObject(absl::string_view key) {
  if (key.empty()) {
    return absl::InvalidArgumentError("empty S3 key");
  }
  absl::Duration backoff = options_.retry_backoff;
  for (int attempt = 1;; ++attempt) {
    auto reader = std::make_unique<StreamingReader>(this, std::string(key));
    absl::Status s = reader->Start();
    if (s.ok()) {
      return std::unique_ptr<ObjectReader>(std::move(reader));
    }
    if (!Retryable(s) || attempt >= options_.max_attempts) {
      return s;
    }
    KURT_LOG(kWarn, "S3 GET failed; retrying", {"attempt", attempt}, {"error", s.ToString()});
    absl::SleepFor(backoff);
    backoff *= 2;
  }
}

}  // namespace kurt::s3
