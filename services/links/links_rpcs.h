// The RPCs of kurt.links.v1.LinksService as plain functions: each validates its request, calls
// the store, the resolver or the click sink, and says what went wrong as an absl::Status naming
// the field. links_service.h serves them over gRPC; a unit test calls them with fakes.
//
// Lives as long as the service (LinksModule owns it); every method is called concurrently from
// gRPC's threads and keeps no state of its own between calls.
#pragma once

#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "google/api/httpbody.pb.h"
#include "google/protobuf/empty.pb.h"
#include "kurt/links/v1/links.pb.h"
#include "platform/core/work_queue.h"
#include "platform/grpc/handler.h"
#include "services/common/failure_throttle.h"
#include "services/common/password_hasher.h"
#include "services/links/click_publisher.h"
#include "services/links/links_store.h"
#include "services/links/redirect_rules.h"
#include "services/links/resolver.h"

namespace kurt::links {

// RecordCachedRedirects' bounds: hits per call, and how far a hit's time may be from now (the
// edge holds hits while this service is unreachable).
inline constexpr int kMaxCachedRedirectsPerCall = 10000;
inline constexpr absl::Duration kCachedRedirectMaxAge = absl::Hours(24);
inline constexpr absl::Duration kCachedRedirectMaxSkew = absl::Minutes(1);
// A click id (mesh::kClickIdMetadata) is at most this long: the edge's request ids are 32.
inline constexpr size_t kMaxClickIdSize = 128;
// How long RecordCachedRedirects waits for Kafka when the caller set no earlier deadline.
inline constexpr absl::Duration kCachedRedirectPublishTimeout = absl::Seconds(60);

// BatchCreateLinks' bounds: links per call, and the length of a request id.
inline constexpr int kMaxBatchLinks = 1000;
inline constexpr size_t kMaxBatchRequestIdLength = 128;

// GetLinkQrCode's image sizes in pixels.
inline constexpr int kMinQrSize = 64;
inline constexpr int kMaxQrSize = 2048;
inline constexpr int kDefaultQrSize = 256;

// Resolve answers this long before the caller's deadline when its click is not yet in Kafka, so
// that the caller hears UNAVAILABLE rather than nothing.
inline constexpr absl::Duration kResolveAnswerMargin = absl::Milliseconds(250);

// Redirects of links with max_clicks are counted on the primary by threads of their own, not by
// the thread that answers the cache's other lookups: this many at once, and at most this many
// waiting for them (more are answered UNAVAILABLE, as during a database outage).
inline constexpr int kCountingThreads = 4;
inline constexpr size_t kMaxWaitingCounts = 10000;

// A batch hashes each distinct password once (about 75 ms each): at most this many in one.
inline constexpr size_t kMaxBatchPasswords = 10;

// Wrong passwords posted to a protected link before UnlockLink answers RESOURCE_EXHAUSTED, right
// password or not, until the window that began with the first of them ends: per client address
// and link, and per link from all clients (against guessing from many addresses).
struct UnlockLimits {
  int per_client = 10;
  int per_link = 100;
  absl::Duration window = absl::Minutes(15);
};

struct LinksRpcsOptions {
  // Prefix of short URLs: short_url = base + code.
  std::string short_url_base = "http://127.0.0.1:8080/";
  // How long Resolve waits at most for Kafka to have its click (less when the caller's deadline
  // is nearer). Long enough to ride out a broker's failover (its session timeout and an election).
  absl::Duration click_ack_timeout = absl::Seconds(10);
  // What redirect rules learn about a visitor from (null parts: their conditions never hold).
  VisitorSources visitors;
  UnlockLimits unlock_limits;
};

class LinksRpcs {
 public:
  // Every pointer outlives the RPCs.
  LinksRpcs(LinksRpcsOptions options, LinksStore* store, Resolver* resolver, ClickSink* clicks,
            PasswordHasher* passwords, FailureThrottle* unlock_failures);

  // On behalf of the caller's account (the adapter answers UNAUTHENTICATED without one). A code
  // owned by another account is NOT_FOUND, like an unknown one.
  absl::StatusOr<v1::Link> CreateLink(const platform::Caller& caller,
                                      const v1::CreateLinkRequest& request);
  // Up to kMaxBatchLinks links, each checked and created as CreateLink does, in one transaction:
  // per link, in order, the link or its error (an alias given twice: ALREADY_EXISTS for the
  // second). With a request_id, a call repeated within kBatchRequestIdRetention answers what the
  // first answered and creates nothing; with other links it is INVALID_ARGUMENT naming request_id.
  absl::StatusOr<v1::BatchCreateLinksResponse> BatchCreateLinks(
      const platform::Caller& caller, const v1::BatchCreateLinksRequest& request);
  absl::StatusOr<v1::Link> GetLink(const platform::Caller& caller,
                                   const v1::GetLinkRequest& request);
  absl::StatusOr<v1::ListLinksResponse> ListLinks(const platform::Caller& caller,
                                                  const v1::ListLinksRequest& request);
  absl::StatusOr<v1::Link> UpdateLink(const platform::Caller& caller,
                                      const v1::UpdateLinkRequest& request);
  absl::Status DeleteLink(const platform::Caller& caller, const v1::DeleteLinkRequest& request);
  // The QR code of the link's short URL (qr_image.h), for its owner only, like GetLink.
  absl::StatusOr<google::api::HttpBody> GetLinkQrCode(const platform::Caller& caller,
                                                      const v1::GetLinkQrCodeRequest& request);

  // Open to any caller: the redirect, without a thread waiting for Kafka. Within the link's
  // limits, its target is that of the first redirect rule that holds for the visitor
  // (x-kurt-user-agent, x-kurt-accept-language, x-kurt-client-ip), else the link's own. Decides
  // the redirect on the thread that has the link (a link with max_clicks: on a counting thread,
  // kCountingThreads; DEADLINE_EXCEEDED, nothing counted, when the caller's deadline passed while
  // it waited) and fills `response`, publishes a click carrying the caller's x-kurt-referer,
  // x-kurt-user-agent, x-kurt-client-ip and traceparent, and calls `done` only once Kafka has it
  // (OK), so that every redirect that went out is counted even if this process dies right after:
  // UNAVAILABLE (the response must then not go out; a count it took is given back, on a counting
  // thread) when the click is not in Kafka by min(click_ack_timeout, the caller's deadline -
  // kResolveAnswerMargin). `done` runs on the thread that learns the outcome (this one for an
  // error or a protected link's form); the caller, request and response outlive it.
  void ResolveAsync(const platform::Caller& caller, const v1::ResolveRequest& request,
                    v1::ResolveResponse* response, platform::AsyncDone done);
  // Open to any caller: the redirect of a password-protected link, its form posted (Resolve
  // answers a protected link with that form, as `page`, and records no click). The right
  // password: decided as Resolve decides, by the same code (DecideFor: the limits, the redirect
  // rule that holds for this visitor, forward_query, the click), never cacheable. A wrong one:
  // UNAUTHENTICATED carrying the form again (a google.api.HttpBody in its details), counted
  // against unlock_limits; at a limit, RESOURCE_EXHAUSTED with a Retry-After and a page saying
  // when. INVALID_ARGUMENT (naming form) for a form that is not one; NOT_FOUND as Resolve.
  absl::StatusOr<v1::ResolveResponse> UnlockLink(const platform::Caller& caller,
                                                 const v1::UnlockLinkRequest& request);
  // Open to any caller (the edge). Publishes a click per redirect the edge answered from its
  // cache, and answers OK once Kafka has them all (UNAVAILABLE otherwise, a little before the
  // caller's deadline: the edge sends them again). The whole batch is refused (INVALID_ARGUMENT
  // naming the hit) if any hit is not a Resolve request of a well-formed code at a plausible
  // time; then nothing is published.
  absl::Status RecordCachedRedirects(const platform::Caller& caller,
                                     const api::v1::CachedRedirects& request);

 private:
  // A redirect decided: the answer, and the click that must be in Kafka before it goes out.
  struct Redirect {
    v1::ResolveResponse response;
    Click click;
    absl::Time click_deadline;
    bool counted = false;  // it used up one of the link's max_clicks
    bool page = false;     // a protected link's form: no redirect, no click to publish
  };
  // What Resolve answers once publishing its click came to `published`: OK, or UNAVAILABLE after
  // giving back the click it counted.
  absl::Status ClickOutcome(const std::string& code, bool counted, const absl::Status& published);

  v1::Link ToProto(const LinkRecord& record) const;
  // Whether a redirect of `link` at `now` is within its limits: its window, and for a link with
  // max_clicks one more count (which this takes).
  absl::StatusOr<bool> WithinLimits(const std::string& code, const CachedLink& link,
                                    absl::Time now);
  // ResolveAsync once the link is known: the redirect decided, its click published, `done`.
  void AnswerResolve(const platform::Caller& caller, const v1::ResolveRequest& request,
                     v1::ResolveResponse* response, CachedLink& link, platform::AsyncDone done);
  // The redirect once the link is known: a protected link's form unless `unlocked` (UnlockLink
  // checked its password), else its redirect as Resolve decides it, and the click to publish.
  absl::StatusOr<Redirect> DecideFor(const platform::Caller& caller, const std::string& code,
                                     CachedLink& link, absl::Time now, bool unlocked);
  // The hash of `password` for a link to create or update; each distinct password of one call
  // hashed once (`memo`), at most kMaxBatchPasswords of them.
  absl::StatusOr<std::string> HashPassword(const std::string& password,
                                           std::map<std::string, std::string>* memo);

  const LinksRpcsOptions options_;
  LinksStore* store_;
  Resolver* resolver_;
  ClickSink* clicks_;
  PasswordHasher* passwords_;
  FailureThrottle* unlock_failures_;
  // Counts (and gives back) redirects of links with max_clicks. Last: destroyed first, its
  // waiting redirects answered while the members above still live.
  platform::WorkQueue counting_{kCountingThreads, kMaxWaitingCounts};
};

}  // namespace kurt::links
