#include "platform/http/admin_http.h"

#include <boost/asio.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "absl/strings/str_cat.h"
#include "platform/core/log.h"

namespace kurt::platform {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;

struct AdminHttpServer::Impl {
  const metrics::Registry* registry;
  std::function<bool()> ready;
  std::function<std::string()> details;
  asio::io_context io{1};
  std::unique_ptr<tcp::acceptor> acceptor;
  std::thread thread;

  http::response<http::string_body> Answer(const http::request<http::string_body>& req) {
    http::response<http::string_body> res{http::status::ok, req.version()};
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    absl::string_view target(req.target().data(), req.target().size());
    target = target.substr(0, target.find('?'));
    if (req.method() != http::verb::get && req.method() != http::verb::head) {
      res.result(http::status::method_not_allowed);
      res.set(http::field::allow, "GET, HEAD");
      res.body() = "only GET\n";
    } else if (target == "/metrics") {
      res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
      res.body() = registry ? registry->Render() : "";
    } else if (target == "/healthz") {
      res.body() = "ok\n";
    } else if (target == "/readyz") {
      bool ok = ready && ready();
      res.result(ok ? http::status::ok : http::status::service_unavailable);
      res.body() = ok ? "ready\n" : "not ready\n";
      if (details) {
        res.body() += details();
      }
    } else {
      res.result(http::status::not_found);
      res.body() = absl::StrCat("no route ", target, "\n");
    }
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    return res;
  }

  asio::awaitable<void> Session(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    try {
      for (;;) {
        stream.expires_after(std::chrono::seconds(30));
        http::request<http::string_body> req;
        co_await http::async_read(stream, buffer, req, asio::use_awaitable);
        auto res = Answer(req);
        bool keep = res.keep_alive();
        co_await http::async_write(stream, res, asio::use_awaitable);
        if (!keep) {
          break;
        }
      }
    } catch (const std::exception&) {
      // The peer went away or timed out: nothing to answer.
    }
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  asio::awaitable<void> Accept() {
    for (;;) {
      tcp::socket socket = co_await acceptor->async_accept(asio::use_awaitable);
      asio::co_spawn(io, Session(std::move(socket)), asio::detached);
    }
  }
};

AdminHttpServer::AdminHttpServer(const metrics::Registry* registry, std::function<bool()> ready,
                                 std::function<std::string()> details)
    : impl_(std::make_unique<Impl>()) {
  impl_->registry = registry;
  impl_->ready = std::move(ready);
  impl_->details = std::move(details);
}

AdminHttpServer::~AdminHttpServer() { Stop(); }

absl::StatusOr<int> AdminHttpServer::Start(const std::string& host, int port) {
  beast::error_code ec;
  auto address = asio::ip::make_address(host, ec);
  if (ec) {
    return absl::InvalidArgumentError(absl::StrCat("bad listen address ", host));
  }
  try {
    impl_->acceptor = std::make_unique<tcp::acceptor>(
        impl_->io, tcp::endpoint(address, static_cast<uint16_t>(port)));
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", host, ":", port, ": ", e.what()));
  }
  int bound = impl_->acceptor->local_endpoint().port();
  asio::co_spawn(
      impl_->io, [this]() { return impl_->Accept(); },
      [](const std::exception_ptr&) { /* acceptor closed on Stop */ });
  impl_->thread = std::thread([this] { impl_->io.run(); });
  return bound;
}

void AdminHttpServer::Stop() {
  if (!impl_ || !impl_->thread.joinable()) {
    return;
  }
  impl_->io.stop();
  impl_->thread.join();
}

}  // namespace kurt::platform
