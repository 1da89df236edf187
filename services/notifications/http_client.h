// A small HTTP/1.1 client for webhook POSTs (Boost.Beast): one request per connection, to
// addresses the caller has vetted, with one deadline for connect, TLS, write and read; https
// verifies the server's certificate and name against the system's trust store.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "boost/asio/ip/tcp.hpp"
#include "services/notifications/webhook_target.h"

namespace kurt::notifications {

struct HttpResponse {
  int status = 0;
  std::string body;  // at most 64 KiB kept
};

class HttpPoster {
 public:
  virtual ~HttpPoster() = default;
  // POSTs `body` to `url`, connecting to the first of `endpoints` that answers. A response with
  // any status is OK; UNAVAILABLE / DEADLINE_EXCEEDED when no response came.
  virtual absl::StatusOr<HttpResponse> Post(
      const WebhookUrl& url, const std::vector<boost::asio::ip::tcp::endpoint>& endpoints,
      const std::vector<std::pair<std::string, std::string>>& headers, const std::string& body,
      absl::Duration timeout) = 0;
};

class BeastHttpPoster : public HttpPoster {
 public:
  absl::StatusOr<HttpResponse> Post(const WebhookUrl& url,
                                    const std::vector<boost::asio::ip::tcp::endpoint>& endpoints,
                                    const std::vector<std::pair<std::string, std::string>>& headers,
                                    const std::string& body, absl::Duration timeout) override;
};

}  // namespace kurt::notifications
