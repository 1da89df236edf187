#include "platform/grpc/edge_trust.h"

#include <array>
#include <functional>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "grpc/grpc_security.h"
#include "openssl/crypto.h"
#include "platform/core/config.h"
#include "platform/core/sha256.h"

ABSL_FLAG(std::string, edge_secret, "",
          "Secret shared by the edge and the services: the edge sends it as x-kurt-edge-secret, "
          "and a gRPC service refuses a call carrying x-kurt-account-id without it (empty: no "
          "check, local development only)");

namespace kurt::platform {
namespace {

// Calls the check lets through whatever the secret: no account named, or health and reflection.
bool NeedsNoSecret(absl::string_view method, bool has_account_id) {
  return !has_account_id || absl::StartsWith(method, "/grpc.health.v1.Health/") ||
         absl::StartsWith(method, "/grpc.reflection.");
}

absl::Status Refused() {
  return absl::UnauthenticatedError(
      absl::StrCat(kAccountIdMetadata, " is trusted only from the edge: the call needs the edge's ",
                   kEdgeSecretMetadata, " or its client certificate (", kEdgeIdentity, ")"));
}

absl::Status CheckEdgeSecretFlag() {
  return CheckEdgeSecretConfigured(absl::GetFlag(FLAGS_edge_secret), absl::GetFlag(FLAGS_dev_mode));
}

// Every binary linking this file has --edge_secret, and checks it at start.
[[maybe_unused]] const bool kEdgeSecretChecked = RegisterStartupCheck(&CheckEdgeSecretFlag);

absl::string_view View(const grpc_slice& slice) {
  return absl::string_view(reinterpret_cast<const char*>(GRPC_SLICE_START_PTR(slice)),
                           GRPC_SLICE_LENGTH(slice));
}

// The C twin of PeerHasIdentity (tls.h), for the processor, which sees the C auth context.
bool PeerIsEdge(const grpc_auth_context* context) {
  if (context == nullptr || !grpc_auth_context_peer_is_authenticated(context)) {
    return false;
  }
  for (const char* name : {GRPC_X509_SAN_PROPERTY_NAME, GRPC_X509_CN_PROPERTY_NAME}) {
    grpc_auth_property_iterator it = grpc_auth_context_find_properties_by_name(context, name);
    bool any = false;
    while (const grpc_auth_property* p = grpc_auth_property_iterator_next(&it)) {
      any = true;
      if (absl::string_view(p->value, p->value_length) == kEdgeIdentity) {
        return true;
      }
    }
    if (any) {
      return false;  // the common name counts only when there is no alternative name
    }
  }
  return false;
}

// Lives as long as the credentials (gRPC calls Destroy); Process runs on gRPC's threads, and
// only reads.
struct EdgeTrustProcessor {
  EdgeTrustRule rule;
  bool tls;  // client certificates are verified
  std::function<void()> on_refused;

  static void Process(void* state, grpc_auth_context* context, const grpc_metadata* md,
                      size_t num_md, grpc_process_auth_metadata_done_cb done, void* user_data) {
    const auto* self = static_cast<const EdgeTrustProcessor*>(state);
    absl::string_view method;
    EdgeTrustHeaders headers;
    for (size_t i = 0; i < num_md; ++i) {
      absl::string_view key = View(md[i].key);
      if (key == ":path") {
        method = View(md[i].value);
      } else {
        headers.See(key, View(md[i].value));
      }
    }
    EdgeTrustVerdict verdict = self->rule.Judge(method, headers, self->tls && PeerIsEdge(context));
    // A secret header that proved nothing goes, so that handlers may read its presence as proof.
    std::vector<grpc_metadata> consumed;
    if (verdict.drop_secrets) {
      for (size_t i = 0; i < num_md; ++i) {
        if (View(md[i].key) == kEdgeSecretMetadata) {
          consumed.push_back(md[i]);
        }
      }
    }
    const absl::Status& status = verdict.status;
    if (status.ok()) {
      done(user_data, consumed.data(), consumed.size(), nullptr, 0, GRPC_STATUS_OK, nullptr);
      return;
    }
    if (self->on_refused) {
      self->on_refused();
    }
    std::string message(status.message());
    done(user_data, nullptr, 0, nullptr, 0, static_cast<grpc_status_code>(status.code()),
         message.c_str());
  }

  static void Destroy(void* state) { delete static_cast<EdgeTrustProcessor*>(state); }
};

// InsecureServerCredentials() refuses an auth metadata processor, but gRPC core applies one to
// plaintext ports too: this binds the port through the C API with the processor attached, on a
// plaintext or a mutual-TLS port.
class EdgeTrustingCredentials : public grpc::ServerCredentials {
 public:
  EdgeTrustingCredentials(std::string expected, std::optional<TlsConfig> tls,
                          std::function<void()> on_refused)
      : expected_(std::move(expected)), tls_(std::move(tls)), on_refused_(std::move(on_refused)) {}

  void SetAuthMetadataProcessor(
      const std::shared_ptr<grpc::AuthMetadataProcessor>& /*processor*/) override {
    // This class exists to install its own processor; another one would undo it.
    abort();
  }

 private:
  int AddPortToServer(const std::string& addr, grpc_server* server) override {
    grpc_server_credentials* creds = nullptr;
    if (tls_) {
      grpc_ssl_pem_key_cert_pair pair{tls_->key_pem.c_str(), tls_->cert_pem.c_str()};
      creds = grpc_ssl_server_credentials_create_ex(
          tls_->ca_pem.c_str(), &pair, 1,
          GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY, nullptr);
    } else {
      creds = grpc_insecure_server_credentials_create();
    }
    grpc_auth_metadata_processor processor;
    processor.process = &EdgeTrustProcessor::Process;
    processor.destroy = &EdgeTrustProcessor::Destroy;
    processor.state = new EdgeTrustProcessor{EdgeTrustRule(expected_, tls_.has_value()),
                                             tls_.has_value(), on_refused_};
    grpc_server_credentials_set_auth_metadata_processor(creds, processor);
    int port = grpc_server_add_http2_port(server, addr.c_str(), creds);
    grpc_server_credentials_release(creds);
    return port;
  }

  const std::string expected_;
  const std::optional<TlsConfig> tls_;
  const std::function<void()> on_refused_;
};

}  // namespace

EdgeSecret::EdgeSecret(absl::string_view secret)
    : empty_(secret.empty()), digest_(Sha256(secret)) {}

bool EdgeSecret::Matches(absl::string_view presented) const {
  if (empty_) {
    return true;
  }
  const Sha256Digest a = Sha256(presented);
  return CRYPTO_memcmp(a.data(), digest_.data(), a.size()) == 0;
}

absl::Status CheckEdgeSecretConfigured(absl::string_view secret, bool dev_mode) {
  if (!secret.empty() || dev_mode) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      "--edge_secret (KURT_EDGE_SECRET) is empty: any caller that reaches a service could act as "
      "any account. Give every binary the same secret, or pass --dev_mode (KURT_DEV_MODE=true) "
      "for local development");
}

absl::Status CheckEdgeTrust(absl::string_view method, bool has_account_id, bool from_edge) {
  if (NeedsNoSecret(method, has_account_id) || from_edge) {
    return absl::OkStatus();
  }
  return Refused();
}

absl::Status CheckEdgeTrust(absl::string_view method, bool has_account_id,
                            absl::string_view presented_secret, const EdgeSecret& expected) {
  return CheckEdgeTrust(method, has_account_id, expected.Matches(presented_secret));
}

std::shared_ptr<grpc::ServerCredentials> EdgeTrustingServerCredentials(
    std::string expected_secret, std::optional<TlsConfig> tls, std::function<void()> on_refused) {
  return std::make_shared<EdgeTrustingCredentials>(std::move(expected_secret), std::move(tls),
                                                   std::move(on_refused));
}

}  // namespace kurt::platform
