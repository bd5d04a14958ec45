#include "server/ops/account_policy_status.h"

namespace warden::server {

void AccountPolicyStatus::Recheck(const std::string& tenant_id) {
  auto snapshot = policies_->Current();
  nlohmann::json broken = nlohmann::json::array();
  store::ListOptions page{store::kMaxPageLimit, ""};
  for (;;) {
    auto accounts = accounts_->ListAccounts(tenant_id, page);
    if (!accounts.ok()) break;
    for (const auto& account : accounts->items) {
      engine::PolicyResult r = engine::CompileAccountPolicy(*snapshot, account.policy_yaml, "permissions.yaml", account.name);
      if (r.policy) continue;
      nlohmann::json errors = nlohmann::json::array();
      for (const auto& e : r.errors) errors.push_back(e.ToJson());
      broken.push_back({{"id", account.id}, {"name", account.name}, {"errors", errors}});
    }
    if (accounts->next_cursor.empty()) break;
    page.cursor = accounts->next_cursor;
  }
  std::lock_guard<std::mutex> lock(mu_);
  broken_ = std::move(broken);
}

nlohmann::json AccountPolicyStatus::StatusJson() const {
  nlohmann::json status = policies_->StatusJson();
  std::lock_guard<std::mutex> lock(mu_);
  status["accounts_with_errors"] = broken_;
  return status;
}

}  // namespace warden::server
