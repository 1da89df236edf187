// The end-to-end fixture: real test upstreams on a real gRPC server, and the real edge on a free
// port in the same process, serving the production API plus the test-only kurt.testing.v1.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "edge/edge_server.h"
#include "gtest/gtest.h"
#include "tests/edge/echo_service.h"
#include "tests/support/free_port.h"
#include "tests/support/http_client.h"

namespace kurt::edge::testing {

using kurt::testing::Fetch;
using kurt::testing::HttpConnection;
using kurt::testing::Reply;

inline EdgeServerConfig TestConfig(int upstream_port, int down_port) {
  EdgeServerConfig c;
  c.http.port = 0;
  c.http.threads = 2;
  c.http.max_body_bytes = 64 << 10;
  c.http.max_header_bytes = 8 << 10;
  c.http.max_header_count = 32;
  c.http.read_timeout = absl::Seconds(1);
  c.http.idle_timeout = absl::Seconds(5);
  c.edge.cache_entries = 1000;
  c.edge.cached_hits.hold_timeout = absl::Seconds(1);
  c.edge.sse_first_flush = absl::Milliseconds(200);
  c.edge.sse_keepalive = absl::Milliseconds(300);
  c.extra_descriptor_sets = {KURT_TESTING_DESCRIPTOR_SET};
  c.upstreams = {absl::StrCat("kurt.testing.v1.EchoService=127.0.0.1:", upstream_port),
                 absl::StrCat("kurt.links.v1.LinksService=127.0.0.1:", upstream_port)};
  if (down_port > 0) {
    c.upstreams.push_back(absl::StrCat("kurt.testing.v1.DownService=127.0.0.1:", down_port));
  }
  c.default_upstream_host = "";  // never reach a stack that may run on this machine
  return c;
}

class EdgeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    upstream_ = new TestUpstream();
    absl::StatusOr<std::unique_ptr<EdgeServer>> s =
        EdgeServer::Start(TestConfig(upstream_->port(), kurt::testing::FreePort()));
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = s->release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    delete upstream_;
    upstream_ = nullptr;
  }

  static int port() { return server_->port(); }
  static Reply Get(const std::string& target,
                   const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    return Fetch(port(), "GET", target, headers);
  }
  static Reply Post(const std::string& target, const std::string& body,
                    const std::vector<std::pair<std::string, std::string>>& headers = {
                        {"Content-Type", "application/json"}}) {
    return Fetch(port(), "POST", target, headers, body);
  }

  static inline TestUpstream* upstream_ = nullptr;
  static inline EdgeServer* server_ = nullptr;
};

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << (haystack)

}  // namespace kurt::edge::testing
