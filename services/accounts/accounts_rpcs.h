// The RPCs of kurt.accounts.v1.AccountsService as plain functions: accounts, sign-up and sessions,
// the caller's API keys, and the edge's Authenticate. Raw keys, tokens and passwords are never
// stored or logged.
//
// Sessions: a sign-in makes a session, a session token (an API key that expires and names its
// session, so that Authenticate and every cache serve both alike) and a refresh token. A refresh
// spends its token and makes the next pair; a spent token presented again later than
// `refresh_reuse_grace` after its spending ends the session (someone else had it). Sign-out ends
// the session.
//
// Who may call what, checked here and not only by the gRPC adapter:
// - CreateAccount and SignUp: the operator's admin token (Authorization: Bearer), or anyone with
//   open sign-up; no account is involved.
// - CreateSession, RefreshSession, DeleteSession: anyone; they check the password or token.
// - CreateKey, ListKeys, RevokeKey: the caller's account (x-kurt-account-id), trusted only with
//   the edge's shared secret (x-kurt-edge-secret) when one is configured.
// - Authenticate: the edge only (its secret), PERMISSION_DENIED otherwise.
//
// Lives as long as the module that owns it; thread-safe (the store and cache are).
#pragma once

#include <functional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kurt/accounts/v1/accounts.pb.h"
#include "platform/grpc/edge_trust.h"
#include "platform/grpc/handler.h"
#include "services/accounts/accounts_store.h"
#include "services/accounts/key_cache.h"
#include "services/accounts/signin_throttle.h"
#include "services/common/password_hasher.h"

namespace kurt::accounts {

struct AccountsRpcsOptions {
  // Bearer token that may create accounts; empty: only open sign-up can.
  std::string admin_token;
  bool open_signup = false;
  // Shared with the edge; empty disables the check (local development).
  std::string edge_secret;
  absl::Duration session_token_ttl = absl::Minutes(15);
  absl::Duration refresh_token_ttl = absl::Hours(24 * 30);
  // A spent refresh token presented again this soon after is a race between a person's own tabs:
  // refused, but the session lives.
  absl::Duration refresh_reuse_grace = absl::Seconds(10);
};

class AccountsRpcs {
 public:
  // `store`, `cache`, `passwords` and `throttle` outlive the RPCs.
  AccountsRpcs(AccountsRpcsOptions options, AccountsStore* store, KeyCache* cache,
               PasswordHasher* passwords, SignInThrottle* throttle,
               std::function<absl::Time()> clock = absl::Now);

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
  absl::StatusOr<v1::SignUpResponse> SignUp(const platform::Caller& caller,
                                            const v1::SignUpRequest& request);
  absl::StatusOr<v1::Session> CreateSession(const platform::Caller& caller,
                                            const v1::CreateSessionRequest& request);
  absl::StatusOr<v1::Session> RefreshSession(const platform::Caller& caller,
                                             const v1::RefreshSessionRequest& request);
  absl::StatusOr<v1::DeleteSessionResponse> DeleteSession(const platform::Caller& caller,
                                                          const v1::DeleteSessionRequest& request);

 private:
  // The caller's account, when the call comes from the edge; UNAUTHENTICATED otherwise.
  absl::StatusOr<std::string> AccountOf(const platform::Caller& caller) const;
  absl::Status CheckAdmin(const platform::Caller& caller) const;
  absl::StatusOr<std::pair<KeyRecord, std::string>> NewKey(const std::string& account_id,
                                                           const std::string& name) const;
  // A session's next session token and refresh token (and the Session to answer with).
  absl::StatusOr<std::pair<KeyRecord, RefreshRecord>> NewTokens(const std::string& account_id,
                                                                const std::string& session_id,
                                                                const std::string& email,
                                                                v1::Session* shown) const;
  // A new session of `user` with its first tokens (and the Session to answer with); not stored.
  absl::StatusOr<NewSession> MakeSession(const UserRecord& user, v1::Session* shown) const;
  // The key named by `Authorization: Bearer`, checked; UNAUTHENTICATED otherwise.
  absl::StatusOr<KeyRecord> BearerKey(const platform::Caller& caller) const;
  // Revokes the session's tokens, in the store and in the cache.
  absl::Status EndSession(const std::string& session_id);

  const AccountsRpcsOptions options_;
  const platform::EdgeSecret edge_secret_;  // options_.edge_secret, hashed once
  AccountsStore* store_;
  KeyCache* cache_;
  PasswordHasher* passwords_;
  SignInThrottle* throttle_;
  const std::function<absl::Time()> clock_;
};

}  // namespace kurt::accounts
