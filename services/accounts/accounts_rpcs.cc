#include "services/accounts/accounts_rpcs.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "platform/core/log.h"
#include "platform/core/text.h"
#include "platform/grpc/timestamps.h"
#include "services/accounts/api_key.h"

namespace kurt::accounts {
namespace {

using platform::Caller;
using platform::SetTimestamp;

constexpr size_t kMaxNameLength = 200;
constexpr absl::string_view kAuthorizationMetadata = "authorization";

void ToProto(const KeyRecord& key, v1::ApiKey* out) {
  out->set_id(key.id);
  out->set_prefix(absl::StrCat("kurt_", key.prefix));
  out->set_name(key.name);
  SetTimestamp(key.create_time, out->mutable_create_time());
  if (key.revoke_time) {
    SetTimestamp(*key.revoke_time, out->mutable_revoke_time());
  }
}

// What CreateKey makes: "key_" and 8 random bytes in lower-case hex.
bool IsKeyId(absl::string_view id) {
  return id.size() == 20 && absl::StartsWith(id, "key_") &&
         std::all_of(id.begin() + 4, id.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

absl::Status ValidateName(const std::string& name, bool required) {
  if (required && name.empty()) {
    return absl::InvalidArgumentError("name: required");
  }
  // Characters, as the API's schema and the database count them (protobuf strings are UTF-8).
  if (platform::Utf8Length(name) > kMaxNameLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("name: at most ", kMaxNameLength, " characters"));
  }
  return absl::OkStatus();
}

}  // namespace

AccountsRpcs::AccountsRpcs(AccountsRpcsOptions options, AccountsStore* store, KeyCache* cache)
    : options_(std::move(options)),
      edge_secret_(options_.edge_secret),
      store_(store),
      cache_(cache) {}

absl::StatusOr<std::string> AccountsRpcs::AccountOf(const Caller& caller) const {
  if (!edge_secret_.Matches(caller.Metadata(platform::kEdgeSecretMetadata))) {
    return absl::UnauthenticatedError("call not from the edge (x-kurt-edge-secret)");
  }
  if (absl::Status s = platform::CheckAccess(caller, platform::Access::kAccount); !s.ok()) {
    return s;
  }
  return caller.account_id();
}

absl::Status AccountsRpcs::CheckAdmin(const Caller& caller) const {
  if (options_.open_signup) {
    return absl::OkStatus();
  }
  if (options_.admin_token.empty()) {
    return absl::PermissionDeniedError("account creation is disabled (no open sign-up)");
  }
  const std::string authorization = caller.Metadata(kAuthorizationMetadata);
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

absl::StatusOr<std::pair<KeyRecord, std::string>> AccountsRpcs::NewKey(
    const std::string& account_id, const std::string& name) const {
  absl::StatusOr<NewApiKey> key = GenerateApiKey();
  if (!key.ok()) {
    return key.status();
  }
  absl::StatusOr<std::string> id = RandomHex(8);
  if (!id.ok()) {
    return id.status();
  }
  KeyRecord record;
  record.id = absl::StrCat("key_", *id);
  record.account_id = account_id;
  record.prefix = key->prefix;
  record.secret_hash = key->secret_hash;
  record.name = name;
  return std::make_pair(std::move(record), std::move(key->full_key));
}

absl::StatusOr<v1::CreateAccountResponse> AccountsRpcs::CreateAccount(
    const Caller& caller, const v1::CreateAccountRequest& request) {
  if (absl::Status s = CheckAdmin(caller); !s.ok()) {
    return s;
  }
  if (absl::Status s = ValidateName(request.name(), true); !s.ok()) {
    return s;
  }
  absl::StatusOr<std::string> id = RandomHex(8);
  if (!id.ok()) {
    return id.status();
  }
  AccountRecord account{absl::StrCat("acc_", *id), request.name(), absl::Now()};
  auto key = NewKey(account.id, "first key");
  if (!key.ok()) {
    return key.status();
  }
  auto created = store_->CreateAccount(account, key->first);
  if (!created.ok()) {
    KURT_LOG(kError, "create account", {"error", created.status().ToString()});
    return created.status();
  }
  v1::CreateAccountResponse response;
  response.mutable_account()->set_id(created->first.id);
  response.mutable_account()->set_name(created->first.name);
  SetTimestamp(created->first.create_time, response.mutable_account()->mutable_create_time());
  ToProto(created->second, response.mutable_key());
  response.set_secret_key(key->second);
  KURT_LOG(kInfo, "account created", {"account", created->first.id},
           {"key_id", created->second.id});
  return response;
}

absl::StatusOr<v1::CreateKeyResponse> AccountsRpcs::CreateKey(const Caller& caller,
                                                              const v1::CreateKeyRequest& request) {
  absl::StatusOr<std::string> account = AccountOf(caller);
  if (!account.ok()) {
    return account.status();
  }
  if (absl::Status s = ValidateName(request.name(), false); !s.ok()) {
    return s;
  }
  auto key = NewKey(*account, request.name());
  if (!key.ok()) {
    return key.status();
  }
  auto created = store_->InsertKey(key->first);
  if (!created.ok()) {
    return created.status();
  }
  v1::CreateKeyResponse response;
  ToProto(*created, response.mutable_key());
  response.set_secret_key(key->second);
  KURT_LOG(kInfo, "key created", {"account", *account}, {"key_id", created->id});
  return response;
}

absl::StatusOr<v1::ListKeysResponse> AccountsRpcs::ListKeys(const Caller& caller,
                                                            const v1::ListKeysRequest&) {
  absl::StatusOr<std::string> account = AccountOf(caller);
  if (!account.ok()) {
    return account.status();
  }
  auto keys = store_->ListKeys(*account);
  if (!keys.ok()) {
    return keys.status();
  }
  v1::ListKeysResponse response;
  for (const KeyRecord& key : *keys) {
    ToProto(key, response.add_keys());
  }
  return response;
}

absl::StatusOr<v1::ApiKey> AccountsRpcs::RevokeKey(const Caller& caller,
                                                   const v1::RevokeKeyRequest& request) {
  absl::StatusOr<std::string> account = AccountOf(caller);
  if (!account.ok()) {
    return account.status();
  }
  if (request.id().empty()) {
    return absl::InvalidArgumentError("id: required");
  }
  if (!IsKeyId(request.id())) {
    return absl::InvalidArgumentError("id: not a key id (key_ and 16 hex digits)");
  }
  auto revoked = store_->RevokeKey(*account, request.id());
  if (!revoked.ok()) {
    return revoked.status();
  }
  cache_->Forget(revoked->prefix);
  v1::ApiKey response;
  ToProto(*revoked, &response);
  KURT_LOG(kInfo, "key revoked", {"account", *account}, {"key_id", revoked->id});
  return response;
}

absl::StatusOr<v1::AuthenticateResponse> AccountsRpcs::Authenticate(
    const Caller& caller, const v1::AuthenticateRequest& request) {
  if (!edge_secret_.Matches(caller.Metadata(platform::kEdgeSecretMetadata))) {
    return absl::PermissionDeniedError("Authenticate is for the edge only");
  }
  absl::StatusOr<ParsedApiKey> parsed = ParseApiKey(request.key());
  if (!parsed.ok()) {
    return absl::UnauthenticatedError("invalid API key");
  }
  std::optional<KeyRecord> key = cache_->Get(parsed->prefix);
  if (!key) {
    auto found = store_->FindKey(parsed->prefix);
    if (!found.ok()) {
      return found.status();
    }
    if (!found->has_value()) {
      return absl::UnauthenticatedError("invalid API key");
    }
    key = std::move(**found);
    cache_->Put(*key);
  }
  if (!ConstantTimeEquals(Sha256Hex(parsed->secret), key->secret_hash)) {
    return absl::UnauthenticatedError("invalid API key");
  }
  if (key->revoke_time) {
    return absl::UnauthenticatedError("API key revoked");
  }
  v1::AuthenticateResponse response;
  response.set_account_id(key->account_id);
  response.set_key_id(key->id);
  return response;
}

}  // namespace kurt::accounts
