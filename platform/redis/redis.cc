#include "platform/redis/redis.h"

#include <hiredis/hiredis.h>

#include <algorithm>

#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "platform/core/log.h"
#include "platform/core/text.h"

ABSL_FLAG(std::string, redis_url, "redis://127.0.0.1:16379",
          "Redis: redis://[[username]:password@]host:port[/db] (without --redis_sentinels)");
ABSL_FLAG(std::string, redis_sentinels, "",
          "Redis Sentinels, host:port,host:port,...: when set, the master's address comes from "
          "them (the host and port of --redis_url are not used)");
ABSL_FLAG(std::string, redis_master_name, "kurt", "the master's name in the Redis Sentinels");
ABSL_FLAG(std::string, redis_password, "",
          "Redis password (AUTH), for the servers and the Sentinels; wins over a password in "
          "--redis_url");

namespace kurt::redis {
namespace {

Reply Convert(const redisReply* r) {
  Reply out;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.type = Reply::Type::kString;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = Reply::Type::kStatus;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = Reply::Type::kError;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = Reply::Type::kInteger;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = Reply::Type::kArray;
      for (size_t i = 0; i < r->elements; ++i) {
        out.elements.push_back(Convert(r->element[i]));
      }
      break;
    default:
      out.type = Reply::Type::kNil;
  }
  return out;
}

// One command on a connection; nullopt when the connection failed (I/O error or timeout), after
// which hiredis' context is unusable.
std::optional<Reply> RunOn(redisContext* ctx, const std::vector<std::string>& argv) {
  std::vector<const char*> args;
  std::vector<size_t> lens;
  args.reserve(argv.size());
  lens.reserve(argv.size());
  for (const std::string& a : argv) {
    args.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* r = static_cast<redisReply*>(
      redisCommandArgv(ctx, static_cast<int>(args.size()), args.data(), lens.data()));
  if (r == nullptr) {
    return std::nullopt;
  }
  Reply reply = Convert(r);
  freeReplyObject(r);
  return reply;
}

// The server refused our credentials, or wants some we did not give.
bool IsAuthError(const Reply& r) {
  return r.type == Reply::Type::kError &&
         (absl::StartsWith(r.str, "WRONGPASS") || absl::StartsWith(r.str, "NOAUTH") ||
          absl::StartsWith(r.str, "ERR invalid password") ||
          absl::StartsWith(r.str, "ERR invalid username-password"));
}

// AUTH sent to a server that has no password: harmless, the connection is usable.
bool IsNoPasswordConfigured(const Reply& r) {
  return r.type == Reply::Type::kError && absl::StrContains(r.str, "without any password");
}

// A write sent to a replica: the server was demoted (by Sentinel) since we connected. Redis says
// so for a command (-READONLY ...) and inside a script's error.
bool IsReadOnly(const Reply& r) {
  return r.type == Reply::Type::kError && (absl::StartsWith(r.str, "READONLY") ||
                                           absl::StrContains(r.str, "READONLY You can't write"));
}

absl::Status AuthError(const Endpoint& server, absl::string_view what, absl::string_view reply) {
  return absl::UnauthenticatedError(
      absl::StrCat("redis authentication failed at ", what, " ", server.ToString(),
                   " (check --redis_password or the password in --redis_url): ", reply));
}

// Decodes %XX in a URL's user info (a password may hold any byte).
std::string PercentDecode(absl::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    int hi = i + 2 < s.size() && s[i] == '%' ? platform::HexDigitValue(s[i + 1]) : -1;
    int lo = hi >= 0 ? platform::HexDigitValue(s[i + 2]) : -1;
    if (lo >= 0) {
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

absl::Status ParseHostPort(absl::string_view hostport, std::string* host, int* port) {
  size_t colon = hostport.rfind(':');
  if (colon == absl::string_view::npos) {
    *host = std::string(hostport);
    return absl::OkStatus();
  }
  *host = std::string(hostport.substr(0, colon));
  if (!absl::SimpleAtoi(hostport.substr(colon + 1), port) || *port <= 0 || *port > 65535) {
    return absl::InvalidArgumentError("bad port");
  }
  return absl::OkStatus();
}

}  // namespace

std::string Endpoint::ToString() const { return absl::StrCat(host, ":", port); }

absl::StatusOr<std::vector<Endpoint>> ParseEndpoints(absl::string_view list) {
  std::vector<Endpoint> out;
  for (absl::string_view entry : absl::StrSplit(list, ',')) {
    entry = absl::StripAsciiWhitespace(entry);
    if (entry.empty()) {
      continue;
    }
    Endpoint e;
    if (entry.find(':') == absl::string_view::npos ||
        !ParseHostPort(entry, &e.host, &e.port).ok() || e.host.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad address '", entry, "' (want host:port) in '", list, "'"));
    }
    out.push_back(std::move(e));
  }
  if (out.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("no host:port in '", list, "'"));
  }
  return out;
}

std::string RedactUrl(absl::string_view url) {
  size_t scheme = url.find("://");
  size_t start = scheme == absl::string_view::npos ? 0 : scheme + 3;
  size_t at = url.rfind('@');
  if (at == absl::string_view::npos || at < start) {
    return std::string(url);
  }
  size_t colon = url.find(':', start);
  if (colon == absl::string_view::npos || colon > at) {
    return std::string(url);  // a user name only
  }
  return absl::StrCat(url.substr(0, colon + 1), "****", url.substr(at));
}

absl::StatusOr<Options> Options::FromUrl(absl::string_view url) {
  Options o;
  absl::string_view rest = url;
  if (!absl::ConsumePrefix(&rest, "redis://")) {
    return absl::InvalidArgumentError(
        absl::StrCat("redis URL must start with redis://: ", RedactUrl(url)));
  }
  // The password may hold '/' or '@' (unescaped): the host starts after the last '@'.
  if (size_t at = rest.rfind('@'); at != absl::string_view::npos) {
    absl::string_view userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    size_t colon = userinfo.find(':');
    if (colon == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the user info in a redis URL must be [username]:password: ", RedactUrl(url)));
    }
    o.username = PercentDecode(userinfo.substr(0, colon));
    o.password = PercentDecode(userinfo.substr(colon + 1));
  }
  absl::string_view hostport = rest.substr(0, rest.find('/'));
  absl::string_view db = rest.size() > hostport.size() ? rest.substr(hostport.size() + 1) : "";
  if (!ParseHostPort(hostport, &o.host, &o.port).ok()) {
    return absl::InvalidArgumentError(absl::StrCat("bad port in redis URL: ", RedactUrl(url)));
  }
  if (o.host.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("no host in: ", RedactUrl(url)));
  }
  if (!db.empty() && !absl::SimpleAtoi(db, &o.db)) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad database number in redis URL: ", RedactUrl(url)));
  }
  return o;
}

absl::StatusOr<Options> Options::FromFlags() {
  absl::StatusOr<Options> o = FromUrl(absl::GetFlag(FLAGS_redis_url));
  if (!o.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--redis_url: ", o.status().message()));
  }
  if (std::string password = absl::GetFlag(FLAGS_redis_password); !password.empty()) {
    o->password = std::move(password);
  }
  if (std::string list = absl::GetFlag(FLAGS_redis_sentinels); !list.empty()) {
    absl::StatusOr<std::vector<Endpoint>> sentinels = ParseEndpoints(list);
    if (!sentinels.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--redis_sentinels: ", sentinels.status().message()));
    }
    o->sentinels = *std::move(sentinels);
    o->master_name = absl::GetFlag(FLAGS_redis_master_name);
    if (o->master_name.empty()) {
      return absl::InvalidArgumentError("--redis_master_name is empty (with --redis_sentinels)");
    }
  }
  return o;
}

void RedisClient::ContextDeleter::operator()(redisContext* c) const { redisFree(c); }

RedisClient::RedisClient(Options options) : options_(std::move(options)) {}

RedisClient::~RedisClient() = default;

absl::StatusOr<std::unique_ptr<RedisClient>> RedisClient::FromFlags() {
  absl::StatusOr<Options> options = Options::FromFlags();
  if (!options.ok()) {
    return options.status();
  }
  auto client = std::make_unique<RedisClient>(*std::move(options));
  absl::Status probe = client->Probe();
  if (probe.code() == absl::StatusCode::kUnauthenticated) {
    return probe;
  }
  if (!probe.ok()) {
    KURT_LOG(kWarn, "redis does not answer; running without it until it does",
             {"error", probe.message()});
  }
  return client;
}

bool RedisClient::CircuitOpen() const {
  return absl::GetCurrentTimeNanos() < circuit_open_until_ns_.load(std::memory_order_relaxed);
}

void RedisClient::TripCircuit() {
  circuit_open_until_ns_ =
      absl::GetCurrentTimeNanos() + absl::ToInt64Nanoseconds(options_.open_circuit_for);
}

absl::StatusOr<RedisClient::ContextPtr> RedisClient::Connect(const Endpoint& server,
                                                             const Options& options) {
  ContextPtr c(redisConnectWithTimeout(server.host.c_str(), server.port,
                                       absl::ToTimeval(options.connect_timeout)));
  if (!c || c->err) {
    return absl::UnavailableError(
        absl::StrCat("redis ", server.ToString(), ": ", c ? c->errstr : "out of memory"));
  }
  redisSetTimeout(c.get(), absl::ToTimeval(options.command_timeout));
  return c;
}

absl::StatusOr<Endpoint> RedisClient::AskSentinels() {
  const size_t n = options_.sentinels.size();
  std::vector<std::string> problems;
  std::string auth_refused;  // the first Sentinel's refusal of our password
  int refusals = 0;
  for (size_t i = 0; i < n; ++i) {
    const size_t index = (first_sentinel_ + i) % n;
    const Endpoint& sentinel = options_.sentinels[index];
    absl::StatusOr<ContextPtr> c = Connect(sentinel, options_);
    if (!c.ok()) {
      problems.emplace_back(c.status().message());
      continue;
    }
    if (!options_.password.empty()) {
      std::vector<std::string> auth = {"AUTH"};
      if (!options_.username.empty()) {
        auth.push_back(options_.username);
      }
      auth.push_back(options_.password);
      std::optional<Reply> r = RunOn(c->get(), auth);
      if (!r) {
        problems.push_back(absl::StrCat("sentinel ", sentinel.ToString(), ": ", (*c)->errstr));
        continue;
      }
      if (r->type == Reply::Type::kError && !IsNoPasswordConfigured(*r)) {
        problems.emplace_back(AuthError(sentinel, "Sentinel", r->str).message());
        if (IsAuthError(*r) && refusals++ == 0) {
          auth_refused = problems.back();
        }
        continue;
      }
    }
    std::optional<Reply> r =
        RunOn(c->get(), {"SENTINEL", "get-master-addr-by-name", options_.master_name});
    if (!r) {
      problems.push_back(absl::StrCat("sentinel ", sentinel.ToString(), ": ", (*c)->errstr));
      continue;
    }
    if (r->type == Reply::Type::kError) {
      if (IsAuthError(*r)) {
        problems.emplace_back(AuthError(sentinel, "Sentinel", r->str).message());
        if (refusals++ == 0) {
          auth_refused = problems.back();
        }
      } else {
        problems.push_back(absl::StrCat("sentinel ", sentinel.ToString(), ": ", r->str));
      }
      continue;
    }
    Endpoint master;
    if (r->type != Reply::Type::kArray || r->elements.size() != 2 ||
        !absl::SimpleAtoi(r->elements[1].str, &master.port) || r->elements[0].str.empty()) {
      problems.push_back(absl::StrCat("sentinel ", sentinel.ToString(),
                                      " does not know a master named '", options_.master_name,
                                      "'"));
      continue;
    }
    master.host = r->elements[0].str;
    first_sentinel_ = index;
    return master;
  }
  if (refusals > 0) {
    return absl::UnauthenticatedError(
        absl::StrCat(auth_refused, " (", refusals, " of ", n, " Sentinels refused)"));
  }
  return absl::UnavailableError(absl::StrCat("no redis Sentinel named the master '",
                                             options_.master_name,
                                             "': ", absl::StrJoin(problems, "; ")));
}

absl::StatusOr<std::pair<Endpoint, uint64_t>> RedisClient::Target() {
  if (options_.sentinels.empty()) {
    return std::make_pair(Endpoint{options_.host, options_.port}, generation_.load());
  }
  // One thread asks the Sentinels; the others wait for its answer rather than ask too.
  std::lock_guard<std::mutex> lock(master_mu_);
  const uint64_t generation = generation_.load();
  if (!master_) {
    absl::StatusOr<Endpoint> master = AskSentinels();
    if (!master.ok()) {
      return master.status();
    }
    master_ = *master;
    if (announced_ != master_) {
      announced_ = master_;
      KURT_LOG(kInfo, "redis master (from the Sentinels)", {"address", master_->ToString()},
               {"master_name", options_.master_name});
    }
  }
  return std::make_pair(*master_, generation);
}

void RedisClient::ForgetMaster(uint64_t generation) {
  {
    std::lock_guard<std::mutex> lock(master_mu_);
    uint64_t expected = generation;
    if (!generation_.compare_exchange_strong(expected, generation + 1)) {
      return;  // another caller already did
    }
    master_.reset();
  }
  // Idle connections were opened to the same server: they are likely dead too.
  std::lock_guard<std::mutex> lock(mu_);
  idle_.clear();
}

absl::StatusOr<RedisClient::Connection> RedisClient::Open() {
  absl::StatusOr<std::pair<Endpoint, uint64_t>> target = Target();
  if (!target.ok()) {
    return target.status();
  }
  Connection conn;
  conn.server = target->first;
  conn.generation = target->second;
  absl::StatusOr<ContextPtr> c = Connect(conn.server, options_);
  if (!c.ok()) {
    ForgetMaster(conn.generation);
    return c.status();
  }
  conn.ctx = *std::move(c);
  auto fail = [&](absl::string_view why) {
    ForgetMaster(conn.generation);
    return absl::UnavailableError(absl::StrCat("redis ", conn.server.ToString(), ": ", why));
  };
  if (!options_.password.empty()) {
    std::vector<std::string> auth = {"AUTH"};
    if (!options_.username.empty()) {
      auth.push_back(options_.username);
    }
    auth.push_back(options_.password);
    std::optional<Reply> r = RunOn(conn.ctx.get(), auth);
    if (!r) {
      return fail(conn.ctx->errstr);
    }
    if (IsAuthError(*r)) {
      return AuthError(conn.server, "server", r->str);
    }
    if (r->type == Reply::Type::kError && !IsNoPasswordConfigured(*r)) {
      return fail(absl::StrCat("AUTH: ", r->str));
    }
  }
  if (options_.db != 0) {
    std::optional<Reply> r = RunOn(conn.ctx.get(), {"SELECT", absl::StrCat(options_.db)});
    if (!r) {
      return fail(conn.ctx->errstr);
    }
    if (IsAuthError(*r)) {
      return AuthError(conn.server, "server", r->str);
    }
    if (r->type == Reply::Type::kError) {
      return fail(absl::StrCat("SELECT ", options_.db, ": ", r->str));
    }
  }
  if (!options_.sentinels.empty()) {
    // A Sentinel may answer from before a failover it has not seen yet: the server itself says.
    std::optional<Reply> r = RunOn(conn.ctx.get(), {"ROLE"});
    if (!r) {
      return fail(conn.ctx->errstr);
    }
    if (IsAuthError(*r)) {
      return AuthError(conn.server, "server", r->str);
    }
    if (r->type != Reply::Type::kArray || r->elements.empty() || r->elements[0].str != "master") {
      return fail(absl::StrCat("not the master of '", options_.master_name, "' (ROLE: ",
                               r->type == Reply::Type::kError ? r->str
                               : r->elements.empty()          ? "?"
                                                              : r->elements[0].str,
                               "); asking the Sentinels again"));
    }
  }
  return conn;
}

absl::StatusOr<RedisClient::Connection> RedisClient::Acquire() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    const uint64_t generation = generation_.load();
    while (!idle_.empty()) {
      Connection c = std::move(idle_.back());
      idle_.pop_back();
      if (c.generation == generation) {
        return c;
      }
    }
  }
  if (CircuitOpen()) {
    return absl::UnavailableError("redis unavailable (recent failure)");
  }
  absl::StatusOr<Connection> c = Open();
  if (!c.ok()) {
    TripCircuit();
  }
  return c;
}

void RedisClient::Release(Connection conn) {
  std::lock_guard<std::mutex> lock(mu_);
  if (conn.generation == generation_.load() &&
      static_cast<int>(idle_.size()) < options_.max_connections) {
    idle_.push_back(std::move(conn));
  }
}

absl::StatusOr<Reply> RedisClient::Run(Connection& conn, const std::vector<std::string>& argv) {
  std::optional<Reply> r = RunOn(conn.ctx.get(), argv);
  if (!r) {
    // The connection is unusable after an I/O error or a timeout: drop it, and the master
    // with it (with Sentinels, the next connection asks them where the master is now).
    std::string why = conn.ctx->errstr;
    TripCircuit();
    ForgetMaster(conn.generation);
    return absl::UnavailableError(absl::StrCat("redis ", conn.server.ToString(), ": ", why));
  }
  return *std::move(r);
}

absl::StatusOr<Reply> RedisClient::Command(const std::vector<std::string>& argv) {
  // Two attempts only when the first found the master demoted (READONLY, nothing was done).
  for (int attempt = 0;; ++attempt) {
    if (CircuitOpen()) {
      return absl::UnavailableError("redis unavailable (recent failure)");
    }
    absl::StatusOr<Connection> conn = Acquire();
    if (!conn.ok()) {
      return conn.status();
    }
    absl::StatusOr<Reply> reply = Run(*conn, argv);
    if (!reply.ok()) {
      return reply.status();
    }
    if (IsReadOnly(*reply) && !options_.sentinels.empty()) {
      ForgetMaster(conn->generation);
      if (attempt == 0) {
        continue;
      }
      return absl::UnavailableError(
          absl::StrCat("redis ", conn->server.ToString(), " is a replica now: ", reply->str));
    }
    if (IsAuthError(*reply)) {
      return AuthError(conn->server, "server", reply->str);  // the connection is not kept
    }
    Release(*std::move(conn));
    if (reply->type == Reply::Type::kError) {
      return absl::InternalError(absl::StrCat("redis: ", reply->str));
    }
    return reply;
  }
}

absl::Status RedisClient::Probe() {
  absl::StatusOr<Connection> conn = Open();
  if (!conn.ok()) {
    return conn.status();
  }
  absl::StatusOr<Reply> reply = Run(*conn, {"PING"});
  if (!reply.ok()) {
    return reply.status();
  }
  if (IsAuthError(*reply)) {
    return AuthError(conn->server, "server", reply->str);
  }
  if (reply->type == Reply::Type::kError) {
    return absl::UnavailableError(
        absl::StrCat("redis ", conn->server.ToString(), ": PING: ", reply->str));
  }
  Release(*std::move(conn));
  return absl::OkStatus();
}

absl::StatusOr<RedisClient::Dedicated> RedisClient::OpenDedicated() {
  absl::StatusOr<Connection> conn = Open();
  if (!conn.ok()) {
    return conn.status();
  }
  return Dedicated{std::move(conn->ctx), std::move(conn->server)};
}

absl::StatusOr<Endpoint> RedisClient::Master() {
  absl::StatusOr<std::pair<Endpoint, uint64_t>> target = Target();
  if (!target.ok()) {
    return target.status();
  }
  return target->first;
}

absl::StatusOr<std::optional<std::string>> RedisClient::Get(absl::string_view key) {
  auto r = Command({"GET", std::string(key)});
  if (!r.ok()) {
    return r.status();
  }
  if (r->type == Reply::Type::kNil) {
    return std::optional<std::string>();
  }
  return std::optional<std::string>(std::move(r->str));
}

absl::Status RedisClient::Set(absl::string_view key, absl::string_view value, absl::Duration ttl) {
  int64_t ms = std::max<int64_t>(1, absl::ToInt64Milliseconds(ttl));
  auto r = Command({"SET", std::string(key), std::string(value), "PX", absl::StrCat(ms)});
  return r.status();
}

absl::Status RedisClient::Del(const std::vector<std::string>& keys) {
  if (keys.empty()) {
    return absl::OkStatus();
  }
  std::vector<std::string> argv = {"DEL"};
  argv.insert(argv.end(), keys.begin(), keys.end());
  return Command(argv).status();
}

}  // namespace kurt::redis
