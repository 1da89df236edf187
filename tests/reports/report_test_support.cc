#include "tests/reports/report_test_support.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "platform/pg/pg.h"

namespace kurt::testing {

ChildProcess::ChildProcess(std::string path, std::vector<std::string> args, std::string log_path,
                           std::vector<std::string> env)
    : path_(std::move(path)),
      args_(std::move(args)),
      log_path_(std::move(log_path)),
      env_(std::move(env)) {}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && !exited_ && !Stop(SIGTERM)) {
    Stop(SIGKILL);
  }
}

absl::Status ChildProcess::Start() {
  if (::access(path_.c_str(), X_OK) != 0) {
    return absl::NotFoundError(absl::StrCat(path_, " is not built"));
  }
  // Made before fork: the child of a threaded process may only call async-signal-safe functions.
  std::vector<std::string> environment = env_;
  for (char** e = environ; *e != nullptr; ++e) {
    absl::string_view entry(*e);
    const bool overridden = std::any_of(env_.begin(), env_.end(), [&](const std::string& mine) {
      return entry.substr(0, entry.find('=') + 1) == mine.substr(0, mine.find('=') + 1);
    });
    if (!overridden) {
      environment.emplace_back(entry);
    }
  }
  std::vector<char*> envp;
  envp.reserve(environment.size() + 1);
  for (std::string& entry : environment) {
    envp.push_back(entry.data());
  }
  envp.push_back(nullptr);
  std::vector<char*> argv;
  argv.reserve(args_.size() + 2);
  argv.push_back(const_cast<char*>(path_.c_str()));
  for (const std::string& a : args_) {
    argv.push_back(const_cast<char*>(a.c_str()));
  }
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) {
    return absl::InternalError("fork failed");
  }
  if (pid == 0) {
    int fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    // InitProcess blocks SIGTERM in the parent test's threads? Not here: a fresh exec.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(path_.c_str(), argv.data(), envp.data());
    _exit(127);
  }
  pid_ = pid;
  exited_ = false;
  return absl::OkStatus();
}

bool ChildProcess::Running() {
  if (pid_ <= 0 || exited_) {
    return false;
  }
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exited_ = true;
  }
  return !exited_;
}

bool ChildProcess::Stop(int signal, absl::Duration wait) {
  if (!Running()) {
    return true;
  }
  ::kill(pid_, signal);
  const absl::Time deadline = absl::Now() + wait;
  while (absl::Now() < deadline) {
    if (!Running()) {
      return true;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return !Running();
}

std::string ChildProcess::LogTail(int lines) const {
  std::ifstream in(log_path_);
  std::vector<std::string> all;
  for (std::string line; std::getline(in, line);) {
    all.push_back(line);
  }
  size_t from = all.size() > static_cast<size_t>(lines) ? all.size() - lines : 0;
  return absl::StrJoin(all.begin() + static_cast<std::ptrdiff_t>(from), all.end(), "\n");
}

bool WaitReady(int http_port, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(http_port));
    bool ready = false;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
      std::string req = "GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
      (void)!::write(fd, req.data(), req.size());
      char buf[64] = {0};
      ssize_t n = ::read(fd, buf, sizeof(buf) - 1);
      ready = n > 12 && std::string(buf, n).find(" 200 ") != std::string::npos;
    }
    ::close(fd);
    if (ready) {
      return true;
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  return false;
}

namespace {

pg::PoolOptions Pool(const std::string& url) {
  pg::PoolOptions o;
  o.url = url;
  o.max_connections = 1;
  o.statement_timeout = absl::Seconds(120);
  return o;
}

void Check(const absl::Status& s, const std::string& what) {
  if (!s.ok()) {
    throw std::runtime_error(absl::StrCat(what, ": ", s.ToString()));
  }
}

}  // namespace

std::string QueryValue(const std::string& url, const std::string& sql) {
  pg::PgPool pool(Pool(url));
  std::string out;
  Check(pool.Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    pqxx::result r = tx.exec(sql);
    if (!r.empty() && !r[0][0].is_null()) {
      out = r[0][0].as<std::string>();
    }
  }),
        sql);
  return out;
}

int64_t QueryInt(const std::string& url, const std::string& sql) {
  std::string v = QueryValue(url, sql);
  return v.empty() ? 0 : std::stoll(v);
}

void Exec(const std::string& url, const std::string& sql) {
  pg::PgPool pool(Pool(url));
  Check(pool.Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    tx.exec(sql);
  }),
        sql);
}

void SeedClicks(const std::string& url, const std::string& account,
                const std::vector<std::string>& codes, int64_t per_code, absl::Time start,
                absl::Duration spacing) {
  pg::PgPool pool(Pool(url));
  Check(pool.Transact([&](pqxx::work& tx) {
    for (const std::string& code : codes) {
      tx.exec_params(
          "INSERT INTO links (code, account_id, target_url) VALUES ($1, $2, "
          "'https://example.com/' || $1) ON CONFLICT (code) DO NOTHING",
          code, account);
      tx.exec_params(
          "INSERT INTO clicks (code, click_time, event_id, referrer, user_agent, "
          "client_hash, kafka_partition, kafka_offset) "
          "SELECT $1, to_timestamp($2::double precision) + i * ($3::bigint * interval "
          "'1 microsecond'), $1 || '-' || i, 'https://ref' || (i % 7) || '.example/', "
          "'agent' || (i % 3), 'client' || (i % 101), 0, i "
          "FROM generate_series(0, $4::bigint - 1) AS i",
          code, absl::ToDoubleSeconds(start - absl::UnixEpoch()),
          absl::ToInt64Microseconds(spacing), per_code);
    }
  }),
        "seeding clicks");
}

std::string ExpectedCsv(const std::string& url, const std::string& account, absl::Time start,
                        absl::Time end) {
  pg::PgPool pool(Pool(url));
  std::string out = "code,click_time,referrer,user_agent,client_hash,event_id\n";
  Check(pool.Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    tx.exec("SET TimeZone = 'UTC'");
    pqxx::result r = tx.exec_params(
        // COPY's CSV quotes empty strings (an unquoted empty field is NULL).
        "SELECT string_agg(concat_ws(',', c.code, c.click_time::text, "
        "CASE c.referrer WHEN '' THEN '\"\"' ELSE c.referrer END, "
        "CASE c.user_agent WHEN '' THEN '\"\"' ELSE c.user_agent END, "
        "CASE c.client_hash WHEN '' THEN '\"\"' ELSE c.client_hash END, c.event_id), E'\\n' "
        "ORDER BY c.code, c.click_time, c.event_id) "
        "FROM clicks c JOIN links l ON l.code = c.code WHERE l.account_id = $1 AND "
        "c.click_time >= to_timestamp($2::double precision) AND "
        "c.click_time < to_timestamp($3::double precision)",
        account, absl::ToDoubleSeconds(start - absl::UnixEpoch()),
        absl::ToDoubleSeconds(end - absl::UnixEpoch()));
    if (!r[0][0].is_null()) {
      absl::StrAppend(&out, r[0][0].as<std::string>(), "\n");
    }
  }),
        "expected CSV");
  return out;
}

TopicReader::TopicReader(const std::string& topic) {
  kafka::ConsumerOptions o;
  o.brokers = KafkaBrokers();
  o.group_id = RandomName("kurt-test-reader-");
  o.topics = {topic};
  o.auto_offset_reset = "earliest";
  auto c = kafka::KafkaConsumer::Create(o, [this](const std::vector<kafka::Message>& batch) {
    std::lock_guard<std::mutex> lock(mu_);
    messages_.insert(messages_.end(), batch.begin(), batch.end());
    return absl::OkStatus();
  });
  if (!c.ok()) {
    throw std::runtime_error(c.status().ToString());
  }
  consumer_ = std::move(*c);
  thread_ = std::thread([this] { consumer_->Run(); });
}

TopicReader::~TopicReader() {
  consumer_->Stop();
  thread_.join();
}

std::vector<kafka::Message> TopicReader::Messages() {
  std::lock_guard<std::mutex> lock(mu_);
  return messages_;
}

bool TopicReader::WaitFor(size_t n, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (messages_.size() >= n) {
        return true;
      }
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return false;
}

std::string BinaryPath(const std::string& name) { return absl::StrCat(KURT_BINARY_DIR, "/", name); }

std::string TempDir(const std::string& prefix) {
  std::string dir =
      absl::StrCat(std::filesystem::temp_directory_path().string(), "/", RandomName(prefix));
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace kurt::testing
