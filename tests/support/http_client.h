// Test helper: a blocking HTTP/1.1 client over a real socket (Boost.Beast), with a receive
// timeout so that a test never hangs, plus raw-socket access for malformed and slow requests.
// Header-only, so tests that do not link the stack support can use it.
#pragma once

#include <sys/socket.h>
#include <sys/time.h>

#include <cstddef>
#include <exception>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "boost/asio/connect.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/read.hpp"
#include "boost/asio/write.hpp"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/http.hpp"

namespace kurt::testing {

struct Reply {
  unsigned status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::string error;  // set when the exchange failed (connection closed, timeout, ...)

  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

class HttpConnection {
 public:
  explicit HttpConnection(int port, int timeout_ms = 10000) : socket_(ioc_) {
    boost::asio::ip::tcp::endpoint ep(boost::asio::ip::make_address("127.0.0.1"),
                                      static_cast<uint16_t>(port));
    socket_.connect(ep);
    timeval tv{timeout_ms / 1000, static_cast<suseconds_t>(timeout_ms % 1000) * 1000};
    setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }

  Reply Fetch(const std::string& method, const std::string& target,
              const std::vector<std::pair<std::string, std::string>>& headers = {},
              const std::string& body = "") {
    namespace http = boost::beast::http;
    http::request<http::string_body> req;
    req.method_string(method);
    req.target(target);
    req.version(11);
    req.set(http::field::host, "127.0.0.1");
    for (const auto& [k, v] : headers) {
      req.set(k, v);
    }
    if (!body.empty() || method == "POST" || method == "PATCH" || method == "PUT") {
      req.body() = body;
      req.prepare_payload();
    }
    boost::beast::error_code ec;
    http::write(socket_, req, ec);
    if (ec) {
      return Reply{0, {}, "", "write: " + ec.message()};
    }
    return Read(method == "HEAD");
  }

  // `head`: the answer to a HEAD, whose Content-Length announces a body that never comes.
  Reply Read(bool head = false) {
    namespace http = boost::beast::http;
    boost::beast::error_code ec;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 << 20);
    parser.skip(head);
    http::read(socket_, buffer_, parser, ec);
    if (ec) {
      return Reply{0, {}, "", "read: " + ec.message()};
    }
    Reply r;
    r.status = parser.get().result_int();
    for (const auto& f : parser.get()) {
      r.headers[absl::AsciiStrToLower(std::string(f.name_string()))] = std::string(f.value());
    }
    r.body = parser.get().body();
    return r;
  }

  // Raw bytes, for requests Beast would not write.
  bool Send(const std::string& bytes) {
    boost::system::error_code ec;
    boost::asio::write(socket_, boost::asio::buffer(bytes), ec);
    return !ec;
  }

  // Reads until the server closes (or the timeout); returns what arrived.
  std::string ReadToEnd() {
    std::string out(static_cast<const char*>(buffer_.data().data()), buffer_.size());
    buffer_.consume(buffer_.size());
    char buf[4096];
    while (true) {
      boost::system::error_code ec;
      size_t n = socket_.read_some(boost::asio::buffer(buf), ec);
      out.append(buf, n);
      if (ec) {
        break;
      }
    }
    return out;
  }

  void Close() {
    boost::system::error_code ec;
    socket_.close(ec);
  }

 private:
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::socket socket_;
  boost::beast::flat_buffer buffer_;
};

inline Reply Fetch(int port, const std::string& method, const std::string& target,
                   const std::vector<std::pair<std::string, std::string>>& headers = {},
                   const std::string& body = "") {
  HttpConnection c(port);
  return c.Fetch(method, target, headers, body);
}

// GET on a fresh connection that never throws: a refused connection is a Reply with `error` set.
inline Reply Get(int port, const std::string& target, int timeout_ms = 10000) {
  try {
    HttpConnection c(port, timeout_ms);
    return c.Fetch("GET", target);
  } catch (const std::exception& e) {
    return Reply{0, {}, "", e.what()};
  }
}

// Polls http://127.0.0.1:<port>/readyz until it answers 200; false after `timeout`.
inline bool WaitReady(int port, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (Get(port, "/readyz", 2000).status == 200) {
      return true;
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  return false;
}

}  // namespace kurt::testing
