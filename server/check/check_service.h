// The check service (DESIGN.md 2.1): credential -> principal -> Decision -> durable log row.
// Transport-neutral: /v1/check, forward-auth and AuthZEN are thin adapters that turn their
// request into a Credential and CheckInputs, and the service's results into their answer.
//
// The event loop decides the requests of one pass into one batch (DecideInline) and commits
// the batch's rows once (CommitInline) before any answer is written: group commit with no
// thread hand-off. A token the verifier's cache does not hold would need the store, so the
// inline path refuses it and the request goes to a worker (Handle), which looks it up, decides
// and commits its own rows. If rows cannot be made durable, every answer that depended on
// them becomes a 503: nothing is allowed that is not logged.
//
// Thread-safety: Authenticate, Decide and Handle from any thread; DecideInline and
// CommitInline from the event-loop thread only.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "engine/engine.h"
#include "server/check/check_request.h"
#include "server/check/decision_logger.h"
#include "server/check/token_verifier.h"
#include "server/http/message.h"
#include "server/http/rate_limiter.h"
#include "server/ops/metrics.h"
#include "server/ops/policy_manager.h"
#include "store/store.h"

namespace warden::server {

// What the caller presented.
struct Credential {
  std::string token;
  bool tenant = false;  // the tenant's analytics token, not an API token
};

// Who the decisions are for, once the credential is resolved. `failure` set: every decision
// is a deny with that reason (after unknown model/action, DESIGN.md 3.1).
struct Subject {
  std::shared_ptr<const engine::PolicySnapshot> snapshot;
  const engine::Principal* principal = nullptr;  // null when the credential named nobody
  const engine::CompiledPolicy* policy = nullptr;  // null: no policy (deny, fail closed)
  std::optional<engine::Reason> failure;
  std::string tenant_id;
  std::string token_id;
  std::shared_ptr<const AccountState> account;  // keeps principal and policy alive
  engine::Principal own_principal;  // the tenant principal, or a directory subject
  // A directory subject (AuthZEN, DESIGN.md 6.1) decides with its roles' policies (`roles`,
  // pointing into `snapshot`; none: nothing is allowed) instead of `policy`, and its rows
  // name its AuthZEN type (`directory_type`) as the principal type.
  bool directory = false;
  std::vector<const engine::CompiledPolicy*> roles;
  std::string directory_type;
  // AuthZEN: the PEP's account that asks about this subject, recorded as the rows' caller.
  std::string caller_id, caller_name;
};

// One check's outcome: the decision and the id of the log row that records it.
struct Verdict {
  engine::Decision decision;
  std::string decision_id;
};

// Where a request came from, recorded on its rows.
struct RequestFacts {
  std::string client_addr, method, path, request_id;
};

class CheckService {
 public:
  struct Options {
    std::string default_tenant = store::kDefaultTenantId;
    int invalid_tokens_per_minute = 600;
    // Peers (gateways, the protected API) whose word on the client's address counts.
    std::vector<std::string> trusted_proxies;
  };
  CheckService(Options options, PolicyManager* policies, TokenVerifier* verifier, DecisionLogger* logger,
               Metrics* metrics, const Clock& clock);

  enum class Auth {
    kOk,           // *subject is set (possibly with a failure reason: still decided and logged)
    kNotCached,    // cache_only and the token needs the store
    kUnavailable,  // the token store failed
    kThrottled,    // too many invalid credentials from this address: *retry_after seconds
  };
  // Resolves `credential`. Invalid credentials count against `client_addr`'s budget (see
  // ClientAddress).
  Auth Authenticate(const Credential& credential, const std::string& client_addr, bool cache_only,
                    Subject* subject, int64_t* retry_after);
  // Authenticate for an adapter: true when *subject is ready (a failure reason included);
  // otherwise the answer is written to `res` (503 store unavailable, 429 with Retry-After) or,
  // for a token that needs the store, *needs_store is set and nothing is written.
  bool AuthenticateOrAnswer(const Credential& credential, const std::string& client_addr, bool cache_only,
                            Subject* subject, Response& res, bool* needs_store);
  // The client a request is for: `claimed` (a forwarded address) when the peer is a trusted
  // proxy and claimed is not empty, else the peer. Behind a gateway every request comes from
  // the gateway, so its invalid-token budget must be the client's, not the gateway's.
  std::string ClientAddress(const std::string& peer, std::string_view claimed) const;
  // Decides `checks` for `subject`, appending one row per check to *rows (one row for the whole
  // request when the credential is invalid: one unauthenticated attempt) and one Decision per
  // check to *verdicts (rule names point into subject's policies).
  void Decide(const Subject& subject, std::span<const CheckInput> checks, const engine::Attributes& context,
              const RequestFacts& facts, std::vector<store::DecisionRow>* rows, std::vector<Verdict>* verdicts);

  // An adapter: decides one request into `res` and appends the rows that must be durable
  // before `res` is sent; with `cache_only`, sets *needs_store (and writes nothing) when the
  // token is not cached.
  using Adapter = std::function<void(const Request& req, Response& res, std::vector<store::DecisionRow>* rows,
                                     bool cache_only, bool* needs_store)>;
  // Decides and commits (a worker thread, the TLS front).
  void Handle(const Adapter& adapter, const Request& req, Response& res);
  // The event loop: decides into the pass's batch. False when the token needs the store (the
  // request must go to a worker).
  bool DecideInline(const Adapter& adapter, const Request& req, Response& res);
  // The event loop, after a pass: makes the batch durable, or turns its answers into 503s.
  void CommitInline();

  // AuthZEN subjects (DESIGN.md 6.1), decided for a PEP that authenticated separately.
  // A directory principal: `principal` (id, roles, properties already merged) of AuthZEN type
  // `type`, with the current snapshot's policies of its roles (an unknown role grants nothing).
  void DirectorySubject(engine::Principal principal, std::string type, Subject* out) const;
  // A service account as the subject: its policy compiled against the current snapshot
  // (disabled: every decision ACCOUNT_DISABLED); `properties` are merged over its attributes.
  void AccountSubject(const store::ServiceAccount& account, const engine::Attributes& properties,
                      Subject* out) const;
  const std::string& default_tenant() const { return options_.default_tenant; }
  std::shared_ptr<const engine::PolicySnapshot> CurrentPolicies() const { return policies_->Current(); }

  // The tenants' analytics tokens.
  void SetTenantToken(const std::string& tenant_id, const std::string& token);

  const Clock& clock() const { return clock_; }

 private:
  // The tenant whose token this is, or "".
  std::string TenantOfToken(std::string_view token) const;
  static void FailAnswer(Response& res, const Status& status);

  const Options options_;
  PolicyManager* policies_;
  TokenVerifier* verifier_;
  DecisionLogger* logger_;
  Metrics* metrics_;
  const Clock& clock_;
  RateLimiter invalid_tokens_;
  // The event loop's current batch (loop thread only).
  std::vector<store::DecisionRow> batch_rows_;
  std::vector<Response*> batch_answers_;
  // Every tenant's analytics token, keyed by its SHA-256 (a lookup compares digests, never the
  // secret itself) -> tenant id. Copied and swapped on rotation (under tenant_tokens_mu_), read
  // lock-free by checks.
  using TenantTokens = std::unordered_map<std::string, std::string>;
  std::atomic<std::shared_ptr<const TenantTokens>> tenant_tokens_;
  std::mutex tenant_tokens_mu_;
};

}  // namespace warden::server
