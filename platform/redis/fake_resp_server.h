// A scripted server that speaks Redis's wire protocol (RESP) on 127.0.0.1, for unit tests of the
// client's protocol logic (Sentinel discovery, AUTH, READONLY) that need a server to answer in a
// chosen way at a chosen moment. Tests against real Redis servers live in tests/.
//
// A handler turns each command into a raw RESP reply, given the connection's number (0, 1, ... in
// order of acceptance, for per-connection state such as AUTH); it runs on the connection's thread
// and may be called from several threads at once. Stop() closes the listener and every connection,
// as a killed server would. Header-only, for tests.
#pragma once

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace kurt::redis::testing {

// RESP replies.
inline std::string Ok() { return "+OK\r\n"; }
inline std::string Error(const std::string& text) { return "-" + text + "\r\n"; }
inline std::string Bulk(const std::string& s) {
  return absl::StrCat("$", s.size(), "\r\n", s, "\r\n");
}
inline std::string NilBulk() { return "$-1\r\n"; }
inline std::string NilArray() { return "*-1\r\n"; }
inline std::string BulkArray(const std::vector<std::string>& items) {
  std::string out = absl::StrCat("*", items.size(), "\r\n");
  for (const std::string& s : items) {
    out += Bulk(s);
  }
  return out;
}
// ROLE's answer of a master with no replicas, and of a replica.
inline std::string MasterRole() { return "*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n"; }
inline std::string ReplicaRole(int master_port) {
  return absl::StrCat("*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:", master_port,
                      "\r\n$9\r\nconnected\r\n:0\r\n");
}

class FakeRespServer {
 public:
  using Handler = std::function<std::string(int connection, const std::vector<std::string>& argv)>;

  explicit FakeRespServer(Handler handler) : handler_(std::move(handler)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::listen(listen_fd_, 64) != 0 ||
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      std::abort();
    }
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }

  ~FakeRespServer() { Stop(); }

  FakeRespServer(const FakeRespServer&) = delete;
  FakeRespServer& operator=(const FakeRespServer&) = delete;

  int port() const { return port_; }

  // Every command received so far, in order of arrival.
  std::vector<std::vector<std::string>> commands() {
    std::lock_guard<std::mutex> lock(mu_);
    return commands_;
  }

  void Stop() {
    if (stopped_.exchange(true)) {
      return;
    }
    acceptor_.join();
    ::close(listen_fd_);
    std::vector<std::thread> threads;
    {
      std::lock_guard<std::mutex> lock(mu_);
      threads.swap(connections_);
    }
    for (std::thread& t : threads) {
      t.join();
    }
  }

 private:
  void AcceptLoop() {
    while (!stopped_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) {
        continue;
      }
      int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) {
        continue;
      }
      std::lock_guard<std::mutex> lock(mu_);
      const int connection = static_cast<int>(connections_.size());
      connections_.emplace_back([this, fd, connection] { Serve(fd, connection); });
    }
  }

  // Parses one command (an array of bulk strings) from the front of `buf`; nullopt if incomplete.
  static std::optional<std::vector<std::string>> Parse(std::string& buf) {
    size_t pos = 0;
    auto line = [&](std::string* out) {
      size_t end = buf.find("\r\n", pos);
      if (end == std::string::npos) {
        return false;
      }
      *out = buf.substr(pos, end - pos);
      pos = end + 2;
      return true;
    };
    std::string header;
    int n = 0;
    if (!line(&header) || header.empty() || header[0] != '*' ||
        !absl::SimpleAtoi(header.substr(1), &n)) {
      return std::nullopt;
    }
    std::vector<std::string> argv;
    for (int i = 0; i < n; ++i) {
      std::string len_line;
      size_t len = 0;
      if (!line(&len_line) || len_line.empty() || !absl::SimpleAtoi(len_line.substr(1), &len) ||
          buf.size() < pos + len + 2) {
        return std::nullopt;
      }
      argv.push_back(buf.substr(pos, len));
      pos += len + 2;
    }
    buf.erase(0, pos);
    return argv;
  }

  void Serve(int fd, int connection) {
    std::string buf;
    char chunk[4096];
    while (!stopped_) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) {
        continue;
      }
      ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
      if (n <= 0) {
        break;
      }
      buf.append(chunk, static_cast<size_t>(n));
      while (auto argv = Parse(buf)) {
        {
          std::lock_guard<std::mutex> lock(mu_);
          commands_.push_back(*argv);
        }
        std::string reply = handler_(connection, *argv);
        if (::send(fd, reply.data(), reply.size(), MSG_NOSIGNAL) < 0) {
          break;
        }
      }
    }
    ::close(fd);
  }

  const Handler handler_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopped_{false};
  std::thread acceptor_;
  std::mutex mu_;  // guards commands_, connections_
  std::vector<std::vector<std::string>> commands_;
  std::vector<std::thread> connections_;
};

}  // namespace kurt::redis::testing
