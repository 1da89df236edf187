#include "services/accounts/accounts_rpcs.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "platform/core/log.h"
#include "platform/core/text.h"
#include "platform/grpc/timestamps.h"
#include "services/accounts/api_key.h"
#include "services/common/mesh.h"

namespace kurt::accounts {
namespace {

using platform::Caller;
using platform::SetTimestamp;

constexpr size_t kMaxNameLength = 200;
constexpr size_t kMaxEmailLength = 254;
constexpr size_t kMaxEmailLocalLength = 64;
constexpr size_t kMinPasswordLength = 8;
constexpr size_t kMaxPasswordLength = 256;
constexpr absl::string_view kAuthorizationMetadata = "authorization";
constexpr absl::string_view kBearer = "Bearer ";
constexpr absl::string_view kWrongCredentials = "wrong email or password";

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
  return platform::ValidateNoControlCharacter(name, "name");
}

// Neither spaces nor control characters (nor '@' outside the one).
bool IsEmailCharacter(char c) {
  return c != '@' && static_cast<unsigned char>(c) > 0x20 && c != 0x7f;
}

// An address as the API's schema states it: a local part of 1 to 64 characters, one '@', a domain
// of at least two non-empty labels. Whether it receives mail is not ours to know.
absl::Status ValidateEmail(const std::string& email) {
  if (email.empty()) {
    return absl::InvalidArgumentError("email: required");
  }
  const size_t length = platform::Utf8Length(email);
  if (length < 3 || length > kMaxEmailLength) {
    return absl::InvalidArgumentError(absl::StrCat("email: 3 to ", kMaxEmailLength, " characters"));
  }
  const size_t at = email.find('@');
  const absl::string_view local = absl::string_view(email).substr(0, at);
  const absl::string_view domain =
      at == std::string::npos ? absl::string_view() : absl::string_view(email).substr(at + 1);
  const bool well_formed = at != std::string::npos && !local.empty() &&
                           platform::Utf8Length(local) <= kMaxEmailLocalLength &&
                           std::all_of(local.begin(), local.end(), IsEmailCharacter) &&
                           std::all_of(domain.begin(), domain.end(), IsEmailCharacter) &&
                           domain.find('.') != absl::string_view::npos && domain.front() != '.' &&
                           domain.back() != '.' && domain.find("..") == absl::string_view::npos;
  if (!well_formed) {
    return absl::InvalidArgumentError(
        "email: not an email address (name@domain.example, without spaces)");
  }
  return absl::OkStatus();
}

absl::Status ValidateNewPassword(const std::string& password) {
  const size_t length = platform::Utf8Length(password);
  if (length < kMinPasswordLength || length > kMaxPasswordLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("password: ", kMinPasswordLength, " to ", kMaxPasswordLength, " characters"));
  }
  return absl::OkStatus();
}

// Case does not tell addresses apart here (it rarely does anywhere).
std::string NormalizeEmail(const std::string& email) { return absl::AsciiStrToLower(email); }

void ToProto(const KeyRecord& token, const RefreshRecord& refresh, const std::string& email,
             const std::string& token_secret, const std::string& refresh_secret, v1::Session* out) {
  out->set_session_token(token_secret);
  SetTimestamp(*token.expire_time, out->mutable_session_token_expire_time());
  out->set_refresh_token(refresh_secret);
  SetTimestamp(refresh.expire_time, out->mutable_refresh_token_expire_time());
  out->set_account_id(token.account_id);
  out->set_email(email);
}

absl::Status TooManySignIns(absl::Duration wait) {
  const int64_t seconds =
      std::max<int64_t>(1, absl::ToInt64Seconds(absl::Ceil(wait, absl::Seconds(1))));
  return platform::WithRetryAfter(
      absl::ResourceExhaustedError(
          absl::StrCat("too many failed sign-ins for this email or from this address; retry after ",
                       seconds, " s")),
      absl::Seconds(seconds));
}

}  // namespace

AccountsRpcs::AccountsRpcs(AccountsRpcsOptions options, AccountsStore* store, KeyCache* cache,
                           PasswordHasher* passwords, SignInThrottle* throttle,
                           std::function<absl::Time()> clock)
    : options_(std::move(options)),
      edge_secret_(options_.edge_secret),
      store_(store),
      cache_(cache),
      passwords_(passwords),
      throttle_(throttle),
      clock_(std::move(clock)) {}

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
  if (!key->session_id.empty()) {
    if (key->revoke_time) {
      return absl::UnauthenticatedError("signed out: sign in again");
    }
    if (*key->expire_time <= clock_()) {
      return absl::UnauthenticatedError(
          "session token expired: refresh it (POST /v1/sessions:refresh) or sign in again");
    }
  }
  if (key->revoke_time) {
    return absl::UnauthenticatedError("API key revoked");
  }
  v1::AuthenticateResponse response;
  response.set_account_id(key->account_id);
  response.set_key_id(key->id);
  return response;
}

absl::StatusOr<std::pair<KeyRecord, RefreshRecord>> AccountsRpcs::NewTokens(
    const std::string& account_id, const std::string& session_id, const std::string& email,
    v1::Session* shown) const {
  auto token = NewKey(account_id, "");
  if (!token.ok()) {
    return token.status();
  }
  absl::StatusOr<NewApiKey> refresh_key = GenerateApiKey();
  if (!refresh_key.ok()) {
    return refresh_key.status();
  }
  const absl::Time now = clock_();
  token->first.session_id = session_id;
  token->first.expire_time = now + options_.session_token_ttl;
  RefreshRecord refresh;
  refresh.prefix = refresh_key->prefix;
  refresh.session_id = session_id;
  refresh.secret_hash = refresh_key->secret_hash;
  refresh.expire_time = now + options_.refresh_token_ttl;
  ToProto(token->first, refresh, email, token->second, refresh_key->full_key, shown);
  return std::make_pair(std::move(token->first), std::move(refresh));
}

absl::StatusOr<NewSession> AccountsRpcs::MakeSession(const UserRecord& user,
                                                     v1::Session* shown) const {
  absl::StatusOr<std::string> id = RandomHex(8);
  if (!id.ok()) {
    return id.status();
  }
  NewSession session;
  session.id = absl::StrCat("ses_", *id);
  session.account_id = user.account_id;
  session.user_id = user.id;
  auto tokens = NewTokens(session.account_id, session.id, user.email, shown);
  if (!tokens.ok()) {
    return tokens.status();
  }
  session.token = std::move(tokens->first);
  session.refresh = std::move(tokens->second);
  return session;
}

absl::StatusOr<v1::SignUpResponse> AccountsRpcs::SignUp(const Caller& caller,
                                                        const v1::SignUpRequest& request) {
  if (absl::Status s = CheckAdmin(caller); !s.ok()) {
    return s;
  }
  if (absl::Status s = ValidateEmail(request.email()); !s.ok()) {
    return s;
  }
  if (absl::Status s = ValidateNewPassword(request.password()); !s.ok()) {
    return s;
  }
  const std::string email = NormalizeEmail(request.email());
  absl::StatusOr<std::string> password_hash = passwords_->Hash(request.password());
  if (!password_hash.ok()) {
    return password_hash.status();
  }
  absl::StatusOr<std::string> account_id = RandomHex(8);
  absl::StatusOr<std::string> user_id = RandomHex(8);
  for (const auto* id : {&account_id, &user_id}) {
    if (!id->ok()) {
      return id->status();
    }
  }
  // The account is named after the address's local part (at most 64 characters).
  AccountRecord account{absl::StrCat("acc_", *account_id), email.substr(0, email.find('@')),
                        absl::Now()};
  UserRecord user{absl::StrCat("usr_", *user_id), account.id, email, *std::move(password_hash)};
  v1::SignUpResponse response;
  absl::StatusOr<NewSession> session = MakeSession(user, response.mutable_session());
  if (!session.ok()) {
    return session.status();
  }
  absl::StatusOr<AccountRecord> created = store_->SignUp(account, user, *session);
  if (absl::IsAlreadyExists(created.status())) {
    return absl::AlreadyExistsError("email: already registered; sign in instead");
  }
  if (!created.ok()) {
    return created.status();
  }
  response.mutable_account()->set_id(created->id);
  response.mutable_account()->set_name(created->name);
  SetTimestamp(created->create_time, response.mutable_account()->mutable_create_time());
  KURT_LOG(kInfo, "signed up", {"account", created->id}, {"session", session->id});
  return response;
}

absl::StatusOr<v1::Session> AccountsRpcs::CreateSession(const Caller& caller,
                                                        const v1::CreateSessionRequest& request) {
  if (request.email().empty()) {
    return absl::InvalidArgumentError("email: required");
  }
  if (platform::Utf8Length(request.email()) > kMaxEmailLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("email: at most ", kMaxEmailLength, " characters"));
  }
  // No address signed up with one (ValidateEmail), and PostgreSQL's driver would end the text at
  // a NUL: the rest would find the person while the throttle counted another address.
  if (absl::Status s = platform::ValidateNoControlCharacter(request.email(), "email"); !s.ok()) {
    return s;
  }
  if (request.password().empty()) {
    return absl::InvalidArgumentError("password: required");
  }
  if (platform::Utf8Length(request.password()) > kMaxPasswordLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("password: at most ", kMaxPasswordLength, " characters"));
  }
  const std::string email = NormalizeEmail(request.email());
  // The client's address, as the edge saw it; a caller other than the edge has none.
  const std::string client = edge_secret_.Matches(caller.Metadata(platform::kEdgeSecretMetadata))
                                 ? caller.Metadata(mesh::kClientIpMetadata)
                                 : "";
  if (absl::Duration wait = throttle_->Wait(email, client); wait > absl::ZeroDuration()) {
    return TooManySignIns(wait);
  }
  absl::StatusOr<std::optional<UserRecord>> user = store_->FindUser(email);
  if (!user.ok()) {
    return user.status();
  }
  // Nobody's address costs a password check too: both failures answer alike, in the same time.
  bool verified = false;
  if (user->has_value()) {
    verified = passwords_->Verify((*user)->password_hash, request.password());
  } else {
    passwords_->VerifyNobody(request.password());
  }
  if (!verified) {
    throttle_->Failed(email, client);
    return absl::UnauthenticatedError(std::string(kWrongCredentials));
  }
  throttle_->Succeeded(email);
  v1::Session response;
  absl::StatusOr<NewSession> session = MakeSession(**user, &response);
  if (!session.ok()) {
    return session.status();
  }
  if (absl::Status s = store_->StartSession(*session); !s.ok()) {
    return s;
  }
  KURT_LOG(kInfo, "signed in", {"account", session->account_id}, {"session", session->id});
  return response;
}

absl::StatusOr<v1::Session> AccountsRpcs::RefreshSession(const Caller&,
                                                         const v1::RefreshSessionRequest& request) {
  if (request.refresh_token().empty()) {
    return absl::InvalidArgumentError("refresh_token: required");
  }
  absl::StatusOr<ParsedApiKey> parsed = ParseApiKey(request.refresh_token());
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        "refresh_token: not a refresh token (kurt_<12 hex digits>_<64 hex digits>)");
  }
  const absl::Status refused =
      absl::UnauthenticatedError("refresh token not valid (expired, used, or signed out)");
  absl::StatusOr<std::optional<RefreshRecord>> found = store_->FindRefresh(parsed->prefix);
  if (!found.ok()) {
    return found.status();
  }
  if (!found->has_value() ||
      !ConstantTimeEquals(Sha256Hex(parsed->secret), (*found)->secret_hash)) {
    return refused;
  }
  const RefreshRecord& old = **found;
  const absl::Time now = clock_();
  if (old.session_ended || old.expire_time <= now) {
    return refused;
  }
  if (old.spend_time) {
    if (now - *old.spend_time > options_.refresh_reuse_grace) {
      // Spent long ago and shown again: a copy of it is in other hands.
      KURT_LOG(kWarn, "spent refresh token presented again; session ended",
               {"account", old.account_id}, {"session", old.session_id});
      if (absl::Status s = EndSession(old.session_id); !s.ok()) {
        return s;  // the caller retries, and the session ends then
      }
    }
    return refused;
  }
  v1::Session response;
  auto tokens = NewTokens(old.account_id, old.session_id, old.email, &response);
  if (!tokens.ok()) {
    return tokens.status();
  }
  absl::Status s = store_->Rotate(old.prefix, now, tokens->first, tokens->second);
  if (absl::IsFailedPrecondition(s)) {
    return refused;  // another refresh spent it first, or the session ended meanwhile
  }
  if (!s.ok()) {
    return s;
  }
  return response;
}

absl::StatusOr<KeyRecord> AccountsRpcs::BearerKey(const Caller& caller) const {
  const std::string authorization = caller.Metadata(kAuthorizationMetadata);
  if (!absl::StartsWithIgnoreCase(authorization, kBearer)) {
    return absl::UnauthenticatedError(
        "signing out needs the session token: Authorization: Bearer <sessionToken>");
  }
  absl::StatusOr<ParsedApiKey> parsed = ParseApiKey(
      absl::StripAsciiWhitespace(absl::string_view(authorization).substr(kBearer.size())));
  if (!parsed.ok()) {
    return absl::UnauthenticatedError("invalid session token");
  }
  auto found = store_->FindKey(parsed->prefix);
  if (!found.ok()) {
    return found.status();
  }
  if (!found->has_value() ||
      !ConstantTimeEquals(Sha256Hex(parsed->secret), (*found)->secret_hash)) {
    return absl::UnauthenticatedError("invalid session token");
  }
  return **found;
}

absl::Status AccountsRpcs::EndSession(const std::string& session_id) {
  absl::StatusOr<std::vector<std::string>> revoked = store_->EndSession(session_id, clock_());
  if (!revoked.ok()) {
    return revoked.status();
  }
  for (const std::string& prefix : *revoked) {
    cache_->Forget(prefix);
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::DeleteSessionResponse> AccountsRpcs::DeleteSession(
    const Caller& caller, const v1::DeleteSessionRequest&) {
  absl::StatusOr<KeyRecord> key = BearerKey(caller);
  if (!key.ok()) {
    return key.status();
  }
  if (key->session_id.empty()) {
    return absl::UnauthenticatedError(
        "signing out takes a session token, not an API key (API keys are revoked with DELETE "
        "/v1/keys/{id})");
  }
  if (absl::Status s = EndSession(key->session_id); !s.ok()) {
    return s;
  }
  KURT_LOG(kInfo, "signed out", {"account", key->account_id}, {"session", key->session_id});
  return v1::DeleteSessionResponse();
}

}  // namespace kurt::accounts
