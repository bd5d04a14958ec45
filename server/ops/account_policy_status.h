// Which service accounts' permissions no longer compile against the current policy snapshot
// (after a reload renamed a model, say): they deny everything until fixed, and
// GET /v1/policies/status lists them with their errors. Recheck() reads every account from
// the store, so it runs at start and after each policy swap, never on a request.
// Thread-safety: all methods are thread-safe.
#pragma once

#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "server/ops/policy_manager.h"
#include "store/store.h"

namespace warden::server {

class AccountPolicyStatus {
 public:
  AccountPolicyStatus(store::AccountStore* accounts, PolicyManager* policies)
      : accounts_(accounts), policies_(policies) {}
  // Compiles every account of `tenant_id` against the current snapshot.
  void Recheck(const std::string& tenant_id);
  // The policy manager's status plus "accounts_with_errors".
  nlohmann::json StatusJson() const;

 private:
  store::AccountStore* accounts_;
  PolicyManager* policies_;
  mutable std::mutex mu_;
  nlohmann::json broken_ = nlohmann::json::array();  // guarded by mu_
};

}  // namespace warden::server
