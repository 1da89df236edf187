// The one table that maps gRPC status codes to HTTP (the mapping of google/rpc/code.proto and
// grpc-gateway).
#pragma once

namespace kurt::edge {

unsigned HttpStatusFromGrpc(int grpc_code);

}  // namespace kurt::edge
