// A TokenStore that waits before every token lookup: fault injection for tests of the rule
// that the event loop never waits for the store (a token-cache miss must not hold up the
// checks of cached tokens). Enabled only by the test setting test_token_lookup_delay_ms
// (WARDEN_TEST_TOKEN_LOOKUP_DELAY_MS); everything else is forwarded unchanged.
// Thread-safety: as the wrapped store.
#pragma once

#include <chrono>
#include <thread>

#include "store/store.h"

namespace warden::server {

class SlowTokenStore final : public store::TokenStore {
 public:
  SlowTokenStore(store::TokenStore* inner, int delay_ms) : inner_(inner), delay_(delay_ms) {}

  Status CreateToken(const store::ApiTokenRecord& token, const store::AuditEntry* audit) override {
    return inner_->CreateToken(token, audit);
  }
  StatusOr<std::vector<store::ApiTokenRecord>> ListTokens(const std::string& tenant_id,
                                                          const std::string& account_id) override {
    return inner_->ListTokens(tenant_id, account_id);
  }
  Status DeleteToken(const std::string& tenant_id, const std::string& account_id, const std::string& token_id,
                     const store::AuditEntry* audit) override {
    return inner_->DeleteToken(tenant_id, account_id, token_id, audit);
  }
  StatusOr<store::TokenLookup> LookupToken(const std::string& token_id) override {
    std::this_thread::sleep_for(delay_);
    return inner_->LookupToken(token_id);
  }
  Status TouchTokensLastUsed(const std::vector<std::pair<std::string, int64_t>>& uses) override {
    return inner_->TouchTokensLastUsed(uses);
  }
  StatusOr<int64_t> CountTokens(const std::string& tenant_id) override { return inner_->CountTokens(tenant_id); }

 private:
  store::TokenStore* inner_;
  const std::chrono::milliseconds delay_;
};

}  // namespace warden::server
