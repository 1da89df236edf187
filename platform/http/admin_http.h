// A small HTTP/1.1 server for operations: /metrics, /healthz and /readyz of a binary. It
// runs one thread of its own from Start until Stop (or destruction).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "platform/core/metrics.h"

namespace kurt::platform {

class AdminHttpServer {
 public:
  // `ready` answers /readyz (200 when true, 503 otherwise); `details` (may be empty) adds lines to
  // its body, for operators (this port is never public).
  AdminHttpServer(const metrics::Registry* registry, std::function<bool()> ready,
                  std::function<std::string()> details = nullptr);
  ~AdminHttpServer();

  // Binds host:port (port 0 picks a free one) and serves; returns the bound port.
  absl::StatusOr<int> Start(const std::string& host, int port);
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kurt::platform
