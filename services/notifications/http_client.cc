#include "services/notifications/http_client.h"

#include <openssl/ssl.h>

#include "absl/strings/str_cat.h"
#include "boost/asio/connect.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ssl.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "boost/beast/ssl.hpp"

namespace kurt::notifications {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;

namespace {

constexpr size_t kMaxResponseBody = size_t{64} * 1024;

absl::Status NetError(absl::string_view what, const boost::system::error_code& ec) {
  if (ec == beast::error::timeout) {
    return absl::DeadlineExceededError(absl::StrCat(what, ": timed out"));
  }
  return absl::UnavailableError(absl::StrCat(what, ": ", ec.message()));
}

// Runs one asynchronous operation to completion; the stream's deadline bounds it.
template <typename Start>
boost::system::error_code Run(net::io_context& ioc, Start start) {
  boost::system::error_code result = net::error::would_block;
  start([&](boost::system::error_code ec, auto&&...) { result = ec; });
  ioc.restart();
  ioc.run();
  return result;
}

template <typename Stream>
absl::StatusOr<HttpResponse> Exchange(net::io_context& ioc, Stream& stream,
                                      http::request<http::string_body>& req) {
  boost::system::error_code ec =
      Run(ioc, [&](auto handler) { http::async_write(stream, req, handler); });
  if (ec) {
    return NetError("sending the webhook request", ec);
  }
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxResponseBody);
  ec = Run(ioc, [&](auto handler) { http::async_read(stream, buffer, parser, handler); });
  // A body over the limit still tells the status, which is all that matters.
  if (ec && ec != http::error::body_limit) {
    return NetError("reading the webhook response", ec);
  }
  HttpResponse out;
  out.status = static_cast<int>(parser.get().result_int());
  out.body = parser.get().body();
  return out;
}

}  // namespace

absl::StatusOr<HttpResponse> BeastHttpPoster::Post(
    const WebhookUrl& url, const std::vector<net::ip::tcp::endpoint>& endpoints,
    const std::vector<std::pair<std::string, std::string>>& headers, const std::string& body,
    absl::Duration timeout) {
  net::io_context ioc;
  beast::tcp_stream tcp(ioc);
  tcp.expires_after(absl::ToChronoMilliseconds(timeout));
  boost::system::error_code ec = Run(ioc, [&](auto handler) {
    tcp.async_connect(endpoints,
                      [handler](boost::system::error_code e, const auto&) mutable { handler(e); });
  });
  if (ec) {
    return NetError(absl::StrCat("connecting to ", url.host), ec);
  }

  http::request<http::string_body> req{http::verb::post, url.target, 11};
  const bool default_port = url.port == (url.https ? 443 : 80);
  std::string host =
      url.host.find(':') != std::string::npos ? absl::StrCat("[", url.host, "]") : url.host;
  req.set(http::field::host, default_port ? host : absl::StrCat(host, ":", url.port));
  req.set(http::field::user_agent, "kurt-webhooks/1");
  req.set(http::field::content_type, "application/json");
  for (const auto& [k, v] : headers) {
    req.set(k, v);
  }
  req.body() = body;
  req.prepare_payload();
  req.keep_alive(false);

  if (!url.https) {
    return Exchange(ioc, tcp, req);
  }

  ssl::context ctx(ssl::context::tls_client);
  ctx.set_default_verify_paths();
  ctx.set_verify_mode(ssl::verify_peer);
  beast::ssl_stream<beast::tcp_stream> tls(std::move(tcp), ctx);
  tls.set_verify_callback(ssl::host_name_verification(url.host));
  if (!SSL_set_tlsext_host_name(tls.native_handle(), url.host.c_str())) {
    return absl::UnavailableError("TLS: cannot set the server name");
  }
  ec = Run(ioc, [&](auto handler) { tls.async_handshake(ssl::stream_base::client, handler); });
  if (ec) {
    return NetError(absl::StrCat("TLS handshake with ", url.host), ec);
  }
  return Exchange(ioc, tls, req);
}

}  // namespace kurt::notifications
