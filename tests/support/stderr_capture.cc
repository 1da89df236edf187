#include "tests/support/stderr_capture.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "tests/support/stack_env.h"

namespace kurt::testing {

StderrCapture::StderrCapture()
    : path_(std::filesystem::temp_directory_path() / RandomName("kurt-stderr-")) {
  std::fflush(stderr);
  const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) {
    throw std::runtime_error("cannot create " + path_);
  }
  saved_ = ::dup(STDERR_FILENO);
  ::dup2(fd, STDERR_FILENO);
  ::close(fd);
}

StderrCapture::~StderrCapture() {
  if (saved_ >= 0) {
    Stop();
  }
}

std::string StderrCapture::Stop() {
  if (saved_ < 0) {
    return "";
  }
  std::fflush(stderr);
  ::dup2(saved_, STDERR_FILENO);
  ::close(saved_);
  saved_ = -1;
  std::stringstream text;
  {
    std::ifstream in(path_);
    text << in.rdbuf();
  }
  std::remove(path_.c_str());
  return text.str();
}

}  // namespace kurt::testing
