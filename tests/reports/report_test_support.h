// What the report workflow's integration, fault and end-to-end tests share: seeding links and
// raw clicks, SQL one-liners, reading a topic, and the local stack's tools/stack (child processes,
// free ports and HTTP come from tests/support).
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
#include "tests/support/child_process.h"
#include "tests/support/free_port.h"
#include "tests/support/http_client.h"
#include "tests/support/stack_env.h"
#include "tests/support/topic_reader.h"

namespace kurt::testing {

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

// Where the binaries under test are (CMake passes their paths).
std::string BinaryPath(const std::string& name);

// A directory of its own under the test's temporary directory.
std::string TempDir(const std::string& prefix);

}  // namespace kurt::testing
