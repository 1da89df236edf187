// What the report workflow's integration, fault and end-to-end tests share: child processes of
// the real binaries, free ports, seeding links and raw clicks, SQL one-liners, reading a topic,
// and the local stack's tools/stack.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "platform/kafka/kafka.h"
#include "tests/support/free_port.h"
#include "tests/support/stack_env.h"

namespace kurt::testing {

// A binary run as a child process, its output appended to `log_path`. Stopped (SIGTERM, then
// SIGKILL after 10 s) on destruction.
class ChildProcess {
 public:
  // `env`: NAME=value entries set in the child's environment on top of this process's.
  ChildProcess(std::string path, std::vector<std::string> args, std::string log_path,
               std::vector<std::string> env = {});
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  absl::Status Start();
  pid_t pid() const { return pid_; }
  bool Running();
  // Sends `signal` and waits up to `wait` for the process to end; true if it did.
  bool Stop(int signal, absl::Duration wait = absl::Seconds(10));
  const std::string& log_path() const { return log_path_; }
  // The last `lines` lines of its log (for failure messages).
  std::string LogTail(int lines = 30) const;

 private:
  const std::string path_;
  const std::vector<std::string> args_;
  const std::string log_path_;
  const std::vector<std::string> env_;
  pid_t pid_ = -1;
  bool exited_ = false;
};

// Polls http://127.0.0.1:<port>/readyz until it answers 200.
bool WaitReady(int http_port, absl::Duration timeout);

// One statement on a database; the first column of the first row, as text ("" if none).
std::string QueryValue(const std::string& url, const std::string& sql);
int64_t QueryInt(const std::string& url, const std::string& sql);
void Exec(const std::string& url, const std::string& sql);

// Inserts links `codes` of `account` and, for each, `per_code` raw clicks one `spacing` apart
// from `start` (referrer "https://ref<i%7>.example/", agent "agent<i%3>", client hash
// "client<i%101>"), with generate_series on the server.
void SeedClicks(const std::string& url, const std::string& account,
                const std::vector<std::string>& codes, int64_t per_code, absl::Time start,
                absl::Duration spacing);

// The CSV a CLICKS_CSV report of this account and range must hold (header included), computed
// independently of the worker with string_agg on the primary; only for data whose CSV quoting
// is at most that of empty strings (what SeedClicks and the analytics service write).
std::string ExpectedCsv(const std::string& url, const std::string& account, absl::Time start,
                        absl::Time end);

// Reads a topic from the beginning with a group of its own, in the background.
class TopicReader {
 public:
  explicit TopicReader(const std::string& topic);
  ~TopicReader();
  std::vector<kafka::Message> Messages();
  // Waits until at least `n` messages arrived.
  bool WaitFor(size_t n, absl::Duration timeout);

 private:
  std::mutex mu_;
  std::vector<kafka::Message> messages_;
  std::unique_ptr<kafka::KafkaConsumer> consumer_;
  std::thread thread_;
};

// Where the binaries under test are (CMake passes their paths).
std::string BinaryPath(const std::string& name);

// A directory of its own under the test's temporary directory.
std::string TempDir(const std::string& prefix);

}  // namespace kurt::testing
