// For the tests of asynchronous unary methods (async_method_test, h2_server_test): a service
// whose GetWebhook holds every call until the test answers it, as an RPC waiting on an
// acknowledgement does, and whose SetWebhook answers at once.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <utility>

#include "absl/time/time.h"
#include "kurt/notifications/v1/notifications.pb.h"
#include "platform/grpc/handler.h"

namespace kurt::testing {

namespace nv1 = notifications::v1;

// Holds every GetWebhook call until the test answers it (Next).
class HeldRpcs {
 public:
  struct Held {
    std::string account_id;
    std::string request_id;
    std::string custom;  // x-test-custom
    bool from_edge = false;
    absl::Time deadline;
    nv1::Webhook* response;
    platform::AsyncDone done;
  };

  void GetWebhook(const platform::Caller& caller, const nv1::GetWebhookRequest&,
                  nv1::Webhook* response, platform::AsyncDone done) {
    std::lock_guard<std::mutex> lock(mu_);
    held_.push_back(Held{caller.account_id(), std::string(caller.request_id()),
                         caller.Metadata("x-test-custom"), caller.from_edge(), caller.deadline(),
                         response, std::move(done)});
    arrived_.notify_all();
  }

  // Answers at once with the URL it was given. (By value: the signature H2UnaryHandler serves.)
  void SetWebhook(const platform::Caller&, const nv1::SetWebhookRequest& request,
                  nv1::Webhook* response,
                  platform::AsyncDone done) {  // NOLINT(performance-unnecessary-value-param)
    response->set_url(request.url());
    done(absl::OkStatus());
  }

  Held Next() {
    std::unique_lock<std::mutex> lock(mu_);
    arrived_.wait(lock, [this] { return !held_.empty(); });
    Held h = std::move(held_.front());
    held_.pop_front();
    return h;
  }

  size_t calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return held_.size();
  }

 private:
  std::mutex mu_;
  std::condition_variable arrived_;
  std::deque<Held> held_;
};

}  // namespace kurt::testing
