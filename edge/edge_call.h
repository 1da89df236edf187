// The state of one routed request inside the Edge (edge.cc, edge_stream.cc): shared by the
// callbacks that continue it, touched by one thread at a time: its connection's I/O thread, then,
// for a unary call's answer, the completion thread that got the response (the gRPC context and
// buffers also by gRPC while the call runs).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/time/time.h"
#include "edge/edge.h"
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

  // Only for requests that go upstream (a cache hit never builds one).
  std::optional<grpc::ClientContext> context;
  grpc::ByteBuffer request;
  grpc::ByteBuffer response;
};

}  // namespace kurt::edge
