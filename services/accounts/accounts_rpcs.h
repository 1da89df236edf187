// The RPCs of kurt.accounts.v1.AccountsService as plain functions: accounts, the caller's API keys,
// and the edge's Authenticate. Raw keys are never stored or logged.
//
// Who may call what, checked here and not only by the gRPC adapter:
// - CreateAccount: the operator's admin token (Authorization: Bearer), or anyone with open
//   sign-up; no account is involved.
// - CreateKey, ListKeys, RevokeKey: the caller's account (x-kurt-account-id), trusted only with
//   the edge's shared secret (x-kurt-edge-secret) when one is configured.
// - Authenticate: the edge only (its secret), PERMISSION_DENIED otherwise.
//
// Lives as long as the module that owns it; thread-safe (the store and cache are).
#pragma once

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kurt/accounts/v1/accounts.pb.h"
#include "platform/grpc/edge_trust.h"
#include "platform/grpc/handler.h"
#include "services/accounts/accounts_store.h"
#include "services/accounts/key_cache.h"

namespace kurt::accounts {

struct AccountsRpcsOptions {
  // Bearer token that may create accounts; empty: only open sign-up can.
  std::string admin_token;
  bool open_signup = false;
  // Shared with the edge; empty disables the check (local development).
  std::string edge_secret;
};

class AccountsRpcs {
 public:
  // `store` and `cache` outlive the RPCs.
  AccountsRpcs(AccountsRpcsOptions options, AccountsStore* store, KeyCache* cache);

  absl::StatusOr<v1::CreateAccountResponse> CreateAccount(const platform::Caller& caller,
                                                          const v1::CreateAccountRequest& request);
  absl::StatusOr<v1::CreateKeyResponse> CreateKey(const platform::Caller& caller,
                                                  const v1::CreateKeyRequest& request);
  absl::StatusOr<v1::ListKeysResponse> ListKeys(const platform::Caller& caller,
                                                const v1::ListKeysRequest& request);
  absl::StatusOr<v1::ApiKey> RevokeKey(const platform::Caller& caller,
                                       const v1::RevokeKeyRequest& request);
  absl::StatusOr<v1::AuthenticateResponse> Authenticate(const platform::Caller& caller,
                                                        const v1::AuthenticateRequest& request);

 private:
  // The caller's account, when the call comes from the edge; UNAUTHENTICATED otherwise.
  absl::StatusOr<std::string> AccountOf(const platform::Caller& caller) const;
  absl::Status CheckAdmin(const platform::Caller& caller) const;
  absl::StatusOr<std::pair<KeyRecord, std::string>> NewKey(const std::string& account_id,
                                                           const std::string& name) const;

  const AccountsRpcsOptions options_;
  const platform::EdgeSecret edge_secret_;  // options_.edge_secret, hashed once
  AccountsStore* store_;
  KeyCache* cache_;
};

}  // namespace kurt::accounts
