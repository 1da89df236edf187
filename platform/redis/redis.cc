#include "platform/redis/redis.h"

#include <hiredis/hiredis.h>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "platform/core/log.h"

ABSL_FLAG(std::string, redis_url, "redis://127.0.0.1:16379", "Redis");

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

}  // namespace

absl::StatusOr<Options> Options::FromUrl(absl::string_view url) {
  Options o;
  absl::string_view rest = url;
  if (!absl::ConsumePrefix(&rest, "redis://")) {
    return absl::InvalidArgumentError(absl::StrCat("redis URL must start with redis://: ", url));
  }
  absl::string_view hostport = rest.substr(0, rest.find('/'));
  absl::string_view db = rest.size() > hostport.size() ? rest.substr(hostport.size() + 1) : "";
  size_t colon = hostport.rfind(':');
  if (colon == absl::string_view::npos) {
    o.host = std::string(hostport);
  } else {
    o.host = std::string(hostport.substr(0, colon));
    if (!absl::SimpleAtoi(hostport.substr(colon + 1), &o.port) || o.port <= 0 || o.port > 65535) {
      return absl::InvalidArgumentError(absl::StrCat("bad port in redis URL: ", url));
    }
  }
  if (o.host.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("no host in: ", url));
  }
  if (!db.empty() && !absl::SimpleAtoi(db, &o.db)) {
    return absl::InvalidArgumentError(absl::StrCat("bad database number in redis URL: ", url));
  }
  return o;
}

void RedisClient::ContextDeleter::operator()(redisContext* c) const { redisFree(c); }

RedisClient::RedisClient(Options options) : options_(std::move(options)) {}

RedisClient::~RedisClient() = default;

bool RedisClient::CircuitOpen() const {
  return absl::GetCurrentTimeNanos() < circuit_open_until_ns_.load(std::memory_order_relaxed);
}

void RedisClient::TripCircuit() {
  circuit_open_until_ns_ =
      absl::GetCurrentTimeNanos() + absl::ToInt64Nanoseconds(options_.open_circuit_for);
}

absl::StatusOr<RedisClient::ContextPtr> RedisClient::Acquire() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      ContextPtr c = std::move(idle_.back());
      idle_.pop_back();
      return c;
    }
  }
  if (CircuitOpen()) {
    return absl::UnavailableError("redis unavailable (recent failure)");
  }
  ContextPtr c(redisConnectWithTimeout(options_.host.c_str(), options_.port,
                                       absl::ToTimeval(options_.connect_timeout)));
  if (!c || c->err) {
    std::string why = c ? c->errstr : "out of memory";
    TripCircuit();
    return absl::UnavailableError(
        absl::StrCat("redis ", options_.host, ":", options_.port, ": ", why));
  }
  redisSetTimeout(c.get(), absl::ToTimeval(options_.command_timeout));
  if (options_.db != 0) {
    auto* r = static_cast<redisReply*>(redisCommand(c.get(), "SELECT %d", options_.db));
    bool ok = r && r->type != REDIS_REPLY_ERROR;
    if (r) {
      freeReplyObject(r);
    }
    if (!ok) {
      return absl::UnavailableError("redis: SELECT failed");
    }
  }
  return c;
}

void RedisClient::Release(ContextPtr ctx) {
  std::lock_guard<std::mutex> lock(mu_);
  if (static_cast<int>(idle_.size()) < options_.max_connections) {
    idle_.push_back(std::move(ctx));
  }
}

absl::StatusOr<Reply> RedisClient::Command(const std::vector<std::string>& argv) {
  if (CircuitOpen()) {
    return absl::UnavailableError("redis unavailable (recent failure)");
  }
  auto ctx = Acquire();
  if (!ctx.ok()) {
    return ctx.status();
  }
  std::vector<const char*> args;
  std::vector<size_t> lens;
  args.reserve(argv.size());
  lens.reserve(argv.size());
  for (const std::string& a : argv) {
    args.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* r = static_cast<redisReply*>(
      redisCommandArgv(ctx->get(), static_cast<int>(args.size()), args.data(), lens.data()));
  if (r == nullptr) {
    // The connection is unusable after an I/O error or a timeout: drop it.
    std::string why = (*ctx)->errstr;
    TripCircuit();
    // Idle connections were opened to the same server: they are likely dead too.
    {
      std::lock_guard<std::mutex> lock(mu_);
      idle_.clear();
    }
    return absl::UnavailableError(absl::StrCat("redis: ", why));
  }
  Reply reply = Convert(r);
  freeReplyObject(r);
  Release(std::move(*ctx));
  if (reply.type == Reply::Type::kError) {
    return absl::InternalError(absl::StrCat("redis: ", reply.str));
  }
  return reply;
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
