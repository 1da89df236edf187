// kurt.accounts.v1.AccountsService: accounts, the caller's API keys, and the edge's Authenticate.
// The caller of the key RPCs arrives as metadata x-kurt-account-id, trusted only with the edge's
// shared secret (x-kurt-edge-secret) when one is configured. CreateAccount checks the operator's
// admin token (Authorization: Bearer) itself. Raw keys are never stored or logged.
#pragma once

#include <string>

#include "kurt/accounts/v1/accounts.grpc.pb.h"
#include "platform/grpc/edge_trust.h"
#include "services/accounts/accounts_store.h"
#include "services/accounts/key_cache.h"

namespace kurt::accounts {

struct AccountsServiceOptions {
  // Bearer token that may create accounts; empty: only open sign-up can.
  std::string admin_token;
  bool open_signup = false;
  // Shared with the edge; empty disables the check (local development).
  std::string edge_secret;
};

class AccountsService final : public kurt::accounts::v1::AccountsService::Service {
 public:
  // `store` and `cache` outlive the service.
  AccountsService(AccountsServiceOptions options, AccountsStore* store, KeyCache* cache);

  grpc::Status CreateAccount(grpc::ServerContext* context, const v1::CreateAccountRequest* request,
                             v1::CreateAccountResponse* response) override;
  grpc::Status CreateKey(grpc::ServerContext* context, const v1::CreateKeyRequest* request,
                         v1::CreateKeyResponse* response) override;
  grpc::Status ListKeys(grpc::ServerContext* context, const v1::ListKeysRequest* request,
                        v1::ListKeysResponse* response) override;
  grpc::Status RevokeKey(grpc::ServerContext* context, const v1::RevokeKeyRequest* request,
                         v1::ApiKey* response) override;
  grpc::Status Authenticate(grpc::ServerContext* context, const v1::AuthenticateRequest* request,
                            v1::AuthenticateResponse* response) override;

 private:
  absl::StatusOr<std::string> Caller(const grpc::ServerContext& context) const;
  absl::Status CheckAdmin(const grpc::ServerContext& context) const;
  absl::StatusOr<std::pair<KeyRecord, std::string>> NewKey(const std::string& account_id,
                                                           const std::string& name) const;

  const AccountsServiceOptions options_;
  const platform::EdgeSecret edge_secret_;  // options_.edge_secret, hashed once
  AccountsStore* store_;
  KeyCache* cache_;
};

}  // namespace kurt::accounts
