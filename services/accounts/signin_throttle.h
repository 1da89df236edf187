// Limits on failed sign-ins (services/common/failure_throttle.h), so that passwords cannot be
// guessed at speed: per email address (the account, or the address nobody has: the two look
// alike) and per client address, over one window. At a limit, sign-ins for that email or from
// that client are refused until the window ends, right password or not. A success clears the
// email's count. Emails are counted by their hash: the store of counts holds no one's address.
//
// Thread-safe; lives as long as the service.
#pragma once

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "services/common/failure_throttle.h"

namespace kurt::accounts {

struct SignInLimits {
  int per_email = 10;
  int per_client = 100;
  absl::Duration window = absl::Minutes(15);
};

class SignInThrottle {
 public:
  // `failures` outlives the throttle.
  SignInThrottle(FailureThrottle* failures, SignInLimits limits)
      : failures_(failures), limits_(limits) {}

  // How long until a sign-in for `email` from `client` may be tried; zero: now. An empty
  // `client` (a caller other than the edge) has no client limit.
  absl::Duration Wait(absl::string_view email, absl::string_view client);
  void Failed(absl::string_view email, absl::string_view client);
  void Succeeded(absl::string_view email);

 private:
  std::vector<FailureLimit> Limits(absl::string_view email, absl::string_view client) const;

  FailureThrottle* failures_;
  const SignInLimits limits_;
};

}  // namespace kurt::accounts
