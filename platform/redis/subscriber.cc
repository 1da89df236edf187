#include "platform/redis/subscriber.h"

#include <hiredis/hiredis.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "platform/core/backoff.h"
#include "platform/core/log.h"

namespace kurt::redis {
namespace {

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

// Sends what hiredis has buffered; false on a write error.
bool Flush(redisContext* ctx) {
  int done = 0;
  while (done == 0) {
    if (redisBufferWrite(ctx, &done) == REDIS_ERR) {
      return false;
    }
  }
  return true;
}

bool Append(redisContext* ctx, std::initializer_list<absl::string_view> argv) {
  std::vector<const char*> args;
  std::vector<size_t> lens;
  for (absl::string_view a : argv) {
    args.push_back(a.data());
    lens.push_back(a.size());
  }
  return redisAppendCommandArgv(ctx, static_cast<int>(args.size()), args.data(), lens.data()) ==
         REDIS_OK;
}

// The kind of a push (first element of the array), e.g. "message", "subscribe", "pong".
absl::string_view Kind(const redisReply* r) {
  if (r->type != REDIS_REPLY_ARRAY || r->elements == 0 ||
      r->element[0]->type != REDIS_REPLY_STRING) {
    return "";
  }
  return absl::string_view(r->element[0]->str, r->element[0]->len);
}

int PollMs(absl::Duration timeout) {
  return static_cast<int>(
      std::clamp<int64_t>(absl::ToInt64Milliseconds(timeout), 0, std::numeric_limits<int>::max()));
}

}  // namespace

Subscriber::Subscriber(RedisClient* client, SubscriberOptions options, MessageHandler on_message,
                       std::function<void()> on_subscribed)
    : client_(client),
      options_(std::move(options)),
      on_message_(std::move(on_message)),
      on_subscribed_(std::move(on_subscribed)),
      wake_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (wake_fd_ < 0) {
    KURT_LOG(kError, "eventfd failed", {"error", std::strerror(errno)});
    std::abort();
  }
  thread_ = std::thread([this] { Run(); });
}

Subscriber::~Subscriber() {
  stop_ = true;
  const uint64_t one = 1;
  if (write(wake_fd_, &one, sizeof one) < 0 && errno != EAGAIN) {
    KURT_LOG(kError, "cannot signal the subscriber's thread", {"error", std::strerror(errno)});
  }
  thread_.join();
  close(wake_fd_);
}

bool Subscriber::WaitReadable(int fd, absl::Duration timeout, bool* readable) {
  pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {fd, POLLIN, 0}};
  const int n = fd >= 0 ? 2 : 1;
  *readable = false;
  int r;
  while ((r = poll(fds, n, PollMs(timeout))) < 0 && errno == EINTR) {
  }
  if (stop_ || fds[0].revents != 0) {
    return false;
  }
  *readable = r > 0 && n == 2 && fds[1].revents != 0;
  return true;
}

void Subscriber::Run() {
  platform::ReconnectBackoff backoff(options_.min_backoff, options_.max_backoff);
  bool ignored = false;
  while (!stop_) {
    absl::StatusOr<RedisClient::Dedicated> conn = client_->OpenDedicated();
    std::string error = "connection lost";
    if (conn.ok()) {
      if (Listen(*std::move(conn))) {
        backoff.Reset();
      }
      subscribed_.store(false, std::memory_order_release);
      if (stop_) {
        break;
      }
    } else {
      error = std::string(conn.status().message());
    }
    const absl::Duration delay = backoff.Next();
    KURT_LOG(kWarn, "redis subscription down; subscribing again", {"channel", options_.channel},
             {"error", error}, {"retry_in", absl::FormatDuration(delay)});
    if (!WaitReadable(-1, delay, &ignored)) {
      break;
    }
  }
}

bool Subscriber::Listen(RedisClient::Dedicated conn) {
  redisContext* ctx = conn.ctx.get();
  if (!Append(ctx, {"SUBSCRIBE", options_.channel}) || !Flush(ctx)) {
    return false;
  }
  bool confirmed = false;
  absl::Time last_heard = absl::Now();
  std::optional<absl::Time> ping_sent;
  for (;;) {
    // Every reply already read, then wait for more.
    for (;;) {
      void* raw = nullptr;
      if (redisGetReplyFromReader(ctx, &raw) == REDIS_ERR) {
        KURT_LOG(kWarn, "redis subscription: bad reply", {"server", conn.server.ToString()},
                 {"error", ctx->errstr});
        return confirmed;
      }
      if (raw == nullptr) {
        break;
      }
      ReplyPtr reply(static_cast<redisReply*>(raw));
      last_heard = absl::Now();
      const absl::string_view kind = Kind(reply.get());
      if (kind == "message" && reply->elements == 3 && confirmed) {
        const redisReply* payload = reply->element[2];
        on_message_(absl::string_view(payload->str, payload->len));
      } else if (kind == "subscribe" && !confirmed) {
        confirmed = true;
        KURT_LOG(kInfo, "redis subscription in place", {"channel", options_.channel},
                 {"server", conn.server.ToString()});
        // Before any message, and before others may see subscribed(): anything published
        // while there was no subscription is unknown.
        if (on_subscribed_) {
          on_subscribed_();
        }
        subscribed_.store(true, std::memory_order_release);
      } else if (kind == "pong") {
        ping_sent.reset();
      } else if (reply->type == REDIS_REPLY_ERROR) {
        KURT_LOG(kWarn, "redis subscription refused", {"channel", options_.channel},
                 {"error", absl::string_view(reply->str, reply->len)});
        return confirmed;
      }
    }
    const absl::Time now = absl::Now();
    if (ping_sent && now - *ping_sent >= options_.ping_timeout) {
      KURT_LOG(kWarn, "redis subscription: no answer to PING", {"server", conn.server.ToString()},
               {"waited", absl::FormatDuration(now - *ping_sent)});
      return confirmed;
    }
    if (!ping_sent && now - last_heard >= options_.ping_interval) {
      if (!Append(ctx, {"PING"}) || !Flush(ctx)) {
        return confirmed;
      }
      ping_sent = now;
    }
    const absl::Duration wait = ping_sent ? *ping_sent + options_.ping_timeout - now
                                          : last_heard + options_.ping_interval - now;
    bool readable = false;
    if (!WaitReadable(ctx->fd, std::max(wait, absl::Milliseconds(1)), &readable)) {
      return confirmed;  // stopping
    }
    if (readable && redisBufferRead(ctx) == REDIS_ERR) {
      KURT_LOG(kWarn, "redis subscription lost", {"server", conn.server.ToString()},
               {"error", ctx->errstr});
      return confirmed;
    }
  }
}

}  // namespace kurt::redis
