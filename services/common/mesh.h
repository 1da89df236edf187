// The names the parts of Kurt agree on, defined once: each program's default ports, the Kafka
// topics, the metadata the edge sends with a redirect, and the channel of redirects that changed.
// Scripts and manifests cannot include this file; tests/names/names_agree.py checks that they say
// the same.
#pragma once

#include <array>
#include <cstddef>

#include "absl/strings/string_view.h"

namespace kurt::mesh {

// A program of the mesh: its binary, the proto package prefix of the services it serves (what
// the edge routes by), and its default ports (flags --grpc_port and --metrics_port).
struct Program {
  absl::string_view binary;
  absl::string_view package_prefix;  // "" for a program that serves no public API
  int grpc_port;
  int metrics_port;
};

inline constexpr Program kLinks = {"kurt-links", "kurt.links.", 7101, 9101};
inline constexpr Program kAccounts = {"kurt-accounts", "kurt.accounts.", 7102, 9102};
inline constexpr Program kAnalytics = {"kurt-analytics", "kurt.analytics.", 7103, 9103};
inline constexpr Program kReports = {"kurt-reports", "kurt.reports.", 7104, 9104};
inline constexpr Program kReportWorker = {"kurt-report-worker", "", 7105, 9105};
inline constexpr Program kNotifications = {"kurt-notifications", "kurt.notifications.", 7106, 9106};
inline constexpr std::array<Program, 6> kPrograms = {kLinks,   kAccounts,     kAnalytics,
                                                     kReports, kReportWorker, kNotifications};
// kurt-links' Resolve on Kurt's own HTTP/2 server (platform/grpc/h2_server.h): the --h2_port that
// tools/run and the manifests give it, and the edge's upstream for Resolve (off by default, so that
// replicas on one host need no port of their own).
inline constexpr int kLinksH2Port = 7111;
// The edge's HTTP port (flag --edge_port).
inline constexpr int kEdgeHttpPort = 8080;

// Kafka topics (flags of the same names override them).
inline constexpr char kClicksTopic[] = "kurt.clicks.v1";
inline constexpr char kClicksDeadLetterTopic[] = "kurt.clicks.dlq.v1";
inline constexpr char kReportsRequestedTopic[] = "kurt.reports.requested.v1";
inline constexpr char kReportsCompletedTopic[] = "kurt.reports.completed.v1";
inline constexpr char kReportsDeadLetterTopic[] = "kurt.reports.dlq.v1";

// What the edge tells links about a redirect's visitor (gRPC metadata of Resolve, and of each
// hit of RecordCachedRedirects).
inline constexpr char kRefererMetadata[] = "x-kurt-referer";
inline constexpr char kUserAgentMetadata[] = "x-kurt-user-agent";
inline constexpr char kClientIpMetadata[] = "x-kurt-client-ip";
// "HEAD" when the redirect was asked for with HEAD; absent for GET.
inline constexpr char kRequestMethodMetadata[] = "x-kurt-request-method";
// The click's id, the same in every call that may carry the same redirect (the edge's retry on
// another replica, a proxy's retry through another edge, a cached hit reported again): its event
// id, by which analytics counts it once.
inline constexpr char kClickIdMetadata[] = "x-kurt-click-id";
// The redirect's query string as the client sent it (without the '?'; not sent when longer than
// kMaxForwardedQuery characters), for links that forward it to their target.
inline constexpr char kQueryMetadata[] = "x-kurt-query";
inline constexpr size_t kMaxForwardedQuery = 4096;
// The redirect's Accept-Language, for links whose redirect rules ask for a language (cut to
// kMaxForwardedAcceptLanguage characters).
inline constexpr char kAcceptLanguageMetadata[] = "x-kurt-accept-language";
inline constexpr size_t kMaxForwardedAcceptLanguage = 256;

// The Redis pub/sub channel on which services announce redirects that changed
// (kurt.api.v1.RedirectChanges) and every edge hears them.
inline constexpr char kRedirectChangesChannel[] = "kurt:redirect-changes:v1";

}  // namespace kurt::mesh
