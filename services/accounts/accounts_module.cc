#include "services/accounts/accounts_module.h"

namespace kurt::accounts {
namespace {

AccountsRpcsOptions RpcsOptions(const AccountsConfig& config) {
  AccountsRpcsOptions options;
  options.admin_token = config.admin_token;
  options.open_signup = config.open_signup;
  options.edge_secret = config.edge_secret;
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
      rpcs_(RpcsOptions(config), &store_, &cache_),
      service_(&rpcs_) {}

}  // namespace kurt::accounts
