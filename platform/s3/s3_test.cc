// What the S3 client makes of S3's answers and of its flags; the client against a real server is
// tested in tests/s3 (label ha).
#include "platform/s3/s3.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <thread>

#include "absl/flags/flag.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kurt::s3 {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(S3Xml, ReadsTextsAndUnescapes) {
  const std::string xml =
      "<?xml version=\"1.0\"?><ListMultipartUploadsResult><Upload><Key>a&amp;b</Key>"
      "<UploadId>u1</UploadId></Upload><Upload><Key>c</Key><UploadId>u2</UploadId></Upload>"
      "</ListMultipartUploadsResult>";
  std::vector<std::string> uploads = internal::XmlTexts(xml, "Upload");
  ASSERT_EQ(uploads.size(), 2u);
  EXPECT_EQ(internal::XmlText(uploads[0], "Key"), "a&b");
  EXPECT_EQ(internal::XmlText(uploads[1], "UploadId"), "u2");
  EXPECT_EQ(internal::XmlText(xml, "Missing"), "");
  EXPECT_EQ(internal::XmlText("<ETag>&quot;abc&quot;</ETag>", "ETag"), "\"abc\"");
}

TEST(S3Errors, MapToStatusCodesNamingTheObject) {
  auto err = [](absl::string_view code, absl::string_view message) {
    return absl::StrCat("<Error><Code>", code, "</Code><Message>", message, "</Message></Error>");
  };
  absl::Status s = internal::StatusFromResponse(
      404, err("NoSuchKey", "The specified key does not exist."), "GET b/k.csv");
  EXPECT_TRUE(absl::IsNotFound(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr("GET b/k.csv"));
  EXPECT_THAT(s.message(), HasSubstr("NoSuchKey"));

  s = internal::StatusFromResponse(404, err("NoSuchBucket", "x"), "PUT b/k");
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr("--s3_bucket"));

  s = internal::StatusFromResponse(403, err("SignatureDoesNotMatch", "x"), "PUT b/k");
  EXPECT_TRUE(absl::IsUnauthenticated(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr("--s3_secret_key"));

  EXPECT_TRUE(absl::IsPermissionDenied(
      internal::StatusFromResponse(403, err("AccessDenied", "Access Denied"), "GET b/k")));
  EXPECT_TRUE(absl::IsUnavailable(internal::StatusFromResponse(503, err("SlowDown", ""), "PUT")));
  EXPECT_TRUE(absl::IsUnavailable(internal::StatusFromResponse(500, "", "PUT")));
  EXPECT_TRUE(absl::IsNotFound(internal::StatusFromResponse(404, "", "HEAD b/k")));
  EXPECT_TRUE(absl::IsInvalidArgument(
      internal::StatusFromResponse(400, err("EntityTooSmall", "x"), "POST b/k")));
  EXPECT_TRUE(absl::IsResourceExhausted(internal::StatusFromResponse(507, "", "PUT b/k")));
}

TEST(S3Uri, EncodesAllButUnreserved) {
  EXPECT_EQ(internal::UriEncode("r-1_a.csv~", false), "r-1_a.csv~");
  EXPECT_EQ(internal::UriEncode("a b/c+d", true), "a%20b/c%2Bd");
  EXPECT_EQ(internal::UriEncode("a/b", false), "a%2Fb");
}

class S3FlagsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::SetFlag(&FLAGS_s3_url, "http://127.0.0.1:1");
    absl::SetFlag(&FLAGS_s3_bucket, "b");
    absl::SetFlag(&FLAGS_s3_region, "us-east-1");
    absl::SetFlag(&FLAGS_s3_access_key, "");
    absl::SetFlag(&FLAGS_s3_secret_key, "");
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_SESSION_TOKEN");
  }
  void TearDown() override { SetUp(); }
};

TEST_F(S3FlagsTest, KeysFromFlagsWin) {
  absl::SetFlag(&FLAGS_s3_access_key, "AK");
  absl::SetFlag(&FLAGS_s3_secret_key, "SK");
  setenv("AWS_ACCESS_KEY_ID", "env", 1);
  setenv("AWS_SECRET_ACCESS_KEY", "env", 1);
  absl::StatusOr<Options> o = Options::FromFlags();
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->credentials.access_key, "AK");
  EXPECT_EQ(o->credentials.secret_key, "SK");
  EXPECT_EQ(o->credentials.session_token, "");
}

TEST_F(S3FlagsTest, TemporaryCredentialsFromTheAwsEnvironment) {
  setenv("AWS_ACCESS_KEY_ID", "ASIA1", 1);
  setenv("AWS_SECRET_ACCESS_KEY", "secret", 1);
  setenv("AWS_SESSION_TOKEN", "token", 1);
  absl::StatusOr<Options> o = Options::FromFlags();
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->credentials.access_key, "ASIA1");
  EXPECT_EQ(o->credentials.session_token, "token");
}

TEST_F(S3FlagsTest, RefusesWhatCannotWorkNamingTheFlag) {
  absl::Status s = Options::FromFlags().status();
  EXPECT_TRUE(absl::IsInvalidArgument(s));
  EXPECT_THAT(s.message(), HasSubstr("AWS_ACCESS_KEY_ID"));

  absl::SetFlag(&FLAGS_s3_access_key, "AK");
  s = Options::FromFlags().status();
  EXPECT_THAT(s.message(), HasSubstr("--s3_secret_key"));

  absl::SetFlag(&FLAGS_s3_secret_key, "topsecret");
  absl::SetFlag(&FLAGS_s3_url, "127.0.0.1:25303");
  s = Options::FromFlags().status();
  EXPECT_THAT(s.message(), HasSubstr("--s3_url"));
  EXPECT_THAT(s.message(), Not(HasSubstr("topsecret")));

  absl::SetFlag(&FLAGS_s3_url, "http://127.0.0.1:25303");
  absl::SetFlag(&FLAGS_s3_bucket, "");
  EXPECT_FALSE(Options::Configured());
  EXPECT_THAT(Options::FromFlags().status().message(), HasSubstr("--s3_bucket"));
}

TEST(S3Client, RefusesPartsBelowTheMinimum) {
  Options o;
  o.url = "http://127.0.0.1:1";
  o.bucket = "b";
  o.part_bytes = 1 << 20;
  S3Client client(o);
  EXPECT_TRUE(absl::IsInvalidArgument(client.NewWriter("k").status()));
}

TEST(S3Client, UnreachableServerIsUnavailableAndNamesTheObject) {
  Options o;
  o.url = "http://127.0.0.1:1";  // nothing listens on port 1
  o.bucket = "b";
  o.max_attempts = 1;
  o.credentials = {"AK", "secret-never-shown", ""};
  S3Client client(o);
  absl::Status s = client.PutObject("k.csv", "x");
  EXPECT_TRUE(absl::IsUnavailable(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr("PUT b/k.csv"));
  EXPECT_THAT(s.message(), Not(HasSubstr("secret-never-shown")));
  s = client.GetObject("k.csv").status();
  EXPECT_TRUE(absl::IsUnavailable(s)) << s;
}

// A container credentials endpoint on loopback: answers each GET with `body`, and records the
// Authorization header of the last one.
class FakeCredentialsEndpoint {
 public:
  explicit FakeCredentialsEndpoint(std::string body) : body_(std::move(body)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      ADD_FAILURE() << "bind: " << std::strerror(errno);
    }
    socklen_t len = sizeof(addr);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    ::listen(fd_, 8);
    thread_ = std::thread([this] { Serve(); });
  }
  ~FakeCredentialsEndpoint() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  std::string url() const { return absl::StrCat("http://127.0.0.1:", port_, "/v1/credentials"); }
  int requests() const { return requests_; }
  std::string authorization() {
    std::lock_guard<std::mutex> lock(mu_);
    return authorization_;
  }

 private:
  void Serve() {
    for (;;) {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) {
        return;
      }
      std::string request;
      char buf[4096];
      while (request.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::read(c, buf, sizeof(buf));
        if (n <= 0) {
          break;
        }
        request.append(buf, static_cast<size_t>(n));
      }
      size_t at = request.find("Authorization: ");
      {
        std::lock_guard<std::mutex> lock(mu_);
        authorization_ = at == std::string::npos
                             ? ""
                             : request.substr(at + 15, request.find("\r\n", at) - at - 15);
      }
      ++requests_;
      std::string answer = absl::StrCat(
          "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
          "Content-Length: ",
          body_.size(), "\r\nConnection: close\r\n\r\n", body_);
      (void)::write(c, answer.data(), answer.size());
      ::close(c);
    }
  }

  const std::string body_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<int> requests_{0};
  std::mutex mu_;
  std::string authorization_;
  std::thread thread_;
};

TEST(ContainerCredentials, FetchesThePodsRoleWithTheTokenAndCachesUntilNearExpiry) {
  const std::string expiration =
      absl::FormatTime(absl::RFC3339_sec, absl::Now() + absl::Hours(1), absl::UTCTimeZone());
  FakeCredentialsEndpoint endpoint(
      absl::StrCat(R"({"AccessKeyId":"ASIAPOD","SecretAccessKey":"podsecret","Token":"podtoken",)",
                   R"("AccountId":"123456789012","Expiration":")", expiration, R"("})"));
  const std::string token_file = absl::StrCat(::testing::TempDir(), "/eks-pod-identity-token");
  std::ofstream(token_file) << "the-projected-token\n";
  setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", endpoint.url().c_str(), 1);
  setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", token_file.c_str(), 1);
  std::shared_ptr<ContainerCredentials> provider = ContainerCredentials::FromEnvironment();
  unsetenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
  unsetenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
  ASSERT_NE(provider, nullptr);

  absl::StatusOr<Credentials> c = provider->Get();
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->access_key, "ASIAPOD");
  EXPECT_EQ(c->secret_key, "podsecret");
  EXPECT_EQ(c->session_token, "podtoken");
  EXPECT_EQ(endpoint.authorization(), "the-projected-token");
  ASSERT_TRUE(provider->Get().ok());
  EXPECT_EQ(endpoint.requests(), 1) << "fresh credentials are not fetched again";
}

TEST(ContainerCredentials, ExpiringCredentialsAreFetchedAgain) {
  const std::string soon =
      absl::FormatTime(absl::RFC3339_sec, absl::Now() + absl::Minutes(2), absl::UTCTimeZone());
  FakeCredentialsEndpoint endpoint(absl::StrCat(
      R"({"AccessKeyId":"A","SecretAccessKey":"S","Token":"T","Expiration":")", soon, R"("})"));
  ContainerCredentials provider(endpoint.url(), "");
  ASSERT_TRUE(provider.Get().ok());
  ASSERT_TRUE(provider.Get().ok());
  EXPECT_EQ(endpoint.requests(), 2);
}

TEST(ContainerCredentials, ABadAnswerIsAnErrorNamingTheEndpoint) {
  FakeCredentialsEndpoint endpoint(R"({"Code":"Failure"})");
  ContainerCredentials provider(endpoint.url(), "");
  absl::Status s = provider.Get().status();
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr(endpoint.url()));
  ContainerCredentials missing_token(endpoint.url(), "/nonexistent/token");
  EXPECT_THAT(missing_token.Get().status().message(),
              HasSubstr("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"));
}

TEST_F(S3FlagsTest, ThePodsRoleWhenNoKeysAreGiven) {
  setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://169.254.170.23/v1/credentials", 1);
  absl::StatusOr<Options> o = Options::FromFlags();
  unsetenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_NE(o->provider, nullptr);
}

}  // namespace
}  // namespace kurt::s3
