// The real binaries refuse to start with settings that are unsafe outside development: an empty
// --edge_secret (any binary that has it; kurt-links stands for the services), and the edge
// without an authorizer (--accounts_address). --dev_mode lets both start. The checks run before a
// binary connects to anything, so no server is needed here. The edge also refuses TLS files that
// OpenSSL cannot use.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace {

struct Outcome {
  bool exited = false;  // false: still running when the wait ended (then it was stopped)
  int code = -1;
  std::string output;
};

// Runs `binary` with `args` and only `env` as its environment, for up to `wait`.
Outcome RunBinary(const std::string& binary, const std::vector<std::string>& args,
                  const std::vector<std::string>& env, absl::Duration wait) {
  int fds[2];
  EXPECT_EQ(pipe2(fds, O_CLOEXEC), 0);
  // Made before fork: the child of a threaded process may only call async-signal-safe functions.
  std::vector<char*> argv = {const_cast<char*>(binary.c_str())};
  argv.reserve(args.size() + 2);
  for (const std::string& a : args) {
    argv.push_back(const_cast<char*>(a.c_str()));
  }
  argv.push_back(nullptr);
  std::vector<char*> envp;
  envp.reserve(env.size() + 1);
  for (const std::string& e : env) {
    envp.push_back(const_cast<char*>(e.c_str()));
  }
  envp.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    execve(binary.c_str(), argv.data(), envp.data());
    _exit(127);
  }
  close(fds[1]);
  Outcome out;
  int status = 0;
  absl::Time deadline = absl::Now() + wait;
  while (absl::Now() < deadline) {
    if (waitpid(pid, &status, WNOHANG) == pid) {
      out.exited = true;
      break;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  if (!out.exited) {
    kill(pid, SIGTERM);
    waitpid(pid, &status, 0);
  }
  out.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof(buf))) > 0) {
    out.output.append(buf, static_cast<size_t>(n));
  }
  close(fds[0]);
  return out;
}

TEST(StartupTest, EdgeWithoutAnAuthorizerRefusesToStart) {
  Outcome o = RunBinary(KURT_EDGE_BINARY, {"--edge_port=0"}, {"KURT_EDGE_SECRET=s3cret"},
                        absl::Seconds(20));
  ASSERT_TRUE(o.exited) << o.output;
  EXPECT_EQ(o.code, 2) << o.output;
  EXPECT_NE(o.output.find("--accounts_address"), std::string::npos) << o.output;
}

TEST(StartupTest, EdgeWithoutASecretRefusesToStart) {
  Outcome o = RunBinary(KURT_EDGE_BINARY, {"--edge_port=0", "--accounts_address=127.0.0.1:1"}, {},
                        absl::Seconds(20));
  ASSERT_TRUE(o.exited) << o.output;
  EXPECT_EQ(o.code, 2) << o.output;
  EXPECT_NE(o.output.find("--edge_secret"), std::string::npos) << o.output;
}

TEST(StartupTest, ServiceWithoutASecretRefusesToStart) {
  // The database URL leads nowhere: the check comes before any connection.
  Outcome o = RunBinary(
      KURT_LINKS_BINARY,
      {"--grpc_port=0", "--metrics_port=-1", "--pg_primary_url=postgresql://x@127.0.0.1:1/x"}, {},
      absl::Seconds(20));
  ASSERT_TRUE(o.exited) << o.output;
  EXPECT_EQ(o.code, 2) << o.output;
  EXPECT_NE(o.output.find("--edge_secret"), std::string::npos) << o.output;
}

TEST(StartupTest, EdgeWithATlsKeyThatIsNotItsCertificatesRefusesToStart) {
  // Files that LoadTls takes (PEM blocks, all three), but OpenSSL would not: the edge says so at
  // start rather than failing every connection of its h2 client.
  const std::string dir = absl::StrCat(testing::TempDir(), "kurt-startup-certs-", getpid());
  const std::string certs = absl::StrCat(KURT_CERTS_TOOL, " ", dir, " kurt-edge kurt-links");
  ASSERT_EQ(std::system(certs.c_str()), 0) << certs;
  Outcome o =
      RunBinary(KURT_EDGE_BINARY,
                {"--edge_port=0", "--upstream_host=", "--tls_cert=" + dir + "/kurt-edge.crt",
                 "--tls_key=" + dir + "/kurt-links.key", "--tls_ca=" + dir + "/ca.crt"},
                {"KURT_DEV_MODE=true"}, absl::Seconds(20));
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(o.exited) << o.output;
  EXPECT_EQ(o.code, 2) << o.output;
  EXPECT_NE(o.output.find("--tls_key: key values mismatch"), std::string::npos) << o.output;
}

TEST(StartupTest, DevModeLetsTheEdgeStartWithNeither) {
  Outcome o = RunBinary(KURT_EDGE_BINARY, {"--edge_port=0", "--upstream_host="},
                        {"KURT_DEV_MODE=true"}, absl::Seconds(2));
  EXPECT_FALSE(o.exited) << "exited with " << o.code << ": " << o.output;
  EXPECT_NE(o.output.find("edge listening"), std::string::npos) << o.output;
}

}  // namespace
