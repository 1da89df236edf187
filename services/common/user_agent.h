// What a User-Agent says about the visitor's device and operating system, by uap-core's regexes
// (Debian's uap-core: regexes.yaml, read with yaml-cpp, run with RE2): analytics asks whether a
// click is a bot's (bot_classifier.h), links whether a redirect rule's device or os condition
// holds (redirect_rules.h). uap-core names families ("iPhone", "Samsung SM-T510", "Mac OS X"),
// not kinds of device: Classify derives the kind, as docs/links.md states.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace re2 {
class RE2;
}

namespace kurt::user_agent {

// The one list of link-preview fetchers: what chat apps, social sites and embedding services send
// when someone pastes a link, to draw its card. Nobody follows the link then. uap-core calls
// some of them Spider and not others (Discordbot, TelegramBot and Iframely are not); they are
// all here so that none depends on uap-core's version. Matched as substrings of the User-Agent,
// ignoring case.
inline constexpr absl::string_view kPreviewAgents[] = {
    "Slackbot",             // Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)
    "Slack-ImgProxy",       // Slack's image proxy
    "Twitterbot",           // X / Twitter cards
    "facebookexternalhit",  // Facebook, Messenger, Instagram
    "Facebot",              // Facebook
    "Discordbot",           // Discord embeds
    "TelegramBot",          // Telegram link previews
    "WhatsApp",             // WhatsApp/2.x previews
    "LinkedInBot",          // LinkedIn
    "SkypeUriPreview",      // Skype and Teams
    "MicrosoftPreview",     // Teams, Outlook
    "Iframely",             // Iframely embeds (used by Notion, Medium, ...)
    "Embedly",              // Embedly
    "Pinterestbot",         // Pinterest
    "redditbot",            // Reddit
    "Applebot",             // iMessage previews, Siri suggestions
    "vkShare",              // VK
    "Mastodon/",            // Mastodon servers fetching a status's link card
    "Bluesky Cardyb",       // Bluesky link cards
    "Google-PageRenderer",  // Google's preview renderer
    "bitlybot",             // Bitly's checker
};

// Whether `user_agent` names one of kPreviewAgents.
bool IsPreviewAgent(absl::string_view user_agent);

// uap-core's device and os parsers, compiled with RE2. Immutable once loaded; any thread may call
// any method.
class UapRegexes {
 public:
  // A parser RE2 could not compile (uap-core writes for PCRE; RE2 has no look-around nor
  // backreferences), left out.
  struct Skipped {
    std::string list;  // "device_parsers" or "os_parsers"
    int index = 0;     // in that list
    std::string regex;
    std::string error;
  };

  // Reads `path` (uap-core's regexes.yaml) and compiles every device and os parser. Parsers RE2
  // refuses are skipped (skipped() lists them; each is logged once); a file that cannot be read,
  // is not YAML, or lacks either list is an error naming the file.
  static absl::StatusOr<std::unique_ptr<UapRegexes>> Load(const std::string& path);
  ~UapRegexes();

  // The family of the first device (os) parser matching `user_agent`, as every uap-core port
  // computes it (its replacement with $1..$9 filled in, or group 1), trimmed; "Other" when none
  // matches.
  std::string DeviceFamily(absl::string_view user_agent) const;
  std::string OsFamily(absl::string_view user_agent) const;
  // DeviceFamily(user_agent) == "Spider".
  bool IsSpider(absl::string_view user_agent) const;

  size_t device_parsers() const;
  size_t os_parsers() const;
  const std::vector<Skipped>& skipped() const { return skipped_; }

 private:
  struct Parser;
  UapRegexes();
  // The family the first parser of `parsers` that matches gives; "Other" when none does.
  static std::string Family(const std::vector<Parser>& parsers, absl::string_view user_agent);

  std::vector<Parser> devices_;
  std::vector<Parser> oses_;
  std::vector<Skipped> skipped_;
};

// The kinds a redirect rule can ask for. kUnknown: nothing the agent says tells (no agent, or
// one of a kind none of the others is, such as a TV or a command-line client).
enum class Device : uint8_t { kUnknown, kMobile, kTablet, kDesktop, kBot };
enum class Os : uint8_t { kOther, kAndroid, kIos, kWindows, kMacos, kLinux, kChromeos };

// The names the API uses ("mobile", "ios"...); "" for kUnknown and kOther.
absl::string_view DeviceName(Device device);
absl::string_view OsName(Os os);

struct Classification {
  Device device = Device::kUnknown;
  Os os = Os::kOther;
};

// The device kind and the os of `user_agent`, by these rules, the first that holds deciding:
// - bot: a preview agent (kPreviewAgents) or a "Spider" device;
// - tablet: the device family is "iPad", "Kindle" or names a tablet ("Generic Tablet",
//   "...Tablet..."), or the os is Android and the agent lacks the "Mobile" token (Android phones'
//   browsers send it, tablets' do not: Google's own guidance for sites);
// - mobile: the family is "iPhone", "iPod", a generic smartphone or feature phone, the os is iOS,
//   Android, Windows Phone, KaiOS..., or the agent holds "Mobi" (MDN's advice);
// - desktop: the os is Windows, macOS, Linux or Chrome OS;
// - else unknown.
// The os maps uap-core's families: iOS; Android; Windows (not Windows Phone nor Mobile); Mac OS X,
// macOS and Mac OS; Chrome OS; Linux and the distributions uap-core names; else other.
// `regexes` null: only the preview agents and the tokens are read.
Classification Classify(const UapRegexes* regexes, absl::string_view user_agent);

// Classify's answers for the agents seen last (a bounded LRU: a few thousand agents make most of
// the traffic, and a new one walks hundreds of regexes, tens of microseconds). Thread-safe: the
// entries are split over shards by hash, each under its own mutex, so that concurrent redirects
// seldom wait on one another. Lives as long as its owner; `regexes` outlives it.
class ClassificationCache {
 public:
  explicit ClassificationCache(const UapRegexes* regexes, size_t max_entries = 20000);

  Classification Get(absl::string_view user_agent);

  struct Counts {
    int64_t hits = 0;
    int64_t misses = 0;
  };
  // The answers found cached and those classified, since the cache was made.
  Counts counts() const;

 private:
  static constexpr size_t kShards = 16;
  struct Shard {
    mutable std::mutex mu;
    // Most recently used first; index's keys point into these strings (list nodes do not move).
    std::list<std::pair<std::string, Classification>> order;
    absl::flat_hash_map<absl::string_view,
                        std::list<std::pair<std::string, Classification>>::iterator>
        index;
    Counts counts;
  };

  const UapRegexes* regexes_;
  const size_t max_per_shard_;
  Shard shards_[kShards];
};

}  // namespace kurt::user_agent
