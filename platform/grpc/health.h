// grpc.health.v1.Health for GrpcServer, on gRPC's synchronous API. gRPC 1.51's default health
// service is on its callback API, and the first callback service a server has starts two polling
// threads of gRPC's ("nexting_thread") that poll the same connections as the server's other
// threads: they read most calls off the sockets and wake the thread that serves each one, a
// context switch per call.
//
// The server's status ("") is the only one it knows, as the default service knew it: Check of any
// other name is NOT_FOUND, Watch of one says SERVICE_UNKNOWN. A Watch holds one of the server's
// synchronous threads while it lasts (the edges keep one per connection), writes the status and
// then each change, and ends once the service shuts down (its last word: NOT_SERVING) or its
// caller leaves.
//
// Lives as long as the server; every method is thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>

#include "grpc/health/v1/health.grpc.pb.h"

namespace kurt::platform {

class HealthService final : public grpc::health::v1::Health::Service {
 public:
  // NOT_SERVING until SetServing(true).
  void SetServing(bool serving);
  // NOT_SERVING for good; every Watch ends.
  void Shutdown();

  grpc::Status Check(grpc::ServerContext* context,
                     const grpc::health::v1::HealthCheckRequest* request,
                     grpc::health::v1::HealthCheckResponse* response) override;
  grpc::Status Watch(grpc::ServerContext* context,
                     const grpc::health::v1::HealthCheckRequest* request,
                     grpc::ServerWriter<grpc::health::v1::HealthCheckResponse>* writer) override;

 private:
  grpc::health::v1::HealthCheckResponse::ServingStatus StatusLocked(
      const grpc::health::v1::HealthCheckRequest& request) const;

  std::mutex mu_;
  std::condition_variable changed_;
  bool serving_ = false;
  bool shut_down_ = false;
  uint64_t version_ = 0;  // counts changes, so that a Watch writes each
};

}  // namespace kurt::platform
