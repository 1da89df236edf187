#include "platform/pg/listener.h"

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

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "libpq-fe.h"
#include "platform/core/log.h"
#include "platform/pg/pg.h"

ABSL_FLAG(std::string, pg_listen_url, "",
          "PostgreSQL primary reached directly, not through PgBouncer, for LISTEN (empty: "
          "--pg_primary_url)");

namespace kurt::pg {

std::string ListenUrlFromFlags() {
  std::string url = absl::GetFlag(FLAGS_pg_listen_url);
  return url.empty() ? absl::GetFlag(FLAGS_pg_primary_url) : url;
}

namespace {

struct PgConnDeleter {
  void operator()(PGconn* conn) const { PQfinish(conn); }
};
using PgConn = std::unique_ptr<PGconn, PgConnDeleter>;

struct PgResultDeleter {
  void operator()(PGresult* result) const { PQclear(result); }
};
using PgResult = std::unique_ptr<PGresult, PgResultDeleter>;

// libpq's messages span lines (a hint on the next, indented); logs want one.
std::string ErrorOf(const PGconn* conn) {
  return std::string(absl::StripAsciiWhitespace(
      absl::StrReplaceAll(PQerrorMessage(conn), {{"\n\t", " "}, {"\n", " "}})));
}

// LISTEN needs no notices; libpq would print them on stderr.
void LogNotice(void*, const char* message) {
  KURT_LOG(kDebug, "notice on the LISTEN connection", {"notice", message});
}

}  // namespace

Listener::Listener(ListenerOptions options, NotifyHandler on_notify, ListeningHandler on_listening,
                   metrics::Registry* registry)
    : options_(std::move(options)),
      on_notify_(std::move(on_notify)),
      on_listening_(std::move(on_listening)),
      errors_(&registry
                   ->AddCounter("kurt_pg_listen_errors_total",
                                "LISTEN connections that failed or were lost (each is retried)",
                                {"listener"})
                   .WithLabels({options_.name})),
      stop_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (stop_fd_ < 0) {
    KURT_LOG(kError, "eventfd failed", {"error", std::strerror(errno)});
    std::abort();
  }
}

Listener::~Listener() {
  Stop();
  close(stop_fd_);
}

void Listener::Start() {
  uint64_t pending = 0;
  while (read(stop_fd_, &pending, sizeof pending) > 0) {
    // A Stop of an earlier run.
  }
  stopping_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void Listener::Stop() {
  stopping_ = true;
  const uint64_t one = 1;
  if (write(stop_fd_, &one, sizeof one) < 0 && errno != EAGAIN) {
    KURT_LOG(kError, "cannot signal the LISTEN thread", {"error", std::strerror(errno)});
  }
  if (thread_.joinable()) {
    thread_.join();
  }
}

void Listener::WaitForStop(absl::Duration timeout) {
  pollfd fd = {stop_fd_, POLLIN, 0};
  const int ms = static_cast<int>(
      std::clamp<int64_t>(absl::ToInt64Milliseconds(timeout), 0, std::numeric_limits<int>::max()));
  while (poll(&fd, 1, ms) < 0 && errno == EINTR) {
  }
}

void Listener::Loop() {
  ReconnectBackoff backoff(options_.initial_backoff, options_.max_backoff);
  while (!stopping_) {
    absl::Status status = ListenOnce(&backoff);
    if (stopping_) {
      break;
    }
    errors_->Increment();
    const absl::Duration delay = backoff.Next();
    KURT_LOG(kWarn, "LISTEN connection failed; reconnecting (users poll meanwhile)",
             {"listener", options_.name}, {"error", status.message()},
             {"retry_in", absl::FormatDuration(delay)});
    WaitForStop(delay);
  }
}

absl::Status Listener::ListenOnce(ReconnectBackoff* backoff) {
  // Keywords after the expanded URL override what it says; keepalives notice a connection that
  // died silently (no FIN, no RST) within about a minute.
  const std::string timeout =
      absl::StrCat(std::max<int64_t>(1, absl::ToInt64Seconds(options_.connect_timeout)));
  const std::string application = absl::StrCat("kurt-listen-", options_.name);
  const char* const keywords[] = {"dbname",
                                  "connect_timeout",
                                  "application_name",
                                  "keepalives_idle",
                                  "keepalives_interval",
                                  "keepalives_count",
                                  nullptr};
  const char* const values[] = {
      options_.url.c_str(), timeout.c_str(), application.c_str(), "30", "10", "3", nullptr};
  PgConn conn(PQconnectdbParams(keywords, values, /*expand_dbname=*/1));
  if (conn == nullptr) {
    return absl::ResourceExhaustedError("connecting: out of memory");
  }
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    return absl::UnavailableError(absl::StrCat("connecting: ", ErrorOf(conn.get())));
  }
  PQsetNoticeProcessor(conn.get(), LogNotice, nullptr);
  for (const std::string& channel : options_.channels) {
    char* quoted = PQescapeIdentifier(conn.get(), channel.data(), channel.size());
    if (quoted == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("channel '", channel, "': ", ErrorOf(conn.get())));
    }
    const std::string sql = absl::StrCat("LISTEN ", quoted);
    PQfreemem(quoted);
    PgResult result(PQexec(conn.get(), sql.c_str()));
    if (PQresultStatus(result.get()) != PGRES_COMMAND_OK) {
      return absl::UnavailableError(absl::StrCat(sql, ": ", ErrorOf(conn.get())));
    }
  }
  backoff->Reset();
  KURT_LOG(kInfo, "listening", {"listener", options_.name},
           {"channels", absl::StrJoin(options_.channels, ",")});
  if (on_listening_) {
    on_listening_();
  }

  pollfd fds[2] = {{PQsocket(conn.get()), POLLIN, 0}, {stop_fd_, POLLIN, 0}};
  for (;;) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) {
        continue;
      }
      return absl::InternalError(absl::StrCat("poll: ", std::strerror(errno)));
    }
    if (fds[1].revents != 0 || stopping_) {
      return absl::OkStatus();
    }
    if (fds[0].revents == 0) {
      continue;
    }
    if (PQconsumeInput(conn.get()) == 0 || PQstatus(conn.get()) != CONNECTION_OK) {
      return absl::UnavailableError(absl::StrCat("connection lost: ", ErrorOf(conn.get())));
    }
    while (PGnotify* notify = PQnotifies(conn.get())) {
      if (on_notify_) {
        on_notify_(notify->relname, notify->extra != nullptr ? notify->extra : "");
      }
      PQfreemem(notify);
    }
  }
}

}  // namespace kurt::pg
