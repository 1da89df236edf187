// Test helper: random kurt.testing.v1.Thing messages for the JSON parser's and printer's
// differential tests (json_parser_test.cc, json_printer_test.cc).
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "kurt/testing/v1/echo.pb.h"

namespace kurt::edge {

class RandomThings {
 public:
  explicit RandomThings(uint64_t seed) : rng_(seed) {}

  int Pick(int n) { return static_cast<int>(rng_() % static_cast<uint64_t>(n)); }
  uint64_t Bits() { return rng_(); }

  // A Thing with each field set or not at random. `every_kind` adds the fields the JSON parser
  // leaves to protobuf's (bytes, Duration, maps whose keys are not strings); FieldMask and Struct
  // are never set.
  kurt::testing::v1::Thing Thing(bool every_kind) {
    using kurt::testing::v1::Color;
    kurt::testing::v1::Thing thing;
    if (Pick(2)) {
      thing.set_id(String());
    }
    if (Pick(2)) {
      thing.set_count(static_cast<int32_t>(rng_()));
    }
    if (Pick(2)) {
      thing.set_big(static_cast<int64_t>(rng_()));
    }
    if (Pick(2)) {
      thing.set_ubig(rng_());
    }
    if (Pick(2)) {
      thing.set_flag(Pick(2));
    }
    if (Pick(2)) {
      thing.set_ratio(static_cast<double>(static_cast<int64_t>(rng_())) / 1e6);
    }
    if (Pick(2)) {
      thing.set_score(static_cast<float>(Pick(100000)) / 7.0f);
    }
    if (Pick(2)) {
      thing.set_color(static_cast<Color>(Pick(3)));
    }
    if (Pick(2)) {
      Inner(thing.mutable_inner());
    }
    for (int i = Pick(3); i > 0; --i) {
      thing.add_tags(String());
    }
    for (int i = Pick(3); i > 0; --i) {
      thing.add_colors(static_cast<Color>(Pick(3)));
    }
    for (int i = Pick(3); i > 0; --i) {
      thing.add_bigs(static_cast<int64_t>(rng_()));
    }
    if (Pick(2)) {
      thing.mutable_when()->set_seconds(Pick(2'000'000'000));
      thing.mutable_when()->set_nanos(Pick(1000) * 1000);
    }
    if (Pick(3) == 0) {
      thing.mutable_maybe_big()->set_value(static_cast<int64_t>(rng_()));
    }
    if (Pick(3) == 0) {
      thing.mutable_maybe_name()->set_value(String());
    }
    if (Pick(3) == 0) {
      thing.mutable_maybe_flag()->set_value(Pick(2));
    }
    if (Pick(2)) {
      thing.set_display_name(String());
    }
    for (int i = Pick(3); i > 0; --i) {
      (*thing.mutable_labels())[String()] = String();
    }
    for (int i = Pick(3); i > 0; --i) {
      Inner(thing.add_inners());
    }
    if (Pick(3) == 0) {
      thing.set_choice_text("t");
    } else if (Pick(2) == 0) {
      thing.set_choice_number(Pick(100));
    }
    if (Pick(2)) {
      thing.set_delta(static_cast<int32_t>(rng_()));
    }
    if (Pick(2)) {
      thing.set_fixed(rng_());
    }
    if (Pick(2)) {
      thing.set_small(static_cast<uint32_t>(rng_()));
    }
    if (every_kind) {
      if (Pick(2)) {
        thing.set_blob(std::string("\0\xff\x10", Pick(4)));
      }
      if (Pick(3) == 0) {
        thing.mutable_ttl()->set_seconds(Pick(100000) - 50000);
        thing.mutable_ttl()->set_nanos(0);
      }
      for (int i = Pick(3); i > 0; --i) {
        (*thing.mutable_names_by_id())[static_cast<int64_t>(rng_())] = String();
      }
      for (int i = Pick(3); i > 0; --i) {
        (*thing.mutable_counts_by_flag())[Pick(2) == 1] = static_cast<int32_t>(rng_());
      }
    }
    return thing;
  }

 private:
  std::string String() {
    static const std::vector<std::string> kStrings = {
        "", "a", "quote\"", "back\\slash", "nl\n", "ctl\x01", "é", "😀", "<html>", "\xE2\x80\xA8"};
    return kStrings[Pick(static_cast<int>(kStrings.size()))];
  }
  void Inner(kurt::testing::v1::Inner* inner) {
    if (Pick(2)) {
      inner->set_name(String());
    }
    for (int i = Pick(4); i > 0; --i) {
      inner->add_values(static_cast<int32_t>(rng_()));
    }
    if (Pick(2)) {
      inner->set_color(static_cast<kurt::testing::v1::Color>(Pick(3)));
    }
    if (Pick(3) == 0) {
      inner->mutable_child()->set_name("c");
    }
  }

  std::mt19937_64 rng_;
};

}  // namespace kurt::edge
