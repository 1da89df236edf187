#include "platform/redis/redis.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace kurt::redis {
namespace {

TEST(RedisOptionsTest, ParsesUrls) {
  auto o = Options::FromUrl("redis://10.1.2.3:16379/2");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->host, "10.1.2.3");
  EXPECT_EQ(o->port, 16379);
  EXPECT_EQ(o->db, 2);
  EXPECT_EQ(Options::FromUrl("redis://cache")->port, 6379);
}

TEST(RedisOptionsTest, RejectsBadUrlsNamingThem) {
  auto o = Options::FromUrl("http://x:1");
  EXPECT_EQ(o.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(o.status().message().find("http://x:1"), std::string::npos);
  EXPECT_FALSE(Options::FromUrl("redis://x:99999").ok());
  EXPECT_FALSE(Options::FromUrl("redis://x:1/zero").ok());
}

// A port on loopback that nothing listens on.
int ClosedPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

TEST(RedisClientTest, DownServerFailsFastWithUnavailable) {
  Options o;
  o.port = ClosedPort();
  RedisClient client(o);
  auto first = client.Get("k");
  EXPECT_EQ(first.status().code(), absl::StatusCode::kUnavailable);
  // The circuit is open now: the next calls do not even try to connect.
  absl::Time start = absl::Now();
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(client.Set("k", "v", absl::Seconds(1)).code(), absl::StatusCode::kUnavailable);
  }
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(50));
}

}  // namespace
}  // namespace kurt::redis
