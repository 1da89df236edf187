// Test helper: holds a service's checks of a request field to the kurt.api.v1.rules that the
// field's proto declares (and the edge publishes in its OpenAPI document). Probes are built from
// the rules (values at and one past every length and numeric bound, the rules' example) plus
// values a test adds; whether each is allowed is decided by the rules alone (the pattern read as
// ECMAScript, the dialect of OpenAPI, by std::regex), never by the test. A change to either side,
// the proto or the service, makes the two disagree on some probe and fails the test.
#pragma once

#include <cstdint>
#include <functional>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "gtest/gtest.h"
#include "kurt/api/v1/field_rules.pb.h"
#include "platform/core/text.h"

namespace kurt::rules_testing {

// The rules of `message`'s field `field` (the test fails when it has none).
inline const api::v1::FieldRules& RulesOf(const google::protobuf::Descriptor* message,
                                          const std::string& field) {
  const google::protobuf::FieldDescriptor* f = message->FindFieldByName(field);
  EXPECT_NE(f, nullptr) << message->full_name() << " has no field " << field;
  EXPECT_TRUE(f != nullptr && f->options().HasExtension(api::v1::rules))
      << message->full_name() << "." << field << " declares no kurt.api.v1.rules";
  return f == nullptr ? api::v1::FieldRules::default_instance()
                      : f->options().GetExtension(api::v1::rules);
}

// Whether the rules allow the string `value`.
inline bool Allows(const api::v1::FieldRules& rules, const std::string& value) {
  // Code points, as JSON Schema's minLength and maxLength count.
  const size_t length = platform::Utf8Length(value);
  if (rules.has_min_length() && length < rules.min_length()) {
    return false;
  }
  if (rules.has_max_length() && length > rules.max_length()) {
    return false;
  }
  return rules.pattern().empty() ||
         std::regex_search(value, std::regex(rules.pattern(), std::regex::ECMAScript));
}

inline bool Allows(const api::v1::FieldRules& rules, int64_t value) {
  return !(rules.has_minimum() && value < rules.minimum()) &&
         !(rules.has_maximum() && value > rules.maximum());
}

// The example, then the example cut or padded (repeating its last character, or `fill`) to each
// length bound and one past it, then `extra`.
inline std::vector<std::string> StringProbes(const api::v1::FieldRules& rules,
                                             std::vector<std::string> extra, char fill = 0) {
  std::vector<std::string> out;
  std::string base = rules.example().empty() ? std::string("x") : rules.example();
  if (fill == 0) {
    fill = base.back();
  }
  auto sized = [&](size_t n) {
    std::string s = base.substr(0, n);
    s.resize(n, fill);
    return s;
  };
  if (!rules.example().empty()) {
    out.push_back(rules.example());
  }
  for (uint32_t bound : {rules.has_min_length() ? rules.min_length() : 0u,
                         rules.has_max_length() ? rules.max_length() : 0u}) {
    if (bound == 0) {
      continue;
    }
    out.push_back(sized(bound - 1));
    out.push_back(sized(bound));
    out.push_back(sized(bound + 1));
  }
  for (std::string& e : extra) {
    out.push_back(std::move(e));
  }
  return out;
}

// Drives `accepts` (true: the service took the value; false: it refused it as malformed) with
// every probe and expects it to agree with the rules; counts the probes of each kind seen, so a
// test can make sure both were tried.
inline void ExpectServiceAgrees(const api::v1::FieldRules& rules,
                                const std::vector<std::string>& probes,
                                const std::function<bool(const std::string&)>& accepts) {
  int allowed = 0;
  int refused = 0;
  for (const std::string& p : probes) {
    const bool allow = Allows(rules, p);
    (allow ? allowed : refused)++;
    EXPECT_EQ(accepts(p), allow) << "'" << p << "' (" << platform::Utf8Length(p)
                                 << " characters) is " << (allow ? "allowed" : "refused")
                                 << " by the rules " << rules.ShortDebugString()
                                 << " but not by the service";
  }
  EXPECT_GT(allowed, 0) << "no probe the rules allow";
  EXPECT_GT(refused, 0) << "no probe the rules refuse";
}

inline void ExpectServiceAgrees(const api::v1::FieldRules& rules,
                                const std::function<bool(int64_t)>& accepts) {
  std::vector<int64_t> probes = {0, 1, 20};
  if (rules.has_minimum()) {
    probes.insert(probes.end(), {rules.minimum() - 1, rules.minimum(), rules.minimum() + 1});
  }
  if (rules.has_maximum()) {
    probes.insert(probes.end(), {rules.maximum() - 1, rules.maximum(), rules.maximum() + 1});
  }
  for (int64_t p : probes) {
    EXPECT_EQ(accepts(p), Allows(rules, p))
        << p << " is " << (Allows(rules, p) ? "allowed" : "refused") << " by the rules "
        << rules.ShortDebugString() << " but not by the service";
  }
}

}  // namespace kurt::rules_testing
