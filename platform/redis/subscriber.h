// A subscription to one Redis pub/sub channel, kept on a thread of its own: it connects (through
// the Sentinels, if any, like every RedisClient connection), SUBSCRIBEs, and hands each message
// to `on_message`.
//
// Pub/sub reaches only those listening at the moment of PUBLISH, so whenever the subscription is
// made again after a loss, `on_subscribed` runs before any message: what was published meanwhile
// is unknown and the caller must assume anything changed (an edge drops its whole cache). A
// connection that goes quiet is checked with PING, and one that does not answer within
// `ping_timeout` counts as lost, so a partition or a frozen server is noticed as soon as a
// closed socket. After a loss it connects again with a backoff (min_backoff doubling to
// max_backoff), asking the Sentinels again: a failover moves the subscription to the new master.
//
// Callbacks run on the subscriber's thread, one at a time.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <thread>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "platform/redis/redis.h"

namespace kurt::redis {

struct SubscriberOptions {
  std::string channel;
  absl::Duration ping_interval = absl::Seconds(1);  // after this long without traffic
  absl::Duration ping_timeout = absl::Seconds(2);
  absl::Duration min_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(1);
};

class Subscriber {
 public:
  using MessageHandler = std::function<void(absl::string_view payload)>;

  // Starts subscribing at once. `client` gives the connections and must outlive this.
  Subscriber(RedisClient* client, SubscriberOptions options, MessageHandler on_message,
             std::function<void()> on_subscribed);
  ~Subscriber();
  Subscriber(const Subscriber&) = delete;
  Subscriber& operator=(const Subscriber&) = delete;

  // Whether the subscription is in place now.
  bool subscribed() const { return subscribed_.load(std::memory_order_acquire); }

 private:
  void Run();
  // One connection's life: returns when it is lost or the subscriber stops; true once the
  // subscription was confirmed on it.
  bool Listen(RedisClient::Dedicated conn);
  // Waits up to `timeout` for `fd` to be readable or for the stop signal; false on stop.
  bool WaitReadable(int fd, absl::Duration timeout, bool* readable);

  RedisClient* const client_;
  const SubscriberOptions options_;
  const MessageHandler on_message_;
  const std::function<void()> on_subscribed_;
  int wake_fd_ = -1;  // an eventfd: Stop's signal to the thread
  std::atomic<bool> stop_{false};
  std::atomic<bool> subscribed_{false};
  std::thread thread_;
};

}  // namespace kurt::redis
