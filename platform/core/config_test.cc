#include "platform/core/config.h"

#include <csignal>
#include <cstdlib>

#include "gtest/gtest.h"

ABSL_FLAG(int, config_test_answer, 1, "a flag only this test uses");
ABSL_FLAG(std::string, config_test_name, "default", "a flag only this test uses");

namespace kurt::platform {
namespace {

TEST(ConfigTest, EnvTwinIsPrefixedAndUpperCased) {
  EXPECT_EQ(EnvTwinName("pg_primary_url"), "KURT_PG_PRIMARY_URL");
  EXPECT_EQ(EnvTwinName("grpc_port"), "KURT_GRPC_PORT");
}

TEST(ConfigTest, EnvironmentSetsFlagsAndCommandLineWins) {
  setenv("KURT_CONFIG_TEST_ANSWER", "42", 1);
  setenv("KURT_CONFIG_TEST_NAME", "from-env", 1);
  std::string arg0 = "prog", arg1 = "--config_test_name=from-flag";
  char* argv[] = {arg0.data(), arg1.data()};
  InitProcess(2, argv, "config_test", "test");
  EXPECT_EQ(absl::GetFlag(FLAGS_config_test_answer), 42);
  EXPECT_EQ(absl::GetFlag(FLAGS_config_test_name), "from-flag");
  unsetenv("KURT_CONFIG_TEST_ANSWER");
  unsetenv("KURT_CONFIG_TEST_NAME");
}

TEST(ConfigDeathTest, BadEnvironmentValueExitsNamingTheVariable) {
  EXPECT_EXIT(
      {
        setenv("KURT_CONFIG_TEST_ANSWER", "forty-two", 1);
        std::string arg0 = "prog";
        char* argv[] = {arg0.data()};
        InitProcess(1, argv, "config_test", "test");
      },
      testing::ExitedWithCode(2), "KURT_CONFIG_TEST_ANSWER");
}

TEST(ConfigDeathTest, ACrashSaysWhichSignalAndWhereThenDiesOfIt) {
  // Without a word in the log, a crashed service could not be told from one killed from outside.
  EXPECT_EXIT(
      {
        std::string arg0 = "prog";
        char* argv[] = {arg0.data()};
        InitProcess(1, argv, "config_test", "test");
        std::raise(SIGSEGV);
      },
      testing::KilledBySignal(SIGSEGV),
      "SIGSEGV received at time=[0-9]+[^\n]*\nPC: @ +0x[0-9a-f]+(.|\n)*the crashing thread's "
      "stack:\n([^\n]*\\[0x[0-9a-f]+\\]\n){3,}");
}

}  // namespace
}  // namespace kurt::platform
