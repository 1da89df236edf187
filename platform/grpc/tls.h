// Mutual TLS between Kurt's processes: one place that reads the certificate flags (--tls_cert,
// --tls_key, --tls_ca) and builds the server and channel credentials from them. With the flags
// set, a server asks every client for a certificate signed by the CA and refuses a connection
// without one; a client presents its own and checks the server's against the CA and the name it
// dials. With none set, everything is plaintext (local development and the in-process tests).
// A certificate's subject alternative name (or common name) is the service's identity:
// `kurt-edge` is the edge (platform/grpc/edge_trust.h).
//
// Pure functions over files and gRPC's auth context; safe from any thread.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "absl/flags/declare.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "grpcpp/security/auth_context.h"
#include "grpcpp/security/credentials.h"

ABSL_DECLARE_FLAG(std::string, tls_cert);
ABSL_DECLARE_FLAG(std::string, tls_key);
ABSL_DECLARE_FLAG(std::string, tls_ca);

namespace boost::asio::ssl {
class context;
}  // namespace boost::asio::ssl

namespace kurt::platform {

// The identity in the edge's certificate.
inline constexpr absl::string_view kEdgeIdentity = "kurt-edge";

// Where the PEM files are: all three paths, or none (TLS off).
struct TlsFiles {
  std::string cert;  // this process' certificate chain
  std::string key;   // its private key
  std::string ca;    // the CA that signs every peer's certificate
  bool enabled() const { return !cert.empty() || !key.empty() || !ca.empty(); }
  static TlsFiles FromFlags();
};

// The files' contents.
struct TlsConfig {
  std::string cert_pem;
  std::string key_pem;
  std::string ca_pem;
};

// Reads the three files; nullopt when TLS is off. INVALID_ARGUMENT names the flag that is missing
// when only some are set, or the file that cannot be read or holds no PEM block.
absl::StatusOr<std::optional<TlsConfig>> LoadTls(const TlsFiles& files);

// Credentials for channels to Kurt's services: mTLS with `tls`, plaintext without it.
std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials(const std::optional<TlsConfig>& tls);
// The same from the flags (LoadTls's errors).
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentialsFromFlags();

// Whether the peer of a call presented a certificate (verified by the server's CA) whose subject
// alternative name, or common name when it has none, is `identity`.
bool PeerHasIdentity(const grpc::AuthContext& context, absl::string_view identity);

// `tls` in OpenSSL's `context` (Kurt's own HTTP/2 server and the edge's HTTP/2 client), for
// either side of mutual TLS: TLS 1.2 or later, the certificate chain and key presented, peers
// verified against the CA with `verify` (boost::asio::ssl::verify_* flags). INVALID_ARGUMENT naming
// the flag whose PEM does not parse, or when the key is not the certificate's.
absl::Status UseMutualTls(boost::asio::ssl::context* context, const TlsConfig& tls, int verify);

}  // namespace kurt::platform
