// The warden HTTP server: owns the threads, wires engine/ (PolicyManager) and store/
// (store::Store) together, and serves the API of DESIGN.md section 6.
//
// Routes live in several files by concern: auth_routes.cc (login/logout, users),
// account_routes.cc (service accounts, permissions, tokens, roles, catalog, audit),
// check_routes.cc (/v1/check, tenant, decision history), ops_routes.cc (health, metrics,
// policies). Each admin route authenticates the caller and asks the engine whether the
// caller may do (serviceaccount|user, action) before doing anything.
// Thread-safety: after Start(), handlers run concurrently on the HTTP pool; all shared state
// is in thread-safe members (store, policy manager, verifier, logger, limiter, metrics).
#pragma once

#include <httplib.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "common/status.h"
#include "engine/engine.h"
#include "server/config.h"
#include "server/decision_logger.h"
#include "server/event_server.h"
#include "server/metrics.h"
#include "server/policy_manager.h"
#include "server/router.h"
#include "server/slow_token_store.h"
#include "server/token_verifier.h"
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
  // Set by App::RequireNoEscalation when it refuses: what the caller lacks (the error body's
  // "missing" list).
  std::vector<engine::Escalation> escalations;
  Router::Captures params;  // of the route's pattern: params[1] is the first "([...]+)" segment
};

// The policies of a user's roles (unknown roles grant nothing) and the user as a principal.
std::vector<const engine::CompiledPolicy*> RolePolicies(const engine::PolicySnapshot& snapshot,
                                                        const std::vector<std::string>& roles);
engine::Principal UserPrincipal(const store::User& user);

// Counts events (failed logins, invalid tokens) per client address in one-minute windows that
// start at an address's first event: at most `per_minute` per window, then RetryAfter > 0
// until the window ends. Memory is bounded: a table of more than 100,000 addresses starts over.
// Thread-safe.
class RateLimiter {
 public:
  RateLimiter(int per_minute, const Clock& clock) : per_minute_(per_minute), clock_(clock) {}
  // Seconds to wait when the address is over its budget, else 0.
  int64_t RetryAfter(const std::string& addr);
  void Record(const std::string& addr);

 private:
  struct Window {
    int64_t start = 0;
    int count = 0;
  };
  const int per_minute_;
  const Clock& clock_;
  std::mutex mu_;
  std::unordered_map<std::string, Window> windows_;  // guarded by mu_
};

class App {
 public:
  // `checkpoint` is called by the maintenance thread about once a second (SQLite's WAL
  // checkpoint); may be empty.
  App(Config config, store::Store* store, std::string pepper, const Clock& clock,
      std::function<Status()> checkpoint = {});
  ~App();

  // Loads policies, prepares the tenant and first admin. `admin_password_out` receives a
  // generated admin password on the very first start (empty otherwise).
  Status Init(std::string* admin_password_out);
  // Binds the listen address (port 0 picks a free port). Returns the bound port.
  StatusOr<int> Bind();
  // Serves until Stop() (blocking).
  void Serve();
  void Stop();

  const Config& config() const { return config_; }
  Metrics& metrics() { return metrics_; }

 private:
  // Routes. Route() adds one to the table both HTTP fronts serve (the event loop for plain
  // HTTP, httplib's SSLServer under TLS); patterns are those of Router.
  void Route(const std::string& method, const std::string& pattern, httplib::Server::Handler handler);
  void RegisterAuthRoutes();
  void RegisterAccountRoutes();
  void RegisterCheckRoutes();
  void RegisterOpsRoutes();

  // A handler of an admin route: runs after authentication and CSRF checks.
  using AdminHandler = std::function<Status(const httplib::Request&, httplib::Response&, Caller&)>;
  // Registers `handler` for METHOD + pattern; authenticates, checks CSRF for state changes,
  // and turns a non-OK Status into the JSON error.
  void Admin(const std::string& method, const std::string& pattern, AdminHandler handler);

  StatusOr<Caller> Authenticate(const httplib::Request& req);
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
  // "Never locked out": FailedPrecondition (409) when the tenant would be left without an
  // enabled user who may manage users and service accounts once user `user_id` has `after`
  // (nullopt: deleted). Callers hold users_mu_ across this check and the write.
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

  // Both fronts' handler of every route (on the plain-HTTP front, all but the inline check):
  // sets X-Request-Id, finds the route and answers 404 when there is none.
  void Dispatch(const httplib::Request& req, httplib::Response& res);
  // X-Request-Id of the answer: the caller's (when 1-128 chars) or a new ULID.
  void SetRequestId(const httplib::Request& req, httplib::Response& res);
  void LogRequest(const httplib::Request& req, const httplib::Response& res, double seconds,
                  const std::string& request_id);
  StatusOr<int> BindTls();

  // Check path. DecideCheck parses and decides a check, writes the answer into `res` and
  // appends the decision-log rows to `rows`; the answer may only be sent once those rows are
  // committed (else it must become a 503). Errors write `res` and append nothing.
  // With `needs_store` (the event loop) a token that is not in the verifier's cache is not
  // looked up: *needs_store is set and nothing is written or appended.
  void DecideCheck(const httplib::Request& req, httplib::Response& res, std::vector<store::DecisionRow>* rows,
                   bool* needs_store = nullptr);
  // DecideCheck and a commit of its own (the TLS front, one thread per connection, and the
  // event loop's workers for checks whose token needs the store).
  void HandleCheck(const httplib::Request& req, httplib::Response& res);
  // The event loop's batch: every check answered in one pass, committed together. False when
  // the token needs the store: the loop hands the request to a worker and keeps answering.
  bool DecideInline(httplib::Request& req, httplib::Response& res);
  void CommitInline();

  void MaintenanceLoop();
  // After a policy swap: compiles every account's policy against the new catalog and keeps
  // the ones that no longer compile for GET /v1/policies/status (they deny until fixed).
  void RecheckAccountPolicies();
  nlohmann::json PolicyStatusJson() const;

  Config config_;
  store::Store* store_;
  const std::string pepper_;
  const Clock& clock_;
  std::function<Status()> checkpoint_;
  Metrics metrics_;
  PolicyManager policies_;
  std::unique_ptr<store::TokenStore> slow_tokens_;  // tests only: test_token_lookup_delay_ms
  TokenVerifier verifier_;
  std::unique_ptr<store::DecisionSink> export_;  // the NDJSON export, when configured
  std::unique_ptr<DecisionLogger> logger_;
  RateLimiter limiter_;                // failed logins
  RateLimiter invalid_token_limiter_;  // check requests with an invalid token
  Router router_;  // written before serving, then read-only
  std::unique_ptr<EventServer> front_;  // plain HTTP
  std::unique_ptr<httplib::Server> tls_;  // HTTPS
  // The event loop's current batch (loop thread only).
  std::vector<store::DecisionRow> batch_rows_;
  std::vector<httplib::Response*> batch_answers_;
  std::string tenant_id_ = store::kDefaultTenantId;
  // Every tenant's analytics token, keyed by its SHA-256 (a lookup compares digests, never the
  // secret itself) -> tenant id. Copied and swapped on rotation (under tenant_tokens_mu_), read
  // lock-free by checks.
  using TenantTokens = std::unordered_map<std::string, std::string>;
  std::atomic<std::shared_ptr<const TenantTokens>> tenant_tokens_;
  std::mutex tenant_tokens_mu_;
  // Sets tenant `tenant_id`'s token (dropping its previous one).
  void SetTenantToken(const std::string& tenant_id, const std::string& token);
  // The tenant whose token this is, or "".
  std::string TenantOfToken(std::string_view token) const;
  // Serialises user changes with the lock-out check (two admins demoting each other at once).
  std::mutex users_mu_;

  mutable std::mutex broken_mu_;
  nlohmann::json broken_accounts_ = nlohmann::json::array();  // guarded by broken_mu_

  std::mutex maint_mu_;
  std::condition_variable maint_cv_;
  bool stopping_ = false;  // guarded by maint_mu_
  std::thread maintenance_;
};

}  // namespace warden::server
