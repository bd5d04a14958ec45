#include "server/admin/admin_api.h"

#include "common/crypto.h"
#include "server/http/json_io.h"

namespace warden::server {

namespace {

constexpr char kSessionCookie[] = "warden_session";
constexpr char kCsrfHeader[] = "X-CSRF-Token";

std::string CookieValue(const Request& req, const std::string& name) {
  std::string cookies = req.Header("Cookie");
  size_t pos = 0;
  while (pos < cookies.size()) {
    size_t end = cookies.find(';', pos);
    if (end == std::string::npos) end = cookies.size();
    std::string part = cookies.substr(pos, end - pos);
    while (!part.empty() && part.front() == ' ') part.erase(0, 1);
    if (part.rfind(name + "=", 0) == 0) return part.substr(name.size() + 1);
    pos = end + 1;
  }
  return {};
}

// The credential of an admin request: the bearer token (whatever follows "Bearer "; an
// Authorization header of another scheme gives ""), else the session cookie.
std::string CredentialOf(const Request& req, bool* via_cookie) {
  const std::string auth = req.Header("Authorization");
  *via_cookie = auth.empty();
  if (auth.empty()) return CookieValue(req, kSessionCookie);
  return auth.rfind("Bearer ", 0) == 0 ? auth.substr(7) : std::string();
}

}  // namespace

std::vector<const engine::CompiledPolicy*> RolePolicies(const engine::PolicySnapshot& snapshot,
                                                        const std::vector<std::string>& roles) {
  std::vector<const engine::CompiledPolicy*> out;
  for (const auto& role : roles) {
    if (const engine::CompiledPolicy* p = snapshot.FindRole(role)) out.push_back(p);
  }
  return out;
}

engine::Principal UserPrincipal(const store::User& user) {
  engine::Principal principal;
  principal.type = engine::PrincipalType::kUser;
  principal.id = user.id;
  principal.name = user.email;
  principal.roles = user.roles;
  if (user.attributes.is_object()) {
    auto attrs = engine::Attributes::FromJson(user.attributes, "attributes");
    if (attrs.ok()) principal.attributes = std::move(attrs).value();
  }
  return principal;
}

AdminApi::AdminApi(Deps deps)
    : config_(*deps.config),
      store_(deps.store),
      pepper_(std::move(deps.pepper)),
      clock_(*deps.clock),
      metrics_(*deps.metrics),
      policies_(*deps.policies),
      verifier_(*deps.verifier),
      checks_(deps.checks),
      policy_status_(deps.policy_status),
      limiter_(config_.login_failures_per_minute, clock_),
      admin_limiter_(config_.admin_requests_per_minute, clock_) {}

void AdminApi::Register(Router* router) {
  router_ = router;
  RegisterAuthRoutes();
  RegisterAccountRoutes();
  RegisterTenantRoutes();
  RegisterPolicyRoutes();
  RegisterDirectoryRoutes();
}

void AdminApi::Route(const std::string& method, const std::string& pattern, Handler handler) {
  router_->Add(method, pattern, [handler = std::move(handler)](const Request& req, Response& res,
                                                              const Router::Captures&) { handler(req, res); });
}

void AdminApi::Admin(const std::string& method, const std::string& pattern, AdminHandler handler) {
  const bool changes_state = method != "GET";
  auto wrapped = [this, handler, changes_state](const Request& req, Response& res,
                                               const Router::Captures& captures) {
    // Per credential, looked up before the credential is (no store read for a caller over
    // its budget); only a credential that authenticates is counted, so made-up ones cannot
    // fill the table (they are refused 401 at the cost of one lookup each).
    bool via_cookie = false;
    const std::string credential = CredentialOf(req, &via_cookie);
    const std::string key = credential.empty() ? std::string() : SessionHash(credential);
    if (!key.empty()) {
      if (const int64_t wait = admin_limiter_.RetryAfter(key); wait > 0) {
        metrics_.admin_throttled++;
        res.SetHeader("Retry-After", std::to_string(wait));
        return WriteError(res, ResourceExhaustedError("too many admin requests with this credential; retry after " +
                                                      std::to_string(wait) + " s"));
      }
    }
    StatusOr<Caller> caller = Authenticate(req);
    if (!caller.ok()) return WriteError(res, caller.status());
    admin_limiter_.Record(key);
    caller->params = captures;
    if (changes_state && caller->via_cookie &&
        !ConstantTimeEquals(req.Header(kCsrfHeader), caller->csrf_token)) {
      return WriteError(res, PermissionDeniedError(std::string("state-changing requests authenticated by cookie need the ") +
                                                   kCsrfHeader + " header returned at login"));
    }
    Status st = handler(req, res, *caller);
    if (st.ok()) return;
    nlohmann::json extra = nlohmann::json::object();
    if (st.code() == StatusCode::kPermissionDenied && !caller->escalations.empty()) {
      nlohmann::json& missing = extra["missing"] = nlohmann::json::array();
      for (const engine::Escalation& e : caller->escalations) {
        missing.push_back({{"model", e.model}, {"action", e.action},
                           {"reason", e.undecidable ? "conditional" : "not_held"}});
      }
    }
    WriteError(res, st, extra);
  };
  router_->Add(method, pattern, std::move(wrapped));
}

StatusOr<Caller> AdminApi::Authenticate(const Request& req) {
  bool via_cookie = false;
  const std::string credential = CredentialOf(req, &via_cookie);
  if (credential.empty()) {
    return via_cookie ? UnauthenticatedError("authentication required: a session or an API token")
                      : UnauthenticatedError("the Authorization header must be 'Bearer <token>'");
  }
  Caller caller;
  caller.snapshot = policies_.Current();
  caller.tenant_id = tenant_id_;
  if (credential.rfind(kSessionPrefix, 0) == 0) {
    StatusOr<store::Session> session = store_->FindSessionByHash(SessionHash(credential));
    if (!session.ok()) return UnauthenticatedError("the session is invalid or expired");
    StatusOr<store::User> user = store_->GetUser(session->tenant_id, session->user_id);
    if (!user.ok() || !user->enabled) return UnauthenticatedError("the session is invalid or expired");
    caller.actor_type = store::kActorUser;
    caller.tenant_id = user->tenant_id;
    caller.session_id = session->id;
    caller.csrf_token = session->csrf_token;
    caller.via_cookie = via_cookie;
    caller.principal = UserPrincipal(*user);
    caller.policies = RolePolicies(*caller.snapshot, user->roles);
    return caller;
  }
  // A cookie never authenticates a service account.
  if (via_cookie) return UnauthenticatedError("the session is invalid or expired");
  TokenVerifier::Result verified = verifier_.Verify(credential);
  if (verified.outcome == TokenVerifier::Outcome::kUnavailable) return UnavailableError("the store is unavailable");
  if (verified.outcome == TokenVerifier::Outcome::kAccountDisabled) return UnauthenticatedError("the service account is disabled");
  if (verified.outcome != TokenVerifier::Outcome::kOk) return UnauthenticatedError("the token is invalid, expired or deleted");
  caller.actor_type = store::kActorServiceAccount;
  caller.account = verified.account;
  caller.snapshot = verified.account->snapshot;
  caller.tenant_id = verified.account->tenant_id;
  caller.principal = verified.account->principal;
  if (verified.account->policy) caller.policies.push_back(verified.account->policy.get());
  return caller;
}

Status AdminApi::Authorize(const Caller& caller, std::string_view model, std::string_view action) {
  engine::Attributes none;
  engine::Decision d = caller.snapshot->Evaluate(caller.principal, caller.policies, model, action, none, none);
  if (d.allowed) return Status();
  std::string msg = "not allowed to " + std::string(action) + " " + std::string(model) + ": " +
                    std::string(engine::ReasonName(d.reason));
  if (!d.rule.empty()) msg += " (rule " + std::string(d.rule) + ")";
  return PermissionDeniedError(msg);
}

Status AdminApi::RequireNoEscalation(Caller& caller, const engine::Grant& target, std::string_view target_desc) {
  caller.escalations = caller.snapshot->Escalations({caller.principal.type, caller.policies}, target);
  if (caller.escalations.empty()) return Status();
  std::string held_never, held_conditionally;
  int listed = 0;
  for (const engine::Escalation& e : caller.escalations) {
    std::string& list = e.undecidable ? held_conditionally : held_never;
    if (++listed > 20) continue;  // the error body's "missing" has them all
    list += (list.empty() ? "" : ", ") + e.model + ":" + e.action;
  }
  std::string msg = "no escalation: " + std::string(target_desc) + " would hold permissions you do not hold yourself";
  if (!held_never.empty()) msg += " (" + held_never + ")";
  if (!held_conditionally.empty()) {
    msg += std::string(held_never.empty() ? "" : ";") +
           " you hold these only under conditions that cannot be shown to cover it, so they are refused (" +
           held_conditionally + ")";
  }
  if (listed > 20) msg += " and " + std::to_string(listed - 20) + " more";
  return PermissionDeniedError(msg);
}

StatusOr<std::shared_ptr<const engine::CompiledPolicy>> AdminApi::AccountPolicy(const Caller& caller,
                                                                            const store::ServiceAccount& account) {
  engine::PolicyResult compiled =
      engine::CompileAccountPolicy(*caller.snapshot, account.policy_yaml, "permissions.yaml", account.name);
  if (!compiled.policy) {
    return FailedPreconditionError("the service account's permissions do not compile against the current policies "
                                   "(GET /v1/policies/status); fix them first");
  }
  return std::shared_ptr<const engine::CompiledPolicy>(std::move(compiled.policy));
}

bool AdminApi::ManagesUsersAndAccounts(const engine::PolicySnapshot& snapshot, const store::User& user) const {
  if (!user.enabled) return false;
  const engine::Principal principal = UserPrincipal(user);
  const std::vector<const engine::CompiledPolicy*> policies = RolePolicies(snapshot, user.roles);
  engine::Attributes none;
  for (const engine::ModelDecl& m : snapshot.catalog().models()) {
    if (m.name != "user" && m.name != "serviceaccount") continue;
    for (const std::string& a : m.actions) {
      if (!snapshot.Evaluate(principal, policies, m.name, a, none, none).allowed) return false;
    }
  }
  return true;
}

Status AdminApi::RequireUserManagerRemains(const Caller& caller, const std::string& user_id,
                                      const std::optional<store::User>& after) {
  const engine::PolicySnapshot& snapshot = *caller.snapshot;
  if (after && ManagesUsersAndAccounts(snapshot, *after)) return Status();
  store::ListOptions page{store::kMaxPageLimit, ""};
  for (;;) {
    ASSIGN_OR_RETURN(auto users, store_->ListUsers(caller.tenant_id, page));
    for (const store::User& u : users.items) {
      if (u.id != user_id && ManagesUsersAndAccounts(snapshot, u)) return Status();
    }
    if (users.next_cursor.empty()) break;
    page.cursor = users.next_cursor;
  }
  return ConflictError(
      "this would leave the tenant without an enabled user who may manage users and service accounts; "
      "give another user that role first (operators recover with `warden admin reset-password`)");
}

std::string AdminApi::SessionHash(std::string_view token) const {
  return ToHex(HmacSha256(pepper_, "session:" + std::string(token)));
}

store::AuditEntry AdminApi::Audit(const Caller& caller, std::string action, std::string target_type,
                             std::string target_id, std::string target_name,
                             nlohmann::json details) const {
  store::AuditEntry e;
  e.tenant_id = caller.tenant_id;
  e.actor_type = caller.actor_type;
  e.actor_id = caller.principal.id;
  e.action = std::move(action);
  e.target_type = std::move(target_type);
  e.target_id = std::move(target_id);
  e.target_name = std::move(target_name);
  e.details = std::move(details);
  e.details["actor_name"] = caller.principal.name;
  return e;
}

}  // namespace warden::server
