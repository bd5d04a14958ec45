// Verifies API tokens for /v1/check and for service accounts calling the admin API.
//
// A token is parsed first (prefix, length, alphabet, CRC): a malformed token never touches
// storage. Verified tokens and their accounts (with the account's compiled policy) are cached
// in memory; every admin change that affects a token or account calls Invalidate*() before
// it is acknowledged, so the next check already sees it. A generation counter keeps a
// lookup that raced with an invalidation from re-inserting stale state.
// Ids of well-formed tokens the store does not hold are remembered (bounded, dropped when a
// token with that id is created), so a flood of made-up tokens costs one lookup per id.
// last_used_at is recorded in memory on the hot path and written by FlushLastUsed() (called
// from a background thread) at most once a minute per token.
// Thread-safety: all methods are thread-safe; the hot path takes a shared lock only.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/clock.h"
#include "common/crypto.h"
#include "engine/engine.h"
#include "server/check/token_table.h"
#include "server/ops/metrics.h"
#include "server/ops/policy_manager.h"
#include "store/store.h"

namespace warden::server {

// An account as the check path needs it: its row and its policy compiled against the
// snapshot that was current when it was cached.
struct AccountState {
  std::string tenant_id;
  bool enabled = true;
  engine::Principal principal;  // id and name are the account's
  std::shared_ptr<const engine::PolicySnapshot> snapshot;
  std::shared_ptr<const engine::CompiledPolicy> policy;  // null: does not compile (fail closed)
  std::vector<engine::CompileError> policy_errors;
};

// Builds an AccountState (compiling the account's policy against `snapshot`).
std::shared_ptr<const AccountState> MakeAccountState(
    const store::ServiceAccount& account, std::shared_ptr<const engine::PolicySnapshot> snapshot);

class TokenVerifier {
 public:
  TokenVerifier(store::TokenStore* tokens, PolicyManager* policies, std::string pepper,
                std::string prefix, const Clock& clock, Metrics* metrics);

  // kNotCached: only with cache_only, the answer needs the store.
  enum class Outcome { kOk, kMalformed, kUnknown, kExpired, kAccountDisabled, kUnavailable, kNotCached };
  struct Result {
    Outcome outcome = Outcome::kMalformed;
    std::string token_id;  // set once the token parsed
    std::shared_ptr<const AccountState> account;  // set for kOk and kAccountDisabled
  };
  // With cache_only, never touches the store (the event loop): a token whose id is neither
  // cached nor known to be unknown is kNotCached, to be verified again where blocking is fine.
  Result Verify(std::string_view token_text, bool cache_only = false);

  // The stored form of a token secret: HMAC-SHA256(pepper, secret).
  std::string HashSecret(std::string_view secret) const;
  const std::string& prefix() const { return prefix_; }

  void InvalidateAccount(const std::string& account_id);
  void InvalidateToken(const std::string& token_id);
  void InvalidateAll();
  // A token with this id was just created: it must no longer be remembered as unknown.
  void NoteTokenCreated(const std::string& token_id);

  // Writes the pending last_used_at values (at most one per token per minute).
  void FlushLastUsed();
  size_t CachedTokens() const;

 private:
  // Called with mu_ held (shared): queues a last_used_at write at most once a minute.
  void NoteUse(std::string_view token_id, TokenTable::Entry& entry, int64_t now);

  store::TokenStore* tokens_;
  PolicyManager* policies_;
  const HmacSha256Key pepper_;  // secret hashes are HMAC-SHA256(pepper, secret)
  const std::string prefix_;
  const Clock& clock_;
  Metrics* metrics_;

  mutable std::shared_mutex mu_;
  TokenTable tokens_by_id_;  // guarded by mu_ (~80 bytes a token: the budget counts 100,000)
  std::unordered_map<std::string, std::shared_ptr<const AccountState>> accounts_;   // guarded by mu_
  uint64_t generation_ = 0;  // guarded by mu_; bumped by every invalidation and token creation
  // Well-formed token ids the store does not know: a flood of made-up tokens touches SQLite
  // once per id. Bounded: the oldest entry goes when it is full (unknown_order_ is a ring).
  static constexpr size_t kMaxUnknownIds = 1 << 16;
  std::unordered_set<std::string> unknown_ids_;  // guarded by mu_
  std::vector<std::string> unknown_order_;       // guarded by mu_
  size_t unknown_next_ = 0;                      // guarded by mu_

  std::mutex touch_mu_;
  std::vector<std::pair<std::string, int64_t>> pending_touches_;  // guarded by touch_mu_
};

}  // namespace warden::server
