#include "services/links/links_rpcs.h"

#include <algorithm>
#include <map>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "platform/core/log.h"
#include "platform/core/sha256.h"
#include "platform/grpc/edge_trust.h"
#include "platform/grpc/pagination.h"
#include "platform/grpc/timestamps.h"
#include "services/common/link_code.h"
#include "services/common/mesh.h"
#include "services/links/link_limits.h"
#include "services/links/link_rules.h"
#include "services/links/password_page.h"
#include "services/links/qr_image.h"

namespace kurt::links {
namespace {

using platform::FromTimestamp;
using platform::SetTimestamp;
using platform::ValidateTimestamp;

constexpr int kCreateAttempts = 5;

absl::Status ValidateFutureExpiry(const google::protobuf::Timestamp& t, absl::Time now) {
  if (absl::Status s = ValidateTimestamp(t, "expire_time"); !s.ok()) {
    return s;
  }
  if (FromTimestamp(t) <= now) {
    return absl::InvalidArgumentError("expire_time: must be in the future");
  }
  return absl::OkStatus();
}

absl::Status ValidateCode(const std::string& code) {
  if (code.empty()) {
    return absl::InvalidArgumentError("code: required");
  }
  if (!IsWellFormedCode(code)) {
    return absl::InvalidArgumentError("code: must be 3 to 64 letters, digits, '-' or '_'");
  }
  return absl::OkStatus();
}

// Resolve's click id: the caller's when it has one that fits (else a new one is made).
std::string ClickId(absl::string_view given) {
  return given.size() <= kMaxClickIdSize ? std::string(given) : std::string();
}

CachedLink Live(const LinkRecord& r) {
  return CachedLink{true, r.target_url, r.expire_time, r.limits};
}

absl::Status ValidateMaxClicks(int64_t n) {
  if (n < 1 || n > kMaxMaxClicks) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_clicks: must be 1 to ", kMaxMaxClicks, ", not ", n));
  }
  return absl::OkStatus();
}

// valid_since: any valid instant (one in the past changes nothing but the record), before the
// expiry when the request gives both (otherwise the database checks it against the stored one).
absl::Status ValidateValidSince(const google::protobuf::Timestamp& t,
                                const std::optional<absl::Time>& expire_time) {
  if (absl::Status s = ValidateTimestamp(t, "valid_since"); !s.ok()) {
    return s;
  }
  if (expire_time && FromTimestamp(t) >= *expire_time) {
    return absl::InvalidArgumentError("valid_since: must be before expire_time");
  }
  return absl::OkStatus();
}

// CreateLink's request checked, as the record to insert (its code still to be chosen).
absl::StatusOr<LinkRecord> LinkToCreate(const std::string& account_id,
                                        const v1::CreateLinkRequest& request, absl::Time now) {
  if (absl::Status s = ValidateTargetUrl(request.target_url()); !s.ok()) {
    return s;
  }
  if (!request.alias().empty()) {
    if (absl::Status s = ValidateAlias(request.alias()); !s.ok()) {
      return s;
    }
  }
  LinkRecord link;
  link.account_id = account_id;
  link.target_url = request.target_url();
  if (request.has_expire_time()) {
    if (absl::Status s = ValidateFutureExpiry(request.expire_time(), now); !s.ok()) {
      return s;
    }
    link.expire_time = FromTimestamp(request.expire_time());
  }
  absl::StatusOr<std::vector<std::string>> tags =
      NormalizeTags({request.tags().begin(), request.tags().end()});
  if (!tags.ok()) {
    return tags.status();
  }
  link.tags = *std::move(tags);
  if (request.has_valid_since()) {
    if (absl::Status s = ValidateValidSince(request.valid_since(), link.expire_time); !s.ok()) {
      return s;
    }
    link.limits.valid_since = FromTimestamp(request.valid_since());
  }
  if (request.has_max_clicks()) {
    if (absl::Status s = ValidateMaxClicks(request.max_clicks()); !s.ok()) {
      return s;
    }
    link.limits.max_clicks = request.max_clicks();
  }
  if (request.has_fallback_url()) {
    if (absl::Status s = ValidateTargetUrl(request.fallback_url(), "fallback_url"); !s.ok()) {
      return s;
    }
    link.limits.fallback_url = request.fallback_url();
  }
  link.limits.forward_query = request.forward_query();
  absl::StatusOr<std::vector<RedirectRule>> rules = RulesFromProto(request.redirect_rules());
  if (!rules.ok()) {
    return rules.status();
  }
  link.limits.redirect_rules = *std::move(rules);
  if (request.has_password()) {
    // Hashed by the caller, once everything else is known to be right (a hash costs ~75 ms).
    if (absl::Status s = ValidatePassword(request.password()); !s.ok()) {
      return s;
    }
    link.limits.password_protected = true;
  }
  return link;
}

absl::Status NoLink(absl::string_view code) {
  return absl::NotFoundError(absl::StrCat("no link with code '", code, "'"));
}

absl::Status AliasTaken(const std::string& alias) {
  return absl::AlreadyExistsError(absl::StrCat("alias: '", alias, "' is already taken"));
}

void SetError(const absl::Status& status, v1::BatchCreateLinksResult* result) {
  result->mutable_error()->set_code(static_cast<int>(status.code()));
  result->mutable_error()->set_message(std::string(status.message()));
}

}  // namespace

LinksRpcs::LinksRpcs(LinksRpcsOptions options, LinksStore* store, Resolver* resolver,
                     ClickSink* clicks, PasswordHasher* passwords, FailureThrottle* unlock_failures)
    : options_(std::move(options)),
      store_(store),
      resolver_(resolver),
      clicks_(clicks),
      passwords_(passwords),
      unlock_failures_(unlock_failures) {}

absl::StatusOr<std::string> LinksRpcs::HashPassword(const std::string& password,
                                                    std::map<std::string, std::string>* memo) {
  if (auto it = memo->find(password); it != memo->end()) {
    return it->second;
  }
  if (memo->size() >= kMaxBatchPasswords) {
    return absl::InvalidArgumentError(absl::StrCat("password: at most ", kMaxBatchPasswords,
                                                   " different passwords in one batch"));
  }
  absl::StatusOr<std::string> hash = passwords_->Hash(password);
  if (!hash.ok()) {
    return hash.status();
  }
  memo->emplace(password, *hash);
  return hash;
}

v1::Link LinksRpcs::ToProto(const LinkRecord& record) const {
  v1::Link out;
  out.set_code(record.code);
  out.set_short_url(absl::StrCat(options_.short_url_base, record.code));
  out.set_target_url(record.target_url);
  SetTimestamp(record.create_time, out.mutable_create_time());
  SetTimestamp(record.update_time, out.mutable_update_time());
  if (record.expire_time) {
    SetTimestamp(*record.expire_time, out.mutable_expire_time());
  }
  for (const std::string& tag : record.tags) {
    out.add_tags(tag);
  }
  if (record.limits.valid_since) {
    SetTimestamp(*record.limits.valid_since, out.mutable_valid_since());
  }
  if (record.limits.max_clicks) {
    out.set_max_clicks(static_cast<int32_t>(*record.limits.max_clicks));
  }
  if (record.limits.fallback_url) {
    out.set_fallback_url(*record.limits.fallback_url);
  }
  out.set_forward_query(record.limits.forward_query);
  RulesToProto(record.limits.redirect_rules, out.mutable_redirect_rules());
  out.set_click_count(static_cast<int32_t>(std::min<int64_t>(record.click_count, INT32_MAX)));
  out.set_password_protected(record.limits.password_protected);
  return out;
}

absl::StatusOr<v1::Link> LinksRpcs::CreateLink(const platform::Caller& caller,
                                               const v1::CreateLinkRequest& request) {
  absl::StatusOr<LinkRecord> checked = LinkToCreate(caller.account_id(), request, absl::Now());
  if (!checked.ok()) {
    return checked.status();
  }
  LinkRecord link = *std::move(checked);
  if (request.has_password()) {
    std::map<std::string, std::string> memo;
    absl::StatusOr<std::string> hash = HashPassword(request.password(), &memo);
    if (!hash.ok()) {
      return hash.status();
    }
    link.password_hash = *std::move(hash);
  }
  absl::StatusOr<LinkRecord> created;
  if (!request.alias().empty()) {
    link.code = request.alias();
    created = store_->Insert(link);
    if (absl::IsAlreadyExists(created.status())) {
      return AliasTaken(request.alias());
    }
  } else {
    // 62^7 codes: a collision is rare, several in a row mean something is wrong.
    for (int attempt = 0; attempt < kCreateAttempts; ++attempt) {
      link.code = RandomCode(kRandomCodeLength + attempt / 2);
      created = store_->Insert(link);
      if (!absl::IsAlreadyExists(created.status())) {
        break;
      }
    }
  }
  if (!created.ok()) {
    return created.status();
  }
  resolver_->Changed(created->code, Live(*created), /*existed=*/false);
  KURT_LOG(kInfo, "link created", {"code", created->code}, {"account", caller.account_id()});
  return ToProto(*created);
}

absl::StatusOr<v1::BatchCreateLinksResponse> LinksRpcs::BatchCreateLinks(
    const platform::Caller& caller, const v1::BatchCreateLinksRequest& request) {
  if (request.links_size() == 0) {
    return absl::InvalidArgumentError("links: required, 1 to 1000 links");
  }
  if (request.links_size() > kMaxBatchLinks) {
    return absl::InvalidArgumentError(absl::StrCat(
        "links: at most ", kMaxBatchLinks, " links in one call, not ", request.links_size()));
  }
  if (!request.request_id().empty() &&
      (request.request_id().size() > kMaxBatchRequestIdLength ||
       !std::all_of(request.request_id().begin(), request.request_id().end(),
                    [](char c) { return c >= '!' && c <= '~'; }))) {
    return absl::InvalidArgumentError(absl::StrCat(
        "request_id: must be 1 to ", kMaxBatchRequestIdLength, " printable ASCII characters"));
  }
  // Each link checked as CreateLink checks it; those refused answer their error and go no further.
  const absl::Time now = absl::Now();
  v1::BatchCreateLinksResponse response;
  std::vector<BatchLink> links;
  std::vector<int> index_of;  // links[k] is request.links(index_of[k])
  std::map<std::string, int> first_with_alias;
  std::map<std::string, std::string> password_hashes;  // each distinct password hashed once
  for (int i = 0; i < request.links_size(); ++i) {
    v1::BatchCreateLinksResult* result = response.add_results();
    result->set_index(i);
    const v1::CreateLinkRequest& item = request.links(i);
    absl::StatusOr<LinkRecord> checked = LinkToCreate(caller.account_id(), item, now);
    if (!checked.ok()) {
      SetError(checked.status(), result);
      continue;
    }
    if (item.has_password()) {
      absl::StatusOr<std::string> hash = HashPassword(item.password(), &password_hashes);
      if (!hash.ok()) {
        SetError(hash.status(), result);
        continue;
      }
      checked->password_hash = *std::move(hash);
    }
    BatchLink link{*std::move(checked), !item.alias().empty()};
    if (link.alias) {
      auto [first, fresh] = first_with_alias.emplace(item.alias(), i);
      if (!fresh) {
        SetError(absl::AlreadyExistsError(absl::StrCat(
                     "alias: '", item.alias(), "' is already given by links[", first->second, "]")),
                 result);
        continue;
      }
      link.link.code = item.alias();
    } else {
      link.link.code = RandomCode();
    }
    links.push_back(std::move(link));
    index_of.push_back(i);
  }
  auto fill = [&](const std::vector<std::optional<LinkRecord>>& created) {
    for (size_t k = 0; k < created.size(); ++k) {
      v1::BatchCreateLinksResult* result = response.mutable_results(index_of[k]);
      if (created[k]) {
        *result->mutable_link() = ToProto(*created[k]);
      } else {
        SetError(AliasTaken(request.links(index_of[k]).alias()), result);
      }
    }
  };
  if (links.empty()) {
    // Nothing to insert, and nothing the request id needs to guard.
    return response;
  }
  // What the request id stands for: the links asked for, as sent.
  v1::BatchCreateLinksRequest asked = request;
  asked.clear_request_id();
  // Whether a link has a password, not which: no digest of a password is stored.
  for (v1::CreateLinkRequest& l : *asked.mutable_links()) {
    if (l.has_password()) {
      l.set_password("");
    }
  }
  const std::string serialized = asked.SerializeAsString();
  const platform::Sha256Digest sha = platform::Sha256(serialized);
  const std::string digest(reinterpret_cast<const char*>(sha.data()), sha.size());
  absl::StatusOr<BatchInsertResult> inserted = store_->InsertBatch(
      caller.account_id(), request.request_id(), digest, std::move(links),
      [] { return RandomCode(kRandomCodeLength + 1); },
      [&](const std::vector<std::optional<LinkRecord>>& created) {
        fill(created);
        return response.SerializeAsString();
      });
  if (!inserted.ok()) {
    return inserted.status();
  }
  if (inserted->other_request) {
    return absl::InvalidArgumentError(
        absl::StrCat("request_id: '", request.request_id(),
                     "' was used in the last 24 hours for other links; give each batch its own"));
  }
  if (inserted->replayed) {
    v1::BatchCreateLinksResponse first;
    if (!first.ParseFromString(*inserted->replayed)) {
      return absl::InternalError("the recorded answer of this request_id is unreadable");
    }
    return first;
  }
  if (request.request_id().empty()) {
    fill(inserted->created);
  }
  int count = 0;
  for (const std::optional<LinkRecord>& l : inserted->created) {
    if (l) {
      resolver_->Changed(l->code, Live(*l), /*existed=*/false);
      ++count;
    }
  }
  KURT_LOG(kInfo, "links created in a batch", {"count", absl::StrCat(count)},
           {"account", caller.account_id()});
  return response;
}

absl::StatusOr<v1::Link> LinksRpcs::GetLink(const platform::Caller& caller,
                                            const v1::GetLinkRequest& request) {
  if (absl::Status s = ValidateCode(request.code()); !s.ok()) {
    return s;
  }
  absl::StatusOr<LinkRecord> link = store_->Get(caller.account_id(), request.code());
  if (!link.ok()) {
    return link.status();
  }
  return ToProto(*link);
}

absl::StatusOr<v1::ListLinksResponse> LinksRpcs::ListLinks(const platform::Caller& caller,
                                                           const v1::ListLinksRequest& request) {
  absl::StatusOr<platform::PageRequest> page =
      platform::ReadPageRequest(request.page_size(), request.page_token(), IsWellFormedCode);
  if (!page.ok()) {
    return page.status();
  }
  ListFilter filter;
  if (!request.tag().empty()) {
    absl::StatusOr<std::string> tag = NormalizeTag(request.tag(), "tag");
    if (!tag.ok()) {
      return tag.status();
    }
    filter.tag = *std::move(tag);
  }
  if (!request.query().empty()) {
    if (absl::Status s = ValidateQuery(request.query()); !s.ok()) {
      return s;
    }
    filter.query = request.query();
  }
  std::optional<ListCursor> after;
  if (page->after) {
    after = ListCursor{page->after->time, std::move(page->after->key)};
  }
  // One more than asked tells whether there is a next page.
  absl::StatusOr<std::vector<LinkRecord>> links =
      store_->List(caller.account_id(), page->size + 1, after, filter);
  if (!links.ok()) {
    return links.status();
  }
  v1::ListLinksResponse response;
  response.set_next_page_token(platform::FinishPage(&*links, page->size, [](const LinkRecord& l) {
    return platform::PageKey{l.create_time, l.code};
  }));
  for (const LinkRecord& l : *links) {
    *response.add_links() = ToProto(l);
  }
  return response;
}

absl::StatusOr<v1::Link> LinksRpcs::UpdateLink(const platform::Caller& caller,
                                               const v1::UpdateLinkRequest& request) {
  if (absl::Status s = ValidateCode(request.code()); !s.ok()) {
    return s;
  }
  LinkUpdate update;
  if (request.has_target_url()) {
    if (absl::Status s = ValidateTargetUrl(request.target_url()); !s.ok()) {
      return s;
    }
    update.target_url = request.target_url();
  }
  if (request.has_expire_time() && request.clear_expire_time()) {
    return absl::InvalidArgumentError("expire_time: cannot be set together with clear_expire_time");
  }
  if (request.has_expire_time()) {
    if (absl::Status s = ValidateFutureExpiry(request.expire_time(), absl::Now()); !s.ok()) {
      return s;
    }
    update.expire_time = FromTimestamp(request.expire_time());
  }
  update.clear_expire_time = request.clear_expire_time();
  if (request.tags_size() > 0 && request.clear_tags()) {
    return absl::InvalidArgumentError("tags: cannot be set together with clear_tags");
  }
  if (request.tags_size() > 0) {
    absl::StatusOr<std::vector<std::string>> tags =
        NormalizeTags({request.tags().begin(), request.tags().end()});
    if (!tags.ok()) {
      return tags.status();
    }
    update.tags = *std::move(tags);
  } else if (request.clear_tags()) {
    update.tags.emplace();
  }
  auto both = [](absl::string_view field) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": cannot be set together with clear_", field));
  };
  if (request.has_valid_since()) {
    if (request.clear_valid_since()) {
      return both("valid_since");
    }
    if (absl::Status s = ValidateValidSince(request.valid_since(), update.expire_time); !s.ok()) {
      return s;
    }
    update.valid_since = FromTimestamp(request.valid_since());
  }
  update.clear_valid_since = request.clear_valid_since();
  if (request.has_max_clicks()) {
    if (request.clear_max_clicks()) {
      return both("max_clicks");
    }
    if (absl::Status s = ValidateMaxClicks(request.max_clicks()); !s.ok()) {
      return s;
    }
    update.max_clicks = request.max_clicks();
  }
  update.clear_max_clicks = request.clear_max_clicks();
  if (request.has_fallback_url()) {
    if (request.clear_fallback_url()) {
      return both("fallback_url");
    }
    if (absl::Status s = ValidateTargetUrl(request.fallback_url(), "fallback_url"); !s.ok()) {
      return s;
    }
    update.fallback_url = request.fallback_url();
  }
  update.clear_fallback_url = request.clear_fallback_url();
  if (request.has_forward_query()) {
    update.forward_query = request.forward_query();
  }
  if (request.redirect_rules_size() > 0) {
    if (request.clear_redirect_rules()) {
      return both("redirect_rules");
    }
    absl::StatusOr<std::vector<RedirectRule>> rules = RulesFromProto(request.redirect_rules());
    if (!rules.ok()) {
      return rules.status();
    }
    update.redirect_rules = *std::move(rules);
  } else if (request.clear_redirect_rules()) {
    update.redirect_rules.emplace();
  }
  if (request.has_password()) {
    if (request.clear_password()) {
      return both("password");
    }
    if (absl::Status s = ValidatePassword(request.password()); !s.ok()) {
      return s;
    }
  }
  update.clear_password = request.clear_password();
  // A password change is a change of the redirect: edges holding the link's 302 drop it.
  const bool redirect_changes =
      update.target_url || update.expire_time || update.clear_expire_time || update.valid_since ||
      update.clear_valid_since || update.max_clicks || update.clear_max_clicks ||
      update.fallback_url || update.clear_fallback_url || update.forward_query ||
      update.redirect_rules || request.has_password() || update.clear_password;
  if (!redirect_changes && !update.tags) {
    return absl::InvalidArgumentError(
        "nothing to update: give target_url, expire_time, valid_since, max_clicks, fallback_url, "
        "forward_query, password, redirect_rules, tags, or one of their clear_ fields");
  }
  if (request.has_password()) {
    // Last: only a request right in every other way costs a hash.
    std::map<std::string, std::string> memo;
    absl::StatusOr<std::string> hash = HashPassword(request.password(), &memo);
    if (!hash.ok()) {
      return hash.status();
    }
    update.password_hash = *std::move(hash);
  }
  absl::StatusOr<LinkRecord> link = store_->Update(caller.account_id(), request.code(), update);
  if (!link.ok()) {
    return link.status();
  }
  // Tags are no part of the redirect: a change of tags alone leaves its caches as they are.
  if (redirect_changes) {
    resolver_->Changed(link->code, Live(*link), /*existed=*/true);
  }
  return ToProto(*link);
}

absl::Status LinksRpcs::DeleteLink(const platform::Caller& caller,
                                   const v1::DeleteLinkRequest& request) {
  if (absl::Status s = ValidateCode(request.code()); !s.ok()) {
    return s;
  }
  if (absl::Status s = store_->Delete(caller.account_id(), request.code()); !s.ok()) {
    return s;
  }
  resolver_->Changed(request.code(), CachedLink{}, /*existed=*/true);
  KURT_LOG(kInfo, "link deleted", {"code", request.code()}, {"account", caller.account_id()});
  return absl::OkStatus();
}

absl::StatusOr<google::api::HttpBody> LinksRpcs::GetLinkQrCode(
    const platform::Caller& caller, const v1::GetLinkQrCodeRequest& request) {
  if (absl::Status s = ValidateCode(request.code()); !s.ok()) {
    return s;
  }
  QrFormat format = QrFormat::kPng;
  if (request.format() == "svg") {
    format = QrFormat::kSvg;
  } else if (!request.format().empty() && request.format() != "png") {
    return absl::InvalidArgumentError(
        absl::StrCat("format: must be png or svg, not '", request.format(), "'"));
  }
  int size = kDefaultQrSize;
  if (request.has_size()) {
    if (request.size() < kMinQrSize || request.size() > kMaxQrSize) {
      return absl::InvalidArgumentError(absl::StrCat("size: must be ", kMinQrSize, " to ",
                                                     kMaxQrSize, " pixels, not ", request.size()));
    }
    size = request.size();
  }
  absl::StatusOr<LinkRecord> link = store_->Get(caller.account_id(), request.code());
  if (!link.ok()) {
    return link.status();
  }
  absl::StatusOr<QrImage> image =
      RenderQr(absl::StrCat(options_.short_url_base, link->code), format, size);
  if (!image.ok()) {
    return image.status();
  }
  google::api::HttpBody body;
  body.set_content_type(std::move(image->content_type));
  body.set_data(std::move(image->data));
  return body;
}

absl::StatusOr<LinksRpcs::Redirect> LinksRpcs::DecideFor(const platform::Caller& caller,
                                                         const std::string& code, CachedLink& link,
                                                         absl::Time now, bool unlocked) {
  Redirect redirect;
  v1::ResolveResponse& response = redirect.response;
  bool& counted = redirect.counted;
  if (!link.limits.Any()) {
    // The common case: no limits, nothing more to ask anyone.
    if (link.expire_time && *link.expire_time <= now) {
      return NoLink(code);
    }
    if (std::optional<int32_t> age = CacheMaxAge(link.limits, link.expire_time, false, now)) {
      response.set_cache_max_age_seconds(*age);
    }
    response.set_target_url(std::move(link.target_url));
  } else if (link.limits.password_protected && !unlocked) {
    // The form, and no click: the redirect (and its click) comes when the password does. A link
    // past its window with nowhere to send is gone for everyone, password or not.
    if (!WithinWindow(link.limits, link.expire_time, now) && !link.limits.fallback_url) {
      return NoLink(code);
    }
    response.set_cache_max_age_seconds(0);
    *response.mutable_page() = PasswordPage(code, PasswordPageState::kAsk);
    redirect.page = true;
    return redirect;
  } else {
    absl::StatusOr<bool> within = WithinLimits(code, link, now);
    if (!within.ok()) {
      return within.status();
    }
    counted = *within && link.limits.max_clicks.has_value();
    if (*within) {
      std::string* target = &link.target_url;
      if (!link.limits.redirect_rules.empty()) {
        // Viewed where the call keeps them: the click copies what it needs once, below.
        const Visitor visitor{caller.MetadataView(mesh::kUserAgentMetadata),
                              caller.MetadataView(mesh::kAcceptLanguageMetadata),
                              caller.MetadataView(mesh::kClientIpMetadata)};
        if (std::optional<size_t> rule =
                ChooseRule(link.limits.redirect_rules, visitor, options_.visitors)) {
          target = &link.limits.redirect_rules[*rule].target_url;
        }
      }
      response.set_target_url(link.limits.forward_query
                                  ? MergeQuery(*target, caller.MetadataView(mesh::kQueryMetadata))
                                  : std::move(*target));
    } else if (link.limits.fallback_url) {
      response.set_target_url(*link.limits.fallback_url);
    } else {
      return NoLink(code);
    }
    if (std::optional<int32_t> age = CacheMaxAge(link.limits, link.expire_time, !*within, now)) {
      response.set_cache_max_age_seconds(*age);
    }
  }
  // The redirect goes out only once its click is durable (see the header).
  redirect.click_deadline =
      std::min(caller.deadline() - kResolveAnswerMargin, now + options_.click_ack_timeout);
  redirect.click = Click{code,
                         ClickId(caller.MetadataView(mesh::kClickIdMetadata)),
                         now,
                         caller.Metadata(mesh::kRefererMetadata),
                         caller.Metadata(mesh::kUserAgentMetadata),
                         caller.Metadata(mesh::kClientIpMetadata),
                         caller.Metadata(platform::kTraceparentMetadata),
                         caller.MetadataView(mesh::kRequestMethodMetadata) == "HEAD"};
  return redirect;
}

absl::Status LinksRpcs::ClickOutcome(const std::string& code, bool counted,
                                     const absl::Status& published) {
  if (published.ok()) {
    return absl::OkStatus();
  }
  KURT_LOG(kWarn, "redirect refused: its click is not in Kafka", {"code", code},
           {"error", published.ToString()});
  if (counted) {
    // The redirect does not go out: it must not use up one of max_clicks.
    if (absl::Status u = store_->UncountClick(code); !u.ok()) {
      KURT_LOG(kWarn, "could not give back a counted click", {"code", code},
               {"error", u.ToString()});
    }
  }
  return absl::UnavailableError(
      absl::StrCat("the click of this redirect could not be recorded: ", published.message()));
}

void LinksRpcs::ResolveAsync(const platform::Caller& caller, const v1::ResolveRequest& request,
                             v1::ResolveResponse* response, platform::AsyncDone done) {
  if (!IsWellFormedCode(request.code())) {
    done(NoLink(request.code()));
    return;
  }
  // The redirect is decided where the link's cache entry arrives (resolver.h), unless it must be
  // counted: the caller, request and response live until `done`.
  resolver_->ResolveAsync(
      request.code(), caller.deadline(),
      [this, &caller, &request, response,
       done = std::move(done)](absl::StatusOr<CachedLink> link) mutable {
        log::RequestScope scope(caller.request_id(), log::RequestScope::Borrow{});
        if (!link.ok()) {
          if (!absl::IsNotFound(link.status())) {
            KURT_LOG(kError, "resolve failed", {"code", request.code()},
                     {"error", link.status().ToString()});
          }
          done(link.status());
          return;
        }
        if (!link->limits.max_clicks) {
          AnswerResolve(caller, request, response, *link, std::move(done));
          return;
        }
        // Counting is a statement on the primary, which may wait for a row lock or a failover:
        // not on this thread, which answers the cache's other lookups (or reads the database
        // for other codes).
        platform::WorkQueue::Task count = [this, &caller, &request, response,
                                           link = std::move(*link),
                                           done = std::move(done)](bool run) mutable {
          log::RequestScope scope(caller.request_id(), log::RequestScope::Borrow{});
          if (!run) {
            done(absl::UnavailableError(
                "the link's clicks cannot be counted now: kurt-links is stopping or too many "
                "redirects wait for the database"));
          } else if (absl::Now() >= caller.deadline()) {
            // Its redirect would not go out: it must not use up one of max_clicks.
            done(absl::DeadlineExceededError("the deadline passed before the click was counted"));
          } else {
            AnswerResolve(caller, request, response, link, std::move(done));
          }
        };
        if (!counting_.Submit(count)) {
          KURT_LOG(kWarn, "redirect refused: too many wait to be counted", {"code", request.code()},
                   {"waiting", counting_.Waiting()});
          std::move(count)(false);
        }
      });
}

void LinksRpcs::AnswerResolve(const platform::Caller& caller, const v1::ResolveRequest& request,
                              v1::ResolveResponse* response, CachedLink& link,
                              platform::AsyncDone done) {
  absl::StatusOr<Redirect> redirect =
      DecideFor(caller, request.code(), link, absl::Now(), /*unlocked=*/false);
  if (!redirect.ok()) {
    done(redirect.status());
    return;
  }
  *response = std::move(redirect->response);
  if (redirect->page) {
    done(absl::OkStatus());
    return;
  }
  const bool counted = redirect->counted;
  clicks_->PublishAsync(
      redirect->click, redirect->click_deadline,
      [this, &request, counted, done = std::move(done)](const absl::Status& published) mutable {
        if (published.ok() || !counted) {
          done(ClickOutcome(request.code(), /*counted=*/false, published));
          return;
        }
        // The count goes back on a counting thread, not on the thread that learns of Kafka's
        // answers (or on this one when they are all taken).
        platform::WorkQueue::Task give_back = [this, &request, published,
                                               done = std::move(done)](bool) mutable {
          done(ClickOutcome(request.code(), true, published));
        };
        if (!counting_.Submit(give_back)) {
          std::move(give_back)(false);
        }
      });
}

absl::StatusOr<v1::ResolveResponse> LinksRpcs::UnlockLink(const platform::Caller& caller,
                                                          const v1::UnlockLinkRequest& request) {
  if (!IsWellFormedCode(request.code())) {
    return NoLink(request.code());
  }
  if (request.password().empty()) {
    return absl::InvalidArgumentError("password: required");
  }
  // Longer than any password can be: refused before it costs a hash.
  if (absl::Status s = ValidatePassword(request.password(), "password", 1); !s.ok()) {
    return s;
  }
  const absl::Time now = absl::Now();
  absl::StatusOr<CachedLink> link = resolver_->Resolve(request.code(), caller.deadline());
  if (!link.ok()) {
    return link.status();
  }
  if (link->limits.password_protected) {
    const std::string client = caller.Metadata(mesh::kClientIpMetadata);
    const UnlockLimits& limits = options_.unlock_limits;
    const std::string link_key = absl::StrCat("link:", request.code());
    const std::string client_key = absl::StrCat(link_key, ":client:", client);
    const FailureLimit counts[] = {{client_key, limits.per_client, limits.window},
                                   {link_key, limits.per_link, limits.window}};
    auto too_many = [&](absl::Duration wait) {
      return platform::WithDetail(
          platform::WithRetryAfter(
              absl::ResourceExhaustedError(
                  absl::StrCat("too many wrong passwords for this link; try again in ",
                               absl::ToInt64Seconds(absl::Ceil(wait, absl::Seconds(1))), " s")),
              wait),
          PasswordPage(request.code(), PasswordPageState::kTooMany, wait));
    };
    if (absl::Duration wait = unlock_failures_->Wait(counts); wait > absl::ZeroDuration()) {
      return too_many(wait);
    }
    // The hash from the primary: a password changed a moment ago holds at once.
    absl::StatusOr<std::optional<std::string>> hash = store_->PasswordHash(request.code());
    if (!hash.ok()) {
      return hash.status();
    }
    // No hash: the password was removed since the cache said otherwise; the link is open.
    if (*hash && !passwords_->Verify(**hash, request.password())) {
      unlock_failures_->Failed(counts);
      KURT_LOG(kInfo, "wrong password for a protected link", {"code", request.code()});
      return platform::WithDetail(absl::UnauthenticatedError("wrong password for this link"),
                                  PasswordPage(request.code(), PasswordPageState::kWrong));
    }
    unlock_failures_->Clear(client_key);
  }
  absl::StatusOr<Redirect> redirect =
      DecideFor(caller, request.code(), *link, now, /*unlocked=*/true);
  if (!redirect.ok()) {
    return redirect.status();
  }
  // Each unlocked redirect reaches the service: none is kept by any cache. Waiting here costs
  // nothing worth saving: the password's hash has just taken this thread for far longer.
  redirect->response.set_cache_max_age_seconds(0);
  if (absl::Status s =
          ClickOutcome(request.code(), redirect->counted,
                       clicks_->PublishAll({std::move(redirect->click)}, redirect->click_deadline,
                                           ClickWait::kRedirectWaits));
      !s.ok()) {
    return s;
  }
  return std::move(redirect->response);
}

absl::StatusOr<bool> LinksRpcs::WithinLimits(const std::string& code, const CachedLink& link,
                                             absl::Time now) {
  if (!WithinWindow(link.limits, link.expire_time, now)) {
    return false;
  }
  if (!link.limits.max_clicks) {
    return true;
  }
  // Counted where the redirect is decided, on the primary (links_store.h): the edge keeps no
  // such redirect (max-age 0), so every one comes here.
  absl::StatusOr<bool> counted = store_->CountClick(code);
  if (!counted.ok()) {
    KURT_LOG(kError, "counting a click failed", {"code", code},
             {"error", counted.status().ToString()});
    return absl::UnavailableError(
        absl::StrCat("the link's clicks could not be counted: ", counted.status().message()));
  }
  return *counted;
}

absl::Status LinksRpcs::RecordCachedRedirects(const platform::Caller& caller,
                                              const api::v1::CachedRedirects& request) {
  if (request.hits_size() > kMaxCachedRedirectsPerCall) {
    return absl::InvalidArgumentError(absl::StrCat("hits: at most ", kMaxCachedRedirectsPerCall,
                                                   " per call, not ", request.hits_size()));
  }
  // Everything is checked before anything is published: a refused batch changes nothing.
  const absl::Time now = absl::Now();
  std::vector<Click> clicks;
  clicks.reserve(request.hits_size());
  for (int i = 0; i < request.hits_size(); ++i) {
    const api::v1::CachedRedirects::Hit& hit = request.hits(i);
    auto bad = [i](absl::string_view field, absl::string_view why) {
      return absl::InvalidArgumentError(absl::StrCat("hits[", i, "].", field, ": ", why));
    };
    v1::ResolveRequest resolve;
    if (!resolve.ParseFromString(hit.request())) {
      return bad("request", "not a kurt.links.v1.ResolveRequest");
    }
    if (!IsWellFormedCode(resolve.code())) {
      return bad("request", "code must be 3 to 64 letters, digits, '-' or '_'");
    }
    if (absl::Status s = ValidateTimestamp(hit.time(), "time"); !s.ok()) {
      return bad("time", "not a valid timestamp");
    }
    const absl::Time time = FromTimestamp(hit.time());
    if (time > now + kCachedRedirectMaxSkew || time < now - kCachedRedirectMaxAge) {
      return bad("time", "more than a minute ahead of or a day behind this server's clock");
    }
    auto value = [&hit](absl::string_view key) {
      // protobuf's Map looks a std::string_view up without copying it into a key.
      auto it = hit.metadata().find(std::string_view(key.data(), key.size()));
      return it == hit.metadata().end() ? std::string() : it->second;
    };
    std::string id = value(mesh::kClickIdMetadata);
    if (id.size() > kMaxClickIdSize) {
      return bad("metadata", absl::StrCat(mesh::kClickIdMetadata, " longer than ", kMaxClickIdSize,
                                          " characters"));
    }
    clicks.push_back(Click{resolve.code(), std::move(id), time, value(mesh::kRefererMetadata),
                           value(mesh::kUserAgentMetadata), value(mesh::kClientIpMetadata),
                           value(platform::kTraceparentMetadata),
                           value(mesh::kRequestMethodMetadata) == "HEAD"});
  }
  // The edge forgets the hits once this answers OK: they must be in Kafka by then. Answer a little
  // before the caller's deadline, so that it hears UNAVAILABLE rather than nothing. Unless the
  // edge holds their redirects, nothing but its reporter waits for them: they may be gathered.
  const absl::Time deadline = std::min(caller.deadline() - absl::Milliseconds(500),
                                       absl::Now() + kCachedRedirectPublishTimeout);
  return clicks_->PublishAll(clicks, deadline,
                             request.held() ? ClickWait::kRedirectWaits : ClickWait::kNothingWaits);
}

}  // namespace kurt::links
