// kurt.accounts.v1.AccountsService over gRPC: each RPC is served by platform::Handle with the
// function of the same name in AccountsRpcs (accounts_rpcs.h says who may call what).
// CreateAccount, SignUp, the session RPCs and Authenticate act for no account (the admin token,
// the password, the tokens and the edge's secret are checked inside); the key RPCs act for the
// caller's account.
//
// Lives as long as the module that owns it; gRPC's threads call it.
#pragma once

#include "kurt/accounts/v1/accounts.grpc.pb.h"
#include "services/accounts/accounts_rpcs.h"

namespace kurt::accounts {

class AccountsService final : public v1::AccountsService::Service {
 public:
  // `rpcs` outlives the service.
  explicit AccountsService(AccountsRpcs* rpcs) : rpcs_(*rpcs) {}

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
  grpc::Status SignUp(grpc::ServerContext* context, const v1::SignUpRequest* request,
                      v1::SignUpResponse* response) override;
  grpc::Status CreateSession(grpc::ServerContext* context, const v1::CreateSessionRequest* request,
                             v1::Session* response) override;
  grpc::Status RefreshSession(grpc::ServerContext* context,
                              const v1::RefreshSessionRequest* request,
                              v1::Session* response) override;
  grpc::Status DeleteSession(grpc::ServerContext* context, const v1::DeleteSessionRequest* request,
                             v1::DeleteSessionResponse* response) override;

 private:
  AccountsRpcs& rpcs_;
};

}  // namespace kurt::accounts
