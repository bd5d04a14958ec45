#include "server/check/token_verifier.h"

#include <algorithm>
#include <atomic>

#include "common/crypto.h"

namespace warden::server {

namespace {
constexpr int64_t kTouchIntervalMs = 60'000;
constexpr char kPolicyFile[] = "permissions.yaml";
}  // namespace

std::shared_ptr<const AccountState> MakeAccountState(
    const store::ServiceAccount& account, std::shared_ptr<const engine::PolicySnapshot> snapshot) {
  auto state = std::make_shared<AccountState>();
  state->tenant_id = account.tenant_id;
  state->enabled = account.enabled;
  state->principal.type = engine::PrincipalType::kServiceAccount;
  state->principal.id = account.id;
  state->principal.name = account.name;
  if (account.attributes.is_object()) {
    auto attrs = engine::Attributes::FromJson(account.attributes, "attributes");
    if (attrs.ok()) state->principal.attributes = std::move(attrs).value();
  }
  if (snapshot) {
    engine::PolicyResult compiled =
        engine::CompileAccountPolicy(*snapshot, account.policy_yaml, kPolicyFile, account.name);
    state->policy = std::move(compiled.policy);
    state->policy_errors = std::move(compiled.errors);
  }
  state->snapshot = std::move(snapshot);
  return state;
}

TokenVerifier::TokenVerifier(store::TokenStore* tokens, PolicyManager* policies,
                             std::string pepper, std::string prefix, const Clock& clock,
                             Metrics* metrics)
    : tokens_(tokens),
      policies_(policies),
      pepper_(pepper),
      prefix_(std::move(prefix)),
      clock_(clock),
      metrics_(metrics) {}

std::string TokenVerifier::HashSecret(std::string_view secret) const {
  return pepper_.Mac(secret);
}

TokenVerifier::Result TokenVerifier::Verify(std::string_view token_text, bool cache_only) {
  Result result;
  StatusOr<ApiToken> parsed = ParseApiToken(token_text, prefix_);
  if (!parsed.ok()) {
    metrics_->token_failures++;
    result.outcome = Outcome::kMalformed;
    return result;
  }
  result.token_id = parsed->id;
  const std::string hash = HashSecret(parsed->secret);
  const int64_t now = clock_.NowMillis();

  // The hot path: everything is decided under the shared lock, nothing is copied but the
  // account pointer.
  bool hash_ok = false;
  int64_t expires_at = 0;
  std::shared_ptr<const AccountState> account;
  uint64_t generation;
  {
    std::shared_lock<std::shared_mutex> lock(mu_);
    generation = generation_;
    if (TokenTable::Entry* entry = tokens_by_id_.Find(parsed->id)) {
      hash_ok = ConstantTimeEquals(hash, std::string_view(entry->secret_hash.data(), entry->secret_hash.size()));
      expires_at = entry->expires_at;
      account = entry->account;
      if (hash_ok && (expires_at == 0 || expires_at > now)) NoteUse(parsed->id, *entry, now);
    } else if (unknown_ids_.count(parsed->id) != 0) {
      metrics_->token_failures++;
      metrics_->token_unknown_cache_hits++;
      result.outcome = Outcome::kUnknown;
      return result;
    }
  }
  if (account) {
    metrics_->token_cache_hits++;
  } else if (cache_only) {
    result.outcome = Outcome::kNotCached;
    return result;
  } else {
    metrics_->token_cache_misses++;
    StatusOr<store::TokenLookup> found = tokens_->LookupToken(parsed->id);
    if (!found.ok() || found->token.secret_hash.size() != 32) {
      if (found.ok() || found.status().code() == StatusCode::kNotFound) {
        metrics_->token_failures++;
        result.outcome = Outcome::kUnknown;
        std::unique_lock<std::shared_mutex> lock(mu_);
        if (generation == generation_ && unknown_ids_.insert(parsed->id).second) {  // not created meanwhile
          if (unknown_order_.size() < kMaxUnknownIds) {
            unknown_order_.push_back(parsed->id);
          } else {
            unknown_ids_.erase(unknown_order_[unknown_next_]);
            unknown_order_[unknown_next_] = parsed->id;
            unknown_next_ = (unknown_next_ + 1) % kMaxUnknownIds;
          }
        }
      } else {
        result.outcome = Outcome::kUnavailable;
      }
      return result;
    }
    {
      std::shared_lock<std::shared_mutex> lock(mu_);
      auto acc = accounts_.find(found->account.id);
      if (acc != accounts_.end()) account = acc->second;  // another token of a cached account
    }
    if (!account) account = MakeAccountState(found->account, policies_->Current());
    hash_ok = ConstantTimeEquals(hash, found->token.secret_hash);
    expires_at = found->token.expires_at;
    std::unique_lock<std::shared_mutex> lock(mu_);
    if (generation == generation_) {  // nothing was invalidated while we read the store
      auto [entry, inserted] = tokens_by_id_.Insert(parsed->id);
      if (inserted) {
        std::copy(found->token.secret_hash.begin(), found->token.secret_hash.end(), entry->secret_hash.begin());
        entry->expires_at = expires_at;
        entry->account = account;
        entry->last_touch_queued = found->token.last_used_at;
        if (hash_ok && (expires_at == 0 || expires_at > now)) NoteUse(parsed->id, *entry, now);
      }
      accounts_.try_emplace(found->account.id, account);
    }
  }
  if (!hash_ok) {
    metrics_->token_failures++;
    result.outcome = Outcome::kUnknown;
    return result;
  }
  if (expires_at != 0 && expires_at <= now) {
    metrics_->token_failures++;
    result.outcome = Outcome::kExpired;
    return result;
  }
  result.account = std::move(account);
  result.outcome = result.account->enabled ? Outcome::kOk : Outcome::kAccountDisabled;
  return result;
}

void TokenVerifier::NoteUse(std::string_view token_id, TokenTable::Entry& entry, int64_t now) {
  // Other threads read and write it under the same shared lock.
  std::atomic_ref<int64_t> queued(entry.last_touch_queued);
  int64_t last = queued.load(std::memory_order_relaxed);
  if (now - last < kTouchIntervalMs) return;
  if (!queued.compare_exchange_strong(last, now)) return;  // another thread did
  std::lock_guard<std::mutex> lock(touch_mu_);
  pending_touches_.emplace_back(std::string(token_id), now);
}

void TokenVerifier::FlushLastUsed() {
  std::vector<std::pair<std::string, int64_t>> batch;
  {
    std::lock_guard<std::mutex> lock(touch_mu_);
    batch.swap(pending_touches_);
  }
  if (batch.empty()) return;
  Status st = tokens_->TouchTokensLastUsed(batch);
  if (!st.ok()) {  // keep them for the next flush
    std::lock_guard<std::mutex> lock(touch_mu_);
    pending_touches_.insert(pending_touches_.end(), batch.begin(), batch.end());
  }
}

void TokenVerifier::InvalidateAccount(const std::string& account_id) {
  std::unique_lock<std::shared_mutex> lock(mu_);
  ++generation_;
  accounts_.erase(account_id);
  tokens_by_id_.EraseIf([&](const TokenTable::Entry& e) { return e.account->principal.id == account_id; });
}

void TokenVerifier::InvalidateToken(const std::string& token_id) {
  std::unique_lock<std::shared_mutex> lock(mu_);
  ++generation_;
  tokens_by_id_.Erase(token_id);
}

void TokenVerifier::InvalidateAll() {
  std::unique_lock<std::shared_mutex> lock(mu_);
  ++generation_;
  tokens_by_id_.Clear();
  accounts_.clear();
}

void TokenVerifier::NoteTokenCreated(const std::string& token_id) {
  std::unique_lock<std::shared_mutex> lock(mu_);
  ++generation_;  // a lookup that began before the creation must not remember the id as unknown
  if (unknown_ids_.erase(token_id) == 0) return;
  auto it = std::find(unknown_order_.begin(), unknown_order_.end(), token_id);
  if (it != unknown_order_.end()) it->clear();  // its ring slot is reused later
}

size_t TokenVerifier::CachedTokens() const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  return tokens_by_id_.size();
}

}  // namespace warden::server
