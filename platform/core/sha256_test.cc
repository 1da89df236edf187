#include "platform/core/sha256.h"

#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace kurt::platform {
namespace {

// FIPS 180-2's examples and a long input, from several threads at once (each keeps its own
// context): the digests are SHA-256's.
TEST(Sha256Test, KnownDigestsFromSeveralThreads) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
      {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
      {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
      {std::string(1000000, 'a'),
       "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
  };
  std::vector<std::thread> threads;
  threads.reserve(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&cases] {
      for (int round = 0; round < 50; ++round) {
        for (const auto& [input, hex] : cases) {
          EXPECT_EQ(Sha256Hex(input), hex);
        }
      }
    });
  }
  for (std::thread& t : threads) {
    t.join();
  }
  const Sha256Digest raw = Sha256("abc");
  EXPECT_EQ(raw[0], 0xba);
  EXPECT_EQ(raw[31], 0xad);
}

}  // namespace
}  // namespace kurt::platform
