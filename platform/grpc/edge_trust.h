// Trusting x-kurt-account-id only from the edge: the edge authenticates the caller and sends the
// account as x-kurt-account-id together with a secret it shares with the services
// (x-kurt-edge-secret, flag --edge_secret). With mutual TLS on (platform/grpc/tls.h), the edge's
// client certificate (identity `kurt-edge`) proves it as well. Every gRPC server
// (platform/grpc/server.h) refuses a call that names an account without one of the two proofs,
// before any handler runs. Which RPCs need an account at all, or only the edge (Access::kEdge in
// platform/grpc/handler.h), is each service's decision.
//
// Pure functions and a credentials factory; safe from any thread.
#pragma once

#include <array>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/flags/declare.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "grpcpp/security/server_credentials.h"
#include "platform/grpc/tls.h"

ABSL_DECLARE_FLAG(std::string, edge_secret);

namespace kurt::platform {

inline constexpr absl::string_view kAccountIdMetadata = "x-kurt-account-id";
inline constexpr absl::string_view kEdgeSecretMetadata = "x-kurt-edge-secret";
// The request id that the edge gives each request, carried from hop to hop and into every log.
inline constexpr absl::string_view kRequestIdMetadata = "x-request-id";
// W3C trace context, carried from hop to hop.
inline constexpr absl::string_view kTraceparentMetadata = "traceparent";

// The edge's secret as the services check it: hashed (SHA-256) once, when it is configured, since
// it is checked on every call. An empty secret disables the check (local development).
class EdgeSecret {
 public:
  explicit EdgeSecret(absl::string_view secret);
  // Whether `presented` is the secret (always, when there is none). `presented` is hashed too and
  // the digests compared with CRYPTO_memcmp, so the time taken says nothing about where they
  // differ or how long the secret is.
  bool Matches(absl::string_view presented) const;

 private:
  bool empty_;
  std::array<unsigned char, 32> digest_;  // SHA-256
};

// The rule for the configured secret: an empty one lets anyone who reaches a service act as any
// account, so it is refused (InvalidArgument naming --edge_secret) unless `dev_mode`. Every binary
// that has --edge_secret applies it at start (a platform::RegisterStartupCheck with --dev_mode).
absl::Status CheckEdgeSecretConfigured(absl::string_view secret, bool dev_mode);

// The rule every server applies to a call to `method` ("/package.Service/Method"): a call that
// carries x-kurt-account-id must come from the edge, else UNAUTHENTICATED. Calls without an account
// (public routes, internal callers, health checks) pass: the service decides whether it needs one.
// Health checks and reflection always pass.
absl::Status CheckEdgeTrust(absl::string_view method, bool has_account_id, bool from_edge);
// The same with the secret as the only proof: the call is the edge's when `presented_secret`
// matches `expected` (always, when none is expected).
absl::Status CheckEdgeTrust(absl::string_view method, bool has_account_id,
                            absl::string_view presented_secret, const EdgeSecret& expected);

// What the rule reads of a call's metadata, gathered one entry at a time (See) by whichever server
// holds it: its x-kurt-edge-secret headers and whether it names an account.
struct EdgeTrustHeaders {
  int secrets = 0;
  absl::string_view secret;  // the last one seen
  bool has_account = false;

  void See(absl::string_view key, absl::string_view value) {
    if (key == kEdgeSecretMetadata) {
      ++secrets;
      secret = value;
    } else if (key == kAccountIdMetadata) {
      has_account = true;
    }
  }
};

// The rule's verdict on one call.
struct EdgeTrustVerdict {
  bool from_edge = false;
  // The call's x-kurt-edge-secret headers proved nothing: they are to be removed, so that handlers
  // may take their presence as proof.
  bool drop_secrets = false;
  absl::Status status;  // OK, or why the call is refused (CheckEdgeTrust)
};

// Who is the edge on a server's calls, given what the server is configured with: the call is the
// edge's when it carries exactly one x-kurt-edge-secret and it is the secret, or (TLS on) when its
// client certificate names kEdgeIdentity; with neither a secret nor TLS configured, every caller
// is believed (local development). One rule for gRPC's server (the credentials below) and Kurt's
// own HTTP/2 server (platform/grpc/h2_server.h).
class EdgeTrustRule {
 public:
  EdgeTrustRule(absl::string_view expected_secret, bool tls)
      : expected_(expected_secret), has_secret_(!expected_secret.empty()), tls_(tls) {}
  // The whole rule for a call to `method` with `headers`, whose client certificate (TLS on) does
  // or does not name kEdgeIdentity.
  EdgeTrustVerdict Judge(absl::string_view method, const EdgeTrustHeaders& headers,
                         bool certificate_names_edge) const {
    EdgeTrustVerdict verdict;
    const bool secret_proves = SecretProves(headers.secrets, headers.secret);
    verdict.from_edge = FromEdge(secret_proves, certificate_names_edge);
    verdict.drop_secrets = headers.secrets > 0 && !secret_proves;
    verdict.status = CheckEdgeTrust(method, headers.has_account, verdict.from_edge);
    return verdict;
  }

 private:
  // Whether the call's secret headers (`count` of them, `secret` one of them) prove the edge.
  bool SecretProves(int count, absl::string_view secret) const {
    return count == 1 && (has_secret_ ? expected_.Matches(secret) : !tls_);
  }
  bool FromEdge(bool secret_proves, bool certificate_names_edge) const {
    return !(has_secret_ || tls_) || secret_proves || (tls_ && certificate_names_edge);
  }

  EdgeSecret expected_;
  bool has_secret_;
  bool tls_;
};

// Server credentials that apply CheckEdgeTrust to every incoming call before interceptors and
// handlers (a gRPC auth metadata processor): plaintext without `tls`, else mutual TLS that
// requires and verifies a client certificate signed by tls->ca_pem. The call is the edge's when it
// carries the right x-kurt-edge-secret (an `expected_secret` is configured) or a client
// certificate naming kEdgeIdentity (TLS on). The processor removes an x-kurt-edge-secret that
// proved nothing, so a handler may take its presence as the proof (Caller::from_edge); with
// neither a secret nor TLS, nothing is checked and the header is left as sent (local development).
// `on_refused` (may be empty) runs for each refused call, on a gRPC thread.
std::shared_ptr<grpc::ServerCredentials> EdgeTrustingServerCredentials(
    std::string expected_secret, std::optional<TlsConfig> tls, std::function<void()> on_refused);

}  // namespace kurt::platform
