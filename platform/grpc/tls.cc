#include "platform/grpc/tls.h"

#include <openssl/ssl.h>

#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "boost/asio/buffer.hpp"
#include "boost/asio/ssl/context.hpp"
#include "grpc/grpc_security_constants.h"

ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate (chain) this process presents on its gRPC connections; with --tls_key "
          "and --tls_ca, every gRPC hop is mutual TLS (empty: plaintext, local development)");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");
ABSL_FLAG(std::string, tls_ca, "",
          "PEM certificate of the CA that signs every peer's certificate: servers require a client "
          "certificate it signed, clients verify the server against it");

namespace kurt::platform {
namespace {

absl::StatusOr<std::string> ReadPem(absl::string_view flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, ": cannot read ", path));
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string pem = buffer.str();
  if (!absl::StrContains(pem, "-----BEGIN ")) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, ": ", path, " holds no PEM block"));
  }
  return pem;
}

}  // namespace

TlsFiles TlsFiles::FromFlags() {
  return {absl::GetFlag(FLAGS_tls_cert), absl::GetFlag(FLAGS_tls_key), absl::GetFlag(FLAGS_tls_ca)};
}

absl::StatusOr<std::optional<TlsConfig>> LoadTls(const TlsFiles& files) {
  if (!files.enabled()) {
    return std::nullopt;
  }
  for (auto [flag, value] : {std::pair{"tls_cert", &files.cert}, std::pair{"tls_key", &files.key},
                             std::pair{"tls_ca", &files.ca}}) {
    if (value->empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag,
                       " is empty: mutual TLS needs --tls_cert, --tls_key and --tls_ca "
                       "together (or none of them for plaintext)"));
    }
  }
  TlsConfig tls;
  absl::StatusOr<std::string> pem = ReadPem("tls_cert", files.cert);
  if (!pem.ok()) {
    return pem.status();
  }
  tls.cert_pem = *std::move(pem);
  pem = ReadPem("tls_key", files.key);
  if (!pem.ok()) {
    return pem.status();
  }
  tls.key_pem = *std::move(pem);
  pem = ReadPem("tls_ca", files.ca);
  if (!pem.ok()) {
    return pem.status();
  }
  tls.ca_pem = *std::move(pem);
  return tls;
}

std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials(const std::optional<TlsConfig>& tls) {
  if (!tls) {
    return grpc::InsecureChannelCredentials();
  }
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = tls->ca_pem;
  options.pem_private_key = tls->key_pem;
  options.pem_cert_chain = tls->cert_pem;
  return grpc::SslCredentials(options);
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentialsFromFlags() {
  absl::StatusOr<std::optional<TlsConfig>> tls = LoadTls(TlsFiles::FromFlags());
  if (!tls.ok()) {
    return tls.status();
  }
  return ChannelCredentials(*tls);
}

bool PeerHasIdentity(const grpc::AuthContext& context, absl::string_view identity) {
  if (!context.IsPeerAuthenticated()) {
    return false;
  }
  std::vector<grpc::string_ref> names = context.FindPropertyValues(GRPC_X509_SAN_PROPERTY_NAME);
  if (names.empty()) {
    names = context.FindPropertyValues(GRPC_X509_CN_PROPERTY_NAME);
  }
  for (const grpc::string_ref& name : names) {
    if (absl::string_view(name.data(), name.size()) == identity) {
      return true;
    }
  }
  return false;
}

absl::Status UseMutualTls(boost::asio::ssl::context* context, const TlsConfig& tls, int verify) {
  namespace net = boost::asio;
  auto refused = [](absl::string_view what, const boost::system::error_code& ec) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", ec.message()));
  };
  boost::system::error_code ec;
  if (SSL_CTX_set_min_proto_version(context->native_handle(), TLS1_2_VERSION) != 1) {
    return absl::InternalError("OpenSSL refuses TLS 1.2 as the lowest version");
  }
  if (context->use_certificate_chain(net::buffer(tls.cert_pem), ec); ec) {
    return refused("--tls_cert", ec);
  }
  // OpenSSL checks here that the key is the certificate's ("key values mismatch").
  if (context->use_private_key(net::buffer(tls.key_pem), net::ssl::context::pem, ec); ec) {
    return refused("--tls_key", ec);
  }
  if (context->add_certificate_authority(net::buffer(tls.ca_pem), ec); ec) {
    return refused("--tls_ca", ec);
  }
  if (context->set_verify_mode(verify, ec); ec) {
    return refused("verification", ec);
  }
  return absl::OkStatus();
}

}  // namespace kurt::platform
