#include "services/accounts/signin_throttle.h"

#include "absl/strings/str_cat.h"
#include "services/accounts/api_key.h"

namespace kurt::accounts {
namespace {

std::string EmailKey(absl::string_view email) { return absl::StrCat("email:", Sha256Hex(email)); }

}  // namespace

std::vector<FailureLimit> SignInThrottle::Limits(absl::string_view email,
                                                 absl::string_view client) const {
  std::vector<FailureLimit> limits = {{EmailKey(email), limits_.per_email, limits_.window}};
  if (!client.empty()) {
    limits.push_back({absl::StrCat("client:", client), limits_.per_client, limits_.window});
  }
  return limits;
}

absl::Duration SignInThrottle::Wait(absl::string_view email, absl::string_view client) {
  return failures_->Wait(Limits(email, client));
}

void SignInThrottle::Failed(absl::string_view email, absl::string_view client) {
  failures_->Failed(Limits(email, client));
}

void SignInThrottle::Succeeded(absl::string_view email) { failures_->Clear(EmailKey(email)); }

}  // namespace kurt::accounts
