// PostgreSQL LISTEN for loops that react to what other processes commit (the outbox relay, the
// notification hub): a dedicated connection LISTENs on some channels and calls back on each NOTIFY.
//
// Why a connection of its own, and a direct one: LISTEN belongs to a session and is answered
// whenever a NOTIFY commits, between the client's queries. A pooled connection is lent to other
// work in between, and PgBouncer in transaction pooling (how the services reach PostgreSQL when
// deployed) hands the client a different server session for each transaction: the LISTEN would be
// registered on a session this client no longer holds, and its notifications would reach another
// client or none. So the listener holds one connection to the primary itself (--pg_listen_url) for
// as long as it runs.
//
// A NOTIFY is a wake-up, not a queue: whatever was notified while the connection was down is gone.
// So after every connection (the first, and each reconnection) the listener calls `on_listening`,
// for its user to look at what it may have missed; and users keep polling at some slower pace, in
// case a connection dies without anyone noticing. After an error the listener reconnects after a
// bounded backoff (doubling from `initial_backoff` up to `max_backoff`), forever, until Stop.
//
// A Listener lives as long as its user; Start and Stop from one thread (the destructor stops). The
// callbacks run on the listener's own thread, one at a time; they should be quick.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "platform/core/backoff.h"
#include "platform/core/metrics.h"

ABSL_DECLARE_FLAG(std::string, pg_listen_url);

namespace kurt::pg {

// --pg_listen_url, or --pg_primary_url when it is empty (no PgBouncer in between, as locally).
std::string ListenUrlFromFlags();

using platform::ReconnectBackoff;

struct ListenerOptions {
  // The primary, directly (a postgresql:// URL or key=value string).
  std::string url;
  std::vector<std::string> channels;
  // For logs, the metric label and the session's application_name (kurt-listen-<name>).
  std::string name = "listener";
  // Stop may wait this long for a connection attempt under way.
  absl::Duration connect_timeout = absl::Seconds(2);
  absl::Duration initial_backoff = absl::Milliseconds(200);
  absl::Duration max_backoff = absl::Seconds(5);
};

class Listener {
 public:
  // A NOTIFY on one of the channels (payload "" when it had none).
  using NotifyHandler = std::function<void(absl::string_view channel, absl::string_view payload)>;
  // LISTEN is in place (again): anything notified before may have been missed.
  using ListeningHandler = std::function<void()>;

  // Metrics: kurt_pg_listen_errors_total{listener}.
  Listener(ListenerOptions options, NotifyHandler on_notify, ListeningHandler on_listening,
           metrics::Registry* registry);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // Connects and listens in a background thread until Stop.
  void Start();
  // Ends the thread promptly (a connection attempt under way may take up to connect_timeout).
  void Stop();

 private:
  void Loop();
  // One connection: connects, LISTENs, delivers notifications until an error (returned) or Stop
  // (OK).
  absl::Status ListenOnce(ReconnectBackoff* backoff);
  // Waits up to `timeout`, or less if Stop comes.
  void WaitForStop(absl::Duration timeout);

  const ListenerOptions options_;
  const NotifyHandler on_notify_;
  const ListeningHandler on_listening_;
  metrics::Counter* errors_;
  // Written by Stop, polled by the thread beside the connection's socket.
  const int stop_fd_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace kurt::pg
