#include "tests/support/stderr_capture.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "gtest/gtest.h"

namespace kurt::testing {
namespace {

// Which file the process's descriptor 2 is now (device and inode), to see it restored.
std::string StderrIdentity() {
  struct stat st {};
  if (::fstat(STDERR_FILENO, &st) != 0) {
    return "closed";
  }
  return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
}

TEST(StderrCaptureTest, CollectsWhatIsWrittenUntilStopped) {
  const std::string before = StderrIdentity();
  StderrCapture capture;
  EXPECT_NE(StderrIdentity(), before);
  std::fprintf(stderr, "first line\n");
  ASSERT_EQ(::write(STDERR_FILENO, "raw write\n", 10), 10);
  EXPECT_EQ(capture.Stop(), "first line\nraw write\n");
  EXPECT_EQ(StderrIdentity(), before);
  EXPECT_EQ(capture.Stop(), "") << "a second Stop has nothing more";
}

TEST(StderrCaptureTest, DestructionWithoutStopRestoresStderr) {
  const std::string before = StderrIdentity();
  {
    StderrCapture capture;
    std::fprintf(stderr, "abandoned\n");
  }
  EXPECT_EQ(StderrIdentity(), before);
  StderrCapture again;
  std::fprintf(stderr, "second capture\n");
  EXPECT_EQ(again.Stop(), "second capture\n");
}

}  // namespace
}  // namespace kurt::testing
