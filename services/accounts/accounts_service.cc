#include "services/accounts/accounts_service.h"

#include "platform/grpc/handler.h"

namespace kurt::accounts {

using platform::Access;
using platform::Handle;

grpc::Status AccountsService::CreateAccount(grpc::ServerContext* context,
                                            const v1::CreateAccountRequest* request,
                                            v1::CreateAccountResponse* response) {
  return Handle(context, *request, response, rpcs_, &AccountsRpcs::CreateAccount,
                Access::kAnyCaller);
}

grpc::Status AccountsService::CreateKey(grpc::ServerContext* context,
                                        const v1::CreateKeyRequest* request,
                                        v1::CreateKeyResponse* response) {
  return Handle(context, *request, response, rpcs_, &AccountsRpcs::CreateKey);
}

grpc::Status AccountsService::ListKeys(grpc::ServerContext* context,
                                       const v1::ListKeysRequest* request,
                                       v1::ListKeysResponse* response) {
  return Handle(context, *request, response, rpcs_, &AccountsRpcs::ListKeys);
}

grpc::Status AccountsService::RevokeKey(grpc::ServerContext* context,
                                        const v1::RevokeKeyRequest* request, v1::ApiKey* response) {
  return Handle(context, *request, response, rpcs_, &AccountsRpcs::RevokeKey);
}

grpc::Status AccountsService::Authenticate(grpc::ServerContext* context,
                                           const v1::AuthenticateRequest* request,
                                           v1::AuthenticateResponse* response) {
  return Handle(context, *request, response, rpcs_, &AccountsRpcs::Authenticate,
                Access::kAnyCaller);
}

grpc::Status AccountsService::SignUp(grpc::ServerContext* context, const v1::SignUpRequest* request,
                                     v1::SignUpResponse* response) {
  return Handle(context, *request, response, rpcs_, &AccountsRpcs::SignUp, Access::kAnyCaller);
}

grpc::Status AccountsService::CreateSession(grpc::ServerContext* context,
                                            const v1::CreateSessionRequest* request,
                                            v1::Session* response) {
  return Handle(context, *request, response, rpcs_, &AccountsRpcs::CreateSession,
                Access::kAnyCaller);
}

grpc::Status AccountsService::RefreshSession(grpc::ServerContext* context,
                                             const v1::RefreshSessionRequest* request,
                                             v1::Session* response) {
  return Handle(context, *request, response, rpcs_, &AccountsRpcs::RefreshSession,
                Access::kAnyCaller);
}

grpc::Status AccountsService::DeleteSession(grpc::ServerContext* context,
                                            const v1::DeleteSessionRequest* request,
                                            v1::DeleteSessionResponse* response) {
  return Handle(context, *request, response, rpcs_, &AccountsRpcs::DeleteSession,
                Access::kAnyCaller);
}

}  // namespace kurt::accounts
