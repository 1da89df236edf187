#include "services/accounts/accounts_module.h"

#include "platform/core/log.h"

namespace kurt::accounts {
namespace {

AccountsRpcsOptions RpcsOptions(const AccountsConfig& config) {
  AccountsRpcsOptions options;
  options.admin_token = config.admin_token;
  options.open_signup = config.open_signup;
  options.edge_secret = config.edge_secret;
  options.session_token_ttl = config.session_token_ttl;
  options.refresh_token_ttl = config.refresh_token_ttl;
  return options;
}

}  // namespace

std::unique_ptr<AccountsModule> AccountsModule::Create(const AccountsConfig& config,
                                                       AccountsDeps deps) {
  return std::unique_ptr<AccountsModule>(new AccountsModule(config, deps));
}

AccountsModule::AccountsModule(const AccountsConfig& config, AccountsDeps deps)
    : store_(deps.cluster),
      cache_(deps.redis, config.key_cache_ttl, config.key_cache_prefix, config.record_secret),
      passwords_(config.passwords),
      signin_failures_(deps.redis, config.signin_key_prefix),
      throttle_(&signin_failures_, config.signin_limits),
      rpcs_(RpcsOptions(config), &store_, &cache_, &passwords_, &throttle_),
      service_(&rpcs_),
      sweep_interval_(config.sweep_interval) {
  if (sweep_interval_ > absl::ZeroDuration()) {
    janitor_ = std::thread([this] { Sweep(); });
  }
}

AccountsModule::~AccountsModule() {
  stop_.Notify();
  if (janitor_.joinable()) {
    janitor_.join();
  }
}

// Every replica sweeps; the deletes are idempotent and bounded, so replicas only share the work.
void AccountsModule::Sweep() {
  constexpr int kBatch = 1000;
  while (!stop_.WaitForNotificationWithTimeout(sweep_interval_)) {
    for (;;) {
      absl::StatusOr<int64_t> deleted = store_.SweepExpired(absl::Now(), kBatch);
      if (!deleted.ok()) {
        KURT_LOG(kWarn, "cannot delete expired sessions", {"error", deleted.status().ToString()});
        break;
      }
      if (*deleted > 0) {
        KURT_LOG(kInfo, "expired session tokens deleted", {"rows", *deleted});
      }
      if (*deleted < kBatch || stop_.HasBeenNotified()) {
        break;
      }
    }
  }
}

}  // namespace kurt::accounts
