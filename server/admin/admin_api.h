// The admin API (DESIGN.md 6): login and sessions, service accounts, their permissions and
// tokens, users, roles, catalog, audit, the tenant token, decision history and policy
// reload/status. Every admin route authenticates the caller (a user session, by bearer or
// cookie + CSRF header, or a service-account token) and asks the engine whether the caller
// may do (serviceaccount|user, action) before doing anything; changes that hand out
// permissions go through the one no-escalation rule (RequireNoEscalation).
//
// Routes live in several files by concern: auth_routes.cc (login/logout, users),
// account_routes.cc (service accounts, permissions, tokens, roles, catalog, audit),
// tenant_routes.cc (tenant token, decision history), policy_routes.cc (reload, status),
// directory_routes.cc (the AuthZEN directory's subjects and resources).
// Thread-safety: after Register(), handlers run concurrently on the fronts' threads; all
// shared state is in thread-safe members.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "common/status.h"
#include "engine/engine.h"
#include "server/check/check_service.h"
#include "server/check/token_verifier.h"
#include "server/config.h"
#include "server/http/message.h"
#include "server/http/rate_limiter.h"
#include "server/http/router.h"
#include "server/ops/account_policy_status.h"
#include "server/ops/metrics.h"
#include "server/ops/policy_manager.h"
#include "store/store.h"

namespace warden::server {

// User session tokens: "wds_" + 43 base62 chars, distinct from API tokens.
inline constexpr char kSessionPrefix[] = "wds_";

// Who is calling an admin endpoint, and what they may do; and what its route captured.
struct Caller {
  engine::Principal principal;
  std::string tenant_id;
  std::string actor_type;  // store::kActorUser or store::kActorServiceAccount
  std::shared_ptr<const engine::PolicySnapshot> snapshot;
  std::shared_ptr<const AccountState> account;  // service accounts: keeps `policies` alive
  std::vector<const engine::CompiledPolicy*> policies;
  std::string session_id;  // users
  std::string csrf_token;  // users authenticated by cookie
  bool via_cookie = false;
  // Set by AdminApi::RequireNoEscalation when it refuses: what the caller lacks (the error
  // body's "missing" list).
  std::vector<engine::Escalation> escalations;
  Router::Captures params;  // of the route's pattern: params[1] is the first "([...]+)" segment
};

// The policies of a user's roles (unknown roles grant nothing) and the user as a principal.
std::vector<const engine::CompiledPolicy*> RolePolicies(const engine::PolicySnapshot& snapshot,
                                                        const std::vector<std::string>& roles);
engine::Principal UserPrincipal(const store::User& user);

class AdminApi {
 public:
  struct Deps {
    const Config* config;
    store::Store* store;
    std::string pepper;
    const Clock* clock;
    Metrics* metrics;
    PolicyManager* policies;
    TokenVerifier* verifier;
    CheckService* checks;  // told of tenant-token rotations
    AccountPolicyStatus* policy_status;
  };
  explicit AdminApi(Deps deps);

  // The tenant admin routes work in (set once, before Register).
  void SetTenant(std::string tenant_id) { tenant_id_ = std::move(tenant_id); }
  // Adds every admin route to `router`.
  void Register(Router* router);

 private:
  void RegisterAuthRoutes();
  void RegisterAccountRoutes();
  void RegisterTenantRoutes();
  void RegisterPolicyRoutes();
  void RegisterDirectoryRoutes();

  // An unauthenticated route (login).
  using Handler = std::function<void(const Request&, Response&)>;
  void Route(const std::string& method, const std::string& pattern, Handler handler);
  // A handler of an admin route: runs after authentication and CSRF checks.
  using AdminHandler = std::function<Status(const Request&, Response&, Caller&)>;
  // Registers `handler` for METHOD + pattern; authenticates, checks CSRF for state changes,
  // and turns a non-OK Status into the JSON error.
  void Admin(const std::string& method, const std::string& pattern, AdminHandler handler);

  StatusOr<Caller> Authenticate(const Request& req);
  // PermissionDenied naming reason and rule when the engine denies (model, action).
  Status Authorize(const Caller& caller, std::string_view model, std::string_view action);
  // The no-escalation rule (DESIGN.md 6), the one place every admin path asks it: a caller
  // may create, copy, change the permissions of, mint a token for, enable, or assign roles
  // and attributes to (or hand out the credential of) only a principal whose effective
  // permissions are a subset of its own (engine::PolicySnapshot::Escalations).
  // PermissionDenied naming `target_desc` and every permission the caller lacks, also kept
  // in caller.escalations for the error body.
  Status RequireNoEscalation(Caller& caller, const engine::Grant& target, std::string_view target_desc);
  // The target grant of a stored service account: its policy compiled against the caller's
  // snapshot. FailedPrecondition when it does not compile (it could allow more after a
  // policy reload, so nobody may mint for or enable it until it is fixed).
  StatusOr<std::shared_ptr<const engine::CompiledPolicy>> AccountPolicy(const Caller& caller,
                                                                         const store::ServiceAccount& account);
  // "Never locked out": Conflict (409) when the tenant would be left without an enabled user
  // who may manage users and service accounts once user `user_id` has `after` (nullopt:
  // deleted). Callers hold users_mu_ across this check and the write.
  Status RequireUserManagerRemains(const Caller& caller, const std::string& user_id,
                                   const std::optional<store::User>& after);
  // True when `user` (enabled, its roles and attributes) may do every action on the
  // `user` and `serviceaccount` models, as the admin routes authorize it.
  bool ManagesUsersAndAccounts(const engine::PolicySnapshot& snapshot, const store::User& user) const;
  // What the store keeps of a session token: HMAC-SHA256(pepper, "session:" + token), hex.
  std::string SessionHash(std::string_view token) const;
  store::AuditEntry Audit(const Caller& caller, std::string action, std::string target_type,
                          std::string target_id, std::string target_name,
                          nlohmann::json details = nlohmann::json::object()) const;
  void SetTenantToken(const std::string& tenant_id, const std::string& token) {
    checks_->SetTenantToken(tenant_id, token);
  }

  const Config& config_;
  store::Store* store_;
  const std::string pepper_;
  const Clock& clock_;
  Metrics& metrics_;
  PolicyManager& policies_;
  TokenVerifier& verifier_;
  CheckService* checks_;
  AccountPolicyStatus* policy_status_;
  RateLimiter limiter_;  // failed logins
  RateLimiter admin_limiter_;  // admin requests, per credential (keyed by SessionHash)
  Router* router_ = nullptr;
  std::string tenant_id_ = store::kDefaultTenantId;
  // Serialises user changes with the lock-out check (two admins demoting each other at once).
  std::mutex users_mu_;
};

}  // namespace warden::server
