#include "services/accounts/accounts_service.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "platform/grpc/edge_trust.h"
#include "platform/grpc/server.h"
#include "platform/core/log.h"
#include "platform/grpc/handler.h"
#include "platform/grpc/pagination.h"
#include "platform/grpc/timestamps.h"
#include "services/accounts/api_key.h"

namespace kurt::accounts {
namespace {

using platform::kEdgeSecretMetadata;
using platform::Metadata;
using platform::SetTimestamp;
using platform::ToGrpcStatus;

constexpr size_t kMaxNameLength = 200;

void ToProto(const KeyRecord& key, v1::ApiKey* out) {
  out->set_id(key.id);
  out->set_prefix(absl::StrCat("kurt_", key.prefix));
  out->set_name(key.name);
  SetTimestamp(key.create_time, out->mutable_create_time());
  if (key.revoke_time) SetTimestamp(*key.revoke_time, out->mutable_revoke_time());
}

absl::Status ValidateName(const std::string& name, bool required) {
  if (required && name.empty()) return absl::InvalidArgumentError("name: required");
  if (name.size() > kMaxNameLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("name: at most ", kMaxNameLength, " characters"));
  }
  return absl::OkStatus();
}

}  // namespace

AccountsService::AccountsService(AccountsServiceOptions options, AccountsStore* store,
                                 KeyCache* cache)
    : options_(std::move(options)),
      edge_secret_(options_.edge_secret),
      store_(store),
      cache_(cache) {}

absl::StatusOr<std::string> AccountsService::Caller(const grpc::ServerContext& context) const {
  if (!edge_secret_.Matches(Metadata(context, kEdgeSecretMetadata))) {
    return absl::UnauthenticatedError("call not from the edge (x-kurt-edge-secret)");
  }
  return platform::CallerAccount(context);
}

absl::Status AccountsService::CheckAdmin(const grpc::ServerContext& context) const {
  if (options_.open_signup) return absl::OkStatus();
  if (options_.admin_token.empty()) {
    return absl::PermissionDeniedError("account creation is disabled (no open sign-up)");
  }
  std::string authorization = Metadata(context, "authorization");
  constexpr absl::string_view kBearer = "Bearer ";
  if (!absl::StartsWith(authorization, kBearer)) {
    return absl::UnauthenticatedError(
        "creating an account needs the admin token: Authorization: Bearer <token>");
  }
  absl::string_view token = absl::string_view(authorization).substr(kBearer.size());
  if (!ConstantTimeEquals(Sha256Hex(token), Sha256Hex(options_.admin_token))) {
    return absl::UnauthenticatedError("wrong admin token");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::pair<KeyRecord, std::string>> AccountsService::NewKey(
    const std::string& account_id, const std::string& name) const {
  absl::StatusOr<NewApiKey> key = GenerateApiKey();
  if (!key.ok()) return key.status();
  absl::StatusOr<std::string> id = RandomHex(8);
  if (!id.ok()) return id.status();
  KeyRecord record;
  record.id = absl::StrCat("key_", *id);
  record.account_id = account_id;
  record.prefix = key->prefix;
  record.secret_hash = key->secret_hash;
  record.name = name;
  return std::make_pair(std::move(record), std::move(key->full_key));
}

grpc::Status AccountsService::CreateAccount(grpc::ServerContext* context,
                                            const v1::CreateAccountRequest* request,
                                            v1::CreateAccountResponse* response) {
  if (absl::Status s = CheckAdmin(*context); !s.ok()) return ToGrpcStatus(s);
  if (absl::Status s = ValidateName(request->name(), true); !s.ok()) return ToGrpcStatus(s);
  absl::StatusOr<std::string> id = RandomHex(8);
  if (!id.ok()) return ToGrpcStatus(id.status());
  AccountRecord account{absl::StrCat("acc_", *id), request->name(), absl::Now()};
  auto key = NewKey(account.id, "first key");
  if (!key.ok()) return ToGrpcStatus(key.status());
  auto created = store_->CreateAccount(account, key->first);
  if (!created.ok()) {
    KURT_LOG(kError, "create account", {"error", created.status().ToString()});
    return ToGrpcStatus(created.status());
  }
  response->mutable_account()->set_id(created->first.id);
  response->mutable_account()->set_name(created->first.name);
  SetTimestamp(created->first.create_time, response->mutable_account()->mutable_create_time());
  ToProto(created->second, response->mutable_key());
  response->set_secret_key(key->second);
  KURT_LOG(kInfo, "account created", {"account", created->first.id},
           {"key_id", created->second.id});
  return grpc::Status::OK;
}

grpc::Status AccountsService::CreateKey(grpc::ServerContext* context,
                                        const v1::CreateKeyRequest* request,
                                        v1::CreateKeyResponse* response) {
  absl::StatusOr<std::string> account = Caller(*context);
  if (!account.ok()) return ToGrpcStatus(account.status());
  if (absl::Status s = ValidateName(request->name(), false); !s.ok()) return ToGrpcStatus(s);
  auto key = NewKey(*account, request->name());
  if (!key.ok()) return ToGrpcStatus(key.status());
  auto created = store_->InsertKey(key->first);
  if (!created.ok()) return ToGrpcStatus(created.status());
  ToProto(*created, response->mutable_key());
  response->set_secret_key(key->second);
  KURT_LOG(kInfo, "key created", {"account", *account}, {"key_id", created->id});
  return grpc::Status::OK;
}

grpc::Status AccountsService::ListKeys(grpc::ServerContext* context, const v1::ListKeysRequest*,
                                       v1::ListKeysResponse* response) {
  absl::StatusOr<std::string> account = Caller(*context);
  if (!account.ok()) return ToGrpcStatus(account.status());
  auto keys = store_->ListKeys(*account);
  if (!keys.ok()) return ToGrpcStatus(keys.status());
  for (const KeyRecord& key : *keys) ToProto(key, response->add_keys());
  return grpc::Status::OK;
}

grpc::Status AccountsService::RevokeKey(grpc::ServerContext* context,
                                        const v1::RevokeKeyRequest* request,
                                        v1::ApiKey* response) {
  absl::StatusOr<std::string> account = Caller(*context);
  if (!account.ok()) return ToGrpcStatus(account.status());
  if (request->id().empty()) return ToGrpcStatus(absl::InvalidArgumentError("id: required"));
  auto revoked = store_->RevokeKey(*account, request->id());
  if (!revoked.ok()) return ToGrpcStatus(revoked.status());
  cache_->Forget(revoked->prefix);
  ToProto(*revoked, response);
  KURT_LOG(kInfo, "key revoked", {"account", *account}, {"key_id", revoked->id});
  return grpc::Status::OK;
}

grpc::Status AccountsService::Authenticate(grpc::ServerContext* context,
                                           const v1::AuthenticateRequest* request,
                                           v1::AuthenticateResponse* response) {
  if (!edge_secret_.Matches(Metadata(*context, kEdgeSecretMetadata))) {
    return ToGrpcStatus(absl::PermissionDeniedError("Authenticate is for the edge only"));
  }
  absl::StatusOr<ParsedApiKey> parsed = ParseApiKey(request->key());
  if (!parsed.ok()) return ToGrpcStatus(absl::UnauthenticatedError("invalid API key"));
  std::optional<KeyRecord> key = cache_->Get(parsed->prefix);
  if (!key) {
    auto found = store_->FindKey(parsed->prefix);
    if (!found.ok()) return ToGrpcStatus(found.status());
    if (!found->has_value()) return ToGrpcStatus(absl::UnauthenticatedError("invalid API key"));
    key = std::move(**found);
    cache_->Put(*key);
  }
  if (!ConstantTimeEquals(Sha256Hex(parsed->secret), key->secret_hash)) {
    return ToGrpcStatus(absl::UnauthenticatedError("invalid API key"));
  }
  if (key->revoke_time) return ToGrpcStatus(absl::UnauthenticatedError("API key revoked"));
  response->set_account_id(key->account_id);
  response->set_key_id(key->id);
  return grpc::Status::OK;
}

}  // namespace kurt::accounts
