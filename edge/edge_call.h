// The state of one routed request inside the Edge (edge.cc, edge_stream.cc): shared by the
// callbacks that continue it, touched by one thread at a time: its connection's I/O thread (which
// also answers a unary call made over the h2 transport), or, for a unary call through gRPC's
// channels, the completion thread that got the response (the gRPC context and buffers also by
// gRPC while the call runs).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/time/time.h"
#include "edge/edge.h"
#include "edge/h2_upstream.h"
#include "grpcpp/grpcpp.h"

namespace kurt::edge {

struct Edge::Call {
  std::shared_ptr<Exchange> exchange;
  absl::Time start;
  std::string request_id;
  std::string origin;
  const Route* route = nullptr;
  RouteStats* stats = nullptr;
  std::string client_ip;
  std::string cache_key;          // non-empty: a cacheable redirect
  uint64_t cache_generation = 0;  // the cache's generation() when the lookup missed
  // The upstream request, kept for the cache entry when its route reports cached answers.
  std::string cached_request;

  // What the upstream call carries (Edge::Authorized): its metadata and deadline.
  H2Metadata metadata;
  absl::Time deadline = absl::InfiniteFuture();
  // Only for calls through gRPC's channels (server streams; unary calls with
  // --upstream_transport=grpc), made of `metadata` and `deadline`.
  std::optional<grpc::ClientContext> context;
  grpc::ByteBuffer request;
  grpc::ByteBuffer response;
};

}  // namespace kurt::edge
