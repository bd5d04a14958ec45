#include "server/check/check_service.h"

#include <algorithm>
#include <chrono>

#include "common/crypto.h"
#include "common/ids.h"
#include "server/http/json_io.h"

namespace warden::server {

CheckService::CheckService(Options options, PolicyManager* policies, TokenVerifier* verifier, DecisionLogger* logger,
                           Metrics* metrics, const Clock& clock)
    : options_(std::move(options)),
      policies_(policies),
      verifier_(verifier),
      logger_(logger),
      metrics_(metrics),
      clock_(clock),
      invalid_tokens_(options_.invalid_tokens_per_minute, clock) {
  tenant_tokens_.store(std::make_shared<const TenantTokens>());
}

std::string CheckService::ClientAddress(const std::string& peer, std::string_view claimed) const {
  if (claimed.empty()) return peer;
  const auto& trusted = options_.trusted_proxies;
  if (std::find(trusted.begin(), trusted.end(), peer) == trusted.end()) return peer;
  return std::string(claimed.substr(0, 64));
}

CheckService::Auth CheckService::Authenticate(const Credential& credential, const std::string& client_addr,
                                              bool cache_only, Subject* subject, int64_t* retry_after) {
  subject->snapshot = policies_->Current();
  subject->tenant_id = options_.default_tenant;
  if (credential.tenant) {
    const std::string tenant = TenantOfToken(credential.token);
    if (!tenant.empty()) subject->tenant_id = tenant;
    engine::Principal& p = subject->own_principal;
    p.type = engine::PrincipalType::kTenant;
    p.id = subject->tenant_id;
    p.name = subject->tenant_id;
    subject->principal = &p;
    if (!tenant.empty()) {
      subject->policy = &subject->snapshot->TenantPolicy();
    } else {
      metrics_->token_failures++;
      subject->failure = engine::Reason::kTokenInvalid;
    }
  } else {
    TokenVerifier::Result verified = verifier_->Verify(credential.token, cache_only);
    subject->token_id = verified.token_id;
    switch (verified.outcome) {
      case TokenVerifier::Outcome::kNotCached:
        return Auth::kNotCached;
      case TokenVerifier::Outcome::kUnavailable:
        return Auth::kUnavailable;
      case TokenVerifier::Outcome::kOk:
      case TokenVerifier::Outcome::kAccountDisabled:
        subject->account = verified.account;
        subject->principal = &verified.account->principal;
        subject->tenant_id = verified.account->tenant_id;
        subject->snapshot = verified.account->snapshot;
        subject->policy = verified.account->policy.get();
        if (verified.outcome == TokenVerifier::Outcome::kAccountDisabled) {
          subject->failure = engine::Reason::kAccountDisabled;
        }
        break;
      default:
        subject->failure = engine::Reason::kTokenInvalid;
        break;
    }
  }
  // Invalid credentials are cheap to send and each costs a decision row: past a budget per
  // client address they are answered 429 (counted, not logged) until the minute ends.
  if (subject->failure == engine::Reason::kTokenInvalid) {
    if (int64_t wait = invalid_tokens_.RetryAfter(client_addr); wait > 0) {
      metrics_->invalid_token_throttled++;
      *retry_after = wait;
      return Auth::kThrottled;
    }
    invalid_tokens_.Record(client_addr);
  }
  return Auth::kOk;
}

bool CheckService::AuthenticateOrAnswer(const Credential& credential, const std::string& client_addr,
                                       bool cache_only, Subject* subject, Response& res, bool* needs_store) {
  int64_t retry_after = 0;
  switch (Authenticate(credential, client_addr, cache_only, subject, &retry_after)) {
    case Auth::kOk:
      return true;
    case Auth::kNotCached:
      *needs_store = true;
      return false;
    case Auth::kUnavailable:
      WriteError(res, UnavailableError("the token store is unavailable"));
      return false;
    case Auth::kThrottled:
      res.SetHeader("Retry-After", std::to_string(retry_after));
      WriteError(res, ResourceExhaustedError("too many invalid tokens from this address; retry after " +
                                             std::to_string(retry_after) + " s"));
      return false;
  }
  return false;
}

void CheckService::Decide(const Subject& subject, std::span<const CheckInput> checks, const engine::Attributes& context,
                          const RequestFacts& facts, std::vector<store::DecisionRow>* log_rows,
                          std::vector<Verdict>* verdicts) {
  const auto start = std::chrono::steady_clock::now();
  // The rows are built in place at the end of *log_rows (a temporary vector of them, over a
  // KiB for two checks, missed malloc's small-size caches on every request).
  const size_t first_row = log_rows->size();
  log_rows->resize(first_row + checks.size());
  std::span<store::DecisionRow> rows(log_rows->data() + first_row, checks.size());
  const size_t first_verdict = verdicts->size();
  verdicts->resize(first_verdict + checks.size());
  const engine::PolicySnapshot& snapshot = *subject.snapshot;
  const engine::Principal* principal = subject.principal;
  std::span<const engine::CompiledPolicy* const> policies =
      subject.directory ? std::span<const engine::CompiledPolicy* const>(subject.roles)
                        : std::span<const engine::CompiledPolicy* const>(&subject.policy, subject.policy ? 1 : 0);
  const int64_t now = clock_.NowMillis();
  for (size_t i = 0; i < checks.size(); ++i) {
    const CheckInput& in = checks[i];
    engine::Decision& d = (*verdicts)[first_verdict + i].decision;
    // DESIGN.md 3.1: unknown model/action first, then the credential's state.
    const engine::Catalog& catalog = snapshot.catalog();
    auto model = catalog.FindModel(in.model);
    std::optional<engine::ActionId> action;
    if (model) action = catalog.FindAction(*model, in.action);
    if (in.refused) {
      d = engine::Decision{false, *in.refused, {}, false};
    } else if (!model) {
      d = engine::Decision{false, engine::Reason::kUnknownModel, {}, false};
    } else if (!action) {
      d = engine::Decision{false, engine::Reason::kUnknownAction, {}, false};
    } else if (subject.failure) {
      d = engine::Decision{false, *subject.failure, {}, false};
    } else if (!subject.policy && !subject.directory) {  // the account's policy no longer compiles: fail closed
      d = engine::Decision{false, engine::Reason::kNoMatchingAllow, {}, true};
    } else {
      d = snapshot.Evaluate(*principal, policies, *model, *action, in.resource, context);
    }
    metrics_->CountDecision(d.allowed, d.reason);
    store::DecisionRow& row = rows[i];
    row.id = NewUlid(clock_);
    row.time = now;
    row.tenant_id = subject.tenant_id;
    if (subject.directory) {
      row.principal_type = subject.directory_type;
    } else {
      row.principal_type = principal ? std::string(engine::PrincipalTypeName(principal->type)) : "service_account";
    }
    row.principal_id = principal ? principal->id : "";
    row.principal_name = principal ? principal->name : "";
    row.token_id = subject.token_id;
    row.model = in.model;
    row.action = in.action;
    row.resource_id = in.resource_id;
    row.allowed = d.allowed;
    row.reason = std::string(engine::ReasonName(d.reason));
    row.rule = std::string(d.rule);
    row.eval_error = d.eval_error ? "cannot evaluate a condition" : "";
    row.policy_revision = snapshot.revision();
    row.client_addr = facts.client_addr;
    row.method = facts.method;
    row.path = facts.path;
    row.request_id = facts.request_id;
    row.caller_id = subject.caller_id;
    row.caller_name = subject.caller_name;
  }
  const int64_t latency_us =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start).count();
  for (auto& row : rows) row.latency_us = latency_us;
  // A request with an invalid token is one row (its first check), whatever its batch size:
  // it is one unauthenticated attempt, and every result names that row's decision id.
  const bool one_row = subject.failure == engine::Reason::kTokenInvalid && !rows.empty();
  for (size_t i = 0; i < rows.size(); ++i) {
    (*verdicts)[first_verdict + i].decision_id = one_row ? rows.front().id : rows[i].id;
  }
  if (one_row) log_rows->resize(first_row + 1);
}

void CheckService::DirectorySubject(engine::Principal principal, std::string type, Subject* out) const {
  out->snapshot = policies_->Current();
  out->tenant_id = options_.default_tenant;
  out->directory = true;
  out->directory_type = std::move(type);
  out->own_principal = std::move(principal);
  out->principal = &out->own_principal;
  out->roles.clear();
  for (const std::string& role : out->own_principal.roles) {
    if (const engine::CompiledPolicy* p = out->snapshot->FindRole(role)) out->roles.push_back(p);
  }
}

void CheckService::AccountSubject(const store::ServiceAccount& account, const engine::Attributes& properties,
                                  Subject* out) const {
  out->snapshot = policies_->Current();
  out->tenant_id = account.tenant_id;
  std::shared_ptr<const AccountState> state = MakeAccountState(account, out->snapshot);
  out->own_principal = state->principal;
  for (const auto& [key, value] : properties.items()) out->own_principal.attributes.Set(key, value);
  out->principal = &out->own_principal;
  out->policy = state->policy.get();
  if (!state->enabled) out->failure = engine::Reason::kAccountDisabled;
  out->account = std::move(state);
}

void CheckService::FailAnswer(Response& res, const Status& status) {
  std::string request_id = res.Header("X-Request-Id");
  res = Response();
  if (!request_id.empty()) res.SetHeader("X-Request-Id", std::move(request_id));
  WriteError(res, status);
}

void CheckService::Handle(const Adapter& adapter, const Request& req, Response& res) {
  std::vector<store::DecisionRow> rows;
  bool needs_store = false;
  adapter(req, res, &rows, /*cache_only=*/false, &needs_store);
  if (rows.empty()) return;
  // Durable before the answer (group commit). If the row cannot be written, nothing is allowed.
  Status logged = logger_->Write(&rows);
  if (!logged.ok()) FailAnswer(res, logged);
}

bool CheckService::DecideInline(const Adapter& adapter, const Request& req, Response& res) {
  const size_t before = batch_rows_.size();
  bool needs_store = false;
  try {
    adapter(req, res, &batch_rows_, /*cache_only=*/true, &needs_store);
  } catch (...) {
    batch_rows_.resize(before);
    res = Response();
    WriteError(res, 500, "internal", "internal error");
  }
  if (needs_store) {  // a token-cache miss: a worker looks it up, the loop goes on
    batch_rows_.resize(before);
    res = Response();
    metrics_->checks_handed_off++;
    return false;
  }
  if (batch_rows_.size() > before) batch_answers_.push_back(&res);
  return true;
}

void CheckService::CommitInline() {
  if (batch_rows_.empty()) return;
  // Durable before the answer: one write for every check of the pass. If the rows cannot be
  // written, every answer of the batch becomes a 503 and nothing is allowed.
  Status logged = logger_->Write(&batch_rows_);
  if (!logged.ok()) {
    for (Response* res : batch_answers_) FailAnswer(*res, logged);
  }
  batch_rows_.clear();
  batch_answers_.clear();
}

void CheckService::SetTenantToken(const std::string& tenant_id, const std::string& token) {
  std::lock_guard<std::mutex> lock(tenant_tokens_mu_);
  auto next = std::make_shared<TenantTokens>(*tenant_tokens_.load());
  std::erase_if(*next, [&](const auto& entry) { return entry.second == tenant_id; });
  (*next)[Sha256Hex(token)] = tenant_id;
  tenant_tokens_.store(std::move(next));
}

std::string CheckService::TenantOfToken(std::string_view token) const {
  auto tokens = tenant_tokens_.load();
  auto it = tokens->find(Sha256Hex(token));
  return it == tokens->end() ? std::string() : it->second;
}

}  // namespace warden::server
