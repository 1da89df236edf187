#include "platform/grpc/health.h"

#include <chrono>

namespace kurt::platform {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

namespace {

// How often a Watch with nothing to write looks whether its caller has left.
constexpr std::chrono::seconds kWatchCancelCheck(1);

}  // namespace

void HealthService::SetServing(bool serving) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shut_down_ || serving_ == serving) {
      return;
    }
    serving_ = serving;
    ++version_;
  }
  changed_.notify_all();
}

void HealthService::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    shut_down_ = true;
    serving_ = false;
    ++version_;
  }
  changed_.notify_all();
}

HealthCheckResponse::ServingStatus HealthService::StatusLocked(
    const HealthCheckRequest& request) const {
  if (!request.service().empty()) {
    return HealthCheckResponse::SERVICE_UNKNOWN;
  }
  return serving_ ? HealthCheckResponse::SERVING : HealthCheckResponse::NOT_SERVING;
}

grpc::Status HealthService::Check(grpc::ServerContext*, const HealthCheckRequest* request,
                                  HealthCheckResponse* response) {
  std::lock_guard<std::mutex> lock(mu_);
  HealthCheckResponse::ServingStatus status = StatusLocked(*request);
  if (status == HealthCheckResponse::SERVICE_UNKNOWN) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown service");
  }
  response->set_status(status);
  return grpc::Status::OK;
}

grpc::Status HealthService::Watch(grpc::ServerContext* context, const HealthCheckRequest* request,
                                  grpc::ServerWriter<HealthCheckResponse>* writer) {
  std::unique_lock<std::mutex> lock(mu_);
  uint64_t written = version_ - 1;  // not yet: the first status goes at once
  while (true) {
    if (written != version_) {
      written = version_;
      const bool last = shut_down_;
      HealthCheckResponse response;
      response.set_status(StatusLocked(*request));
      lock.unlock();
      if (!writer->Write(response) || last) {
        return grpc::Status::OK;
      }
      lock.lock();
      continue;
    }
    if (context->IsCancelled()) {
      return grpc::Status::CANCELLED;
    }
    changed_.wait_for(lock, kWatchCancelCheck);
  }
}

}  // namespace kurt::platform
