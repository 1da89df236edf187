// Tells the clicks of crawlers and link-preview fetchers from people's: a click is a bot's when
// its request was a HEAD, when its User-Agent names a known link-preview fetcher
// (kPreviewAgents), or when uap-core's device parsers (Debian's uap-core: regexes.yaml) call its
// device a "Spider". Analytics classifies each click once, as it consumes it; the redirect never
// waits for this.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace re2 {
class RE2;
}

namespace kurt::analytics {

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

// uap-core's device parsers, compiled with RE2, reduced to one question: is the device of the
// first parser that matches a "Spider"? Immutable once loaded; any thread may call IsSpider.
class UapSpiderRules {
 public:
  // A device parser RE2 could not compile (uap-core writes for PCRE; RE2 has no look-around nor
  // backreferences), left out. Its place in the list is kept in mind only for the count.
  struct Skipped {
    int index = 0;  // among the device parsers
    std::string regex;
    std::string error;
  };

  // Reads `path` (uap-core's regexes.yaml) with yaml-cpp and compiles every device parser.
  // Parsers RE2 refuses are skipped (skipped() lists them; each is logged once); a file that
  // cannot be read, is not YAML, or has no device parsers is an error naming the file.
  static absl::StatusOr<std::unique_ptr<UapSpiderRules>> Load(const std::string& path);
  ~UapSpiderRules();

  // Whether the first device parser matching `user_agent` names the device "Spider", as every
  // uap-core port does (the parsers are tried in the file's order; the first match decides).
  bool IsSpider(absl::string_view user_agent) const;

  // The parsers compiled.
  size_t parsers() const;
  const std::vector<Skipped>& skipped() const { return skipped_; }

 private:
  struct Parser;
  UapSpiderRules();

  std::vector<Parser> parsers_;
  std::vector<Skipped> skipped_;
};

// Whether a click is a bot's, remembering the answer of each User-Agent it saw last (a bounded
// LRU: the same few thousand agents make most of the traffic, and a uap-core miss costs a walk
// over hundreds of regexes). Lives as long as its owner; used by one thread at a time.
class BotClassifier {
 public:
  // `spiders` (null: uap-core is not consulted) outlives the classifier.
  explicit BotClassifier(const UapSpiderRules* spiders, size_t max_entries = 20000);
  // A copy's index would point into the original's list; a move keeps the list's nodes.
  BotClassifier(const BotClassifier&) = delete;
  BotClassifier& operator=(const BotClassifier&) = delete;
  BotClassifier(BotClassifier&&) = default;
  BotClassifier& operator=(BotClassifier&&) = default;

  // A HEAD request is a bot's whatever its agent says.
  bool IsBot(absl::string_view user_agent, bool head);

  int64_t hits() const { return hits_; }
  int64_t misses() const { return misses_; }

 private:
  bool Classify(absl::string_view user_agent) const;

  const UapSpiderRules* spiders_;
  const size_t max_entries_;
  // Most recently used first; index_'s keys point into these strings (list nodes do not move).
  std::list<std::pair<std::string, bool>> lru_;
  absl::flat_hash_map<absl::string_view, std::list<std::pair<std::string, bool>>::iterator> index_;
  int64_t hits_ = 0;
  int64_t misses_ = 0;
};

}  // namespace kurt::analytics
