// POST /v1/auth/login, POST /v1/auth/logout, and the users API.
#include <algorithm>
#include <regex>

#include "common/crypto.h"
#include "common/ids.h"
#include "server/admin/admin_api.h"
#include "server/http/json_io.h"
#include "server/admin/json_views.h"

namespace warden::server {

namespace {

constexpr size_t kMinPasswordLength = 8;
constexpr size_t kMaxPasswordLength = 1024;
// A fixed, valid scrypt encoding: unknown emails are verified against it so that a missing
// user takes as long as a wrong password.
const std::string& DummyHash() {
  static const std::string hash = *HashPassword("warden-dummy-password");
  return hash;
}

Status ValidateEmail(const std::string& email) {
  static const std::regex re(R"(^[^@\s]{1,64}@[^@\s]{1,255}$)");
  if (!std::regex_match(email, re)) return InvalidArgumentError("email is not a valid address", "email");
  return Status();
}

Status ValidatePassword(const std::string& password) {
  if (password.size() < kMinPasswordLength || password.size() > kMaxPasswordLength) {
    return InvalidArgumentError("password must be 8 to 1024 characters", "password");
  }
  return Status();
}

StatusOr<std::vector<std::string>> ParseRoles(const nlohmann::json& body,
                                              const engine::PolicySnapshot& snapshot, bool required) {
  std::vector<std::string> roles;
  if (body.contains("role") && body.contains("roles")) {
    return InvalidArgumentError("give role or roles, not both", "roles");
  }
  if (body.contains("role")) {
    if (!body["role"].is_string()) return InvalidArgumentError("role must be a string", "role");
    roles.push_back(body["role"].get<std::string>());
  } else if (body.contains("roles")) {
    if (!body["roles"].is_array() || body["roles"].empty()) {
      return InvalidArgumentError("roles must be a non-empty array of role names", "roles");
    }
    for (const auto& r : body["roles"]) {
      if (!r.is_string()) return InvalidArgumentError("roles must be strings", "roles");
      roles.push_back(r.get<std::string>());
    }
  } else if (required) {
    return InvalidArgumentError("role is required", "role");
  }
  for (const auto& r : roles) {
    if (!snapshot.FindRole(r)) return InvalidArgumentError("unknown role '" + r + "'", "role");
  }
  return roles;
}

}  // namespace

void AdminApi::RegisterAuthRoutes() {
  Route("POST", "/v1/auth/login", [this](const Request& req, Response& res) {
    const std::string addr = req.remote_addr;
    if (int64_t wait = limiter_.RetryAfter(addr); wait > 0) {
      res.SetHeader("Retry-After", std::to_string(wait));
      return WriteError(res, ResourceExhaustedError("too many failed logins; retry after " +
                                                    std::to_string(wait) + " s"));
    }
    StatusOr<nlohmann::json> body = ParseJsonObject(req);
    if (!body.ok()) return WriteError(res, body.status());
    Status keys = OnlyKeys(*body, {"email", "password"});
    if (!keys.ok()) return WriteError(res, keys);
    StatusOr<std::string> email = RequiredString(*body, "email");
    if (!email.ok()) return WriteError(res, email.status());
    StatusOr<std::string> password = RequiredString(*body, "password");
    if (!password.ok()) return WriteError(res, password.status());
    if (password->size() > kMaxPasswordLength) return WriteError(res, InvalidArgumentError("password is too long", "password"));

    // Service accounts have no password and are not users: their names fail like any
    // unknown email.
    StatusOr<store::User> user = store_->FindUserByEmail(tenant_id_, *email);
    bool ok = VerifyPassword(*password, user.ok() && !user->password_hash.empty() ? user->password_hash : DummyHash());
    ok = ok && user.ok() && user->enabled && !user->password_hash.empty();
    if (!ok) {
      limiter_.Record(addr);
      metrics_.login_failures++;
      store::AuditEntry audit;
      audit.tenant_id = tenant_id_;
      audit.actor_type = "anonymous";
      audit.actor_id = addr;
      audit.action = "auth.login_failed";
      audit.target_type = "user";
      audit.target_id = user.ok() ? user->id : "";
      audit.target_name = email->substr(0, 320);
      (void)store_->Append(&audit);
      return WriteError(res, UnauthenticatedError("wrong email or password"));
    }
    std::string token = kSessionPrefix + RandomBase62(43);
    store::Session session;
    session.tenant_id = user->tenant_id;
    session.user_id = user->id;
    session.token_hash = SessionHash(token);
    session.csrf_token = RandomBase62(32);
    session.expires_at = clock_.NowMillis() + config_.session_ttl_seconds * 1000;
    StatusOr<store::Session> created = store_->CreateSession(session);
    if (!created.ok()) return WriteError(res, created.status());
    std::string cookie = std::string("warden_session=") + token + "; Path=/; HttpOnly; SameSite=Strict; Max-Age=" +
                         std::to_string(config_.session_ttl_seconds);
    if (!config_.tls_cert.empty()) cookie += "; Secure";
    res.SetHeader("Set-Cookie", cookie);
    WriteJson(res, 200, {{"token", token},
                         {"csrf_token", session.csrf_token},
                         {"expires_at", TimeJson(session.expires_at)},
                         {"user", UserJson(*user)}});
  });

  Admin("POST", "/v1/auth/logout", [this](const Request&, Response& res, Caller& caller) -> Status {
    if (caller.session_id.empty()) return InvalidArgumentError("only a user session can log out");
    RETURN_IF_ERROR(store_->DeleteSession(caller.session_id));
    res.SetHeader("Set-Cookie", "warden_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    res.status = 204;
    return Status();
  });

  // `permissions`: every catalog action the caller may do, as the engine decides it without
  // resource attributes (an allow that needs a condition is not listed), so that a client (the
  // console's menu) offers only what the API would allow; the API still decides every call.
  Admin("GET", "/v1/auth/me", [](const Request&, Response& res, Caller& caller) -> Status {
    nlohmann::json permissions = nlohmann::json::object();
    const engine::Attributes none;
    for (const engine::ModelDecl& m : caller.snapshot->catalog().models()) {
      nlohmann::json actions = nlohmann::json::array();
      for (const std::string& a : m.actions) {
        if (caller.snapshot->Evaluate(caller.principal, caller.policies, m.name, a, none, none).allowed) actions.push_back(a);
      }
      if (!actions.empty()) permissions[m.name] = std::move(actions);
    }
    WriteJson(res, 200, {{"type", engine::PrincipalTypeName(caller.principal.type)},
                         {"id", caller.principal.id},
                         {"name", caller.principal.name},
                         {"roles", caller.principal.roles},
                         {"permissions", std::move(permissions)}});
    return Status();
  });

  Admin("GET", "/v1/users", [this](const Request& req, Response& res, Caller& caller) -> Status {
    RETURN_IF_ERROR(Authorize(caller, "user", "view"));
    ASSIGN_OR_RETURN(store::ListOptions options, PageOptions(req));
    ASSIGN_OR_RETURN(auto page, store_->ListUsers(caller.tenant_id, options));
    WriteJson(res, 200, PageJson(page, UserJson));
    return Status();
  });

  Admin("POST", "/v1/users", [this](const Request& req, Response& res, Caller& caller) -> Status {
    RETURN_IF_ERROR(Authorize(caller, "user", "create"));
    ASSIGN_OR_RETURN(nlohmann::json body, ParseJsonObject(req));
    RETURN_IF_ERROR(OnlyKeys(body, {"email", "name", "role", "roles", "password", "enabled", "attributes"}));
    store::User user;
    user.tenant_id = caller.tenant_id;
    ASSIGN_OR_RETURN(user.email, RequiredString(body, "email"));
    RETURN_IF_ERROR(ValidateEmail(user.email));
    ASSIGN_OR_RETURN(user.name, OptionalString(body, "name"));
    if (user.name.size() > 200) return InvalidArgumentError("name is too long", "name");
    ASSIGN_OR_RETURN(user.roles, ParseRoles(body, *caller.snapshot, true));
    ASSIGN_OR_RETURN(user.enabled, OptionalBool(body, "enabled", true));
    if (body.contains("attributes")) {
      RETURN_IF_ERROR(CheckAttributes(body["attributes"]));
      user.attributes = body["attributes"];
    }
    ASSIGN_OR_RETURN(std::string password, OptionalString(body, "password"));
    if (!password.empty()) RETURN_IF_ERROR(ValidatePassword(password));
    const auto policies = RolePolicies(*caller.snapshot, user.roles);
    RETURN_IF_ERROR(RequireNoEscalation(caller, {engine::PrincipalType::kUser, policies}, "the user '" + user.email + "'"));
    if (!password.empty()) {
      ASSIGN_OR_RETURN(user.password_hash, HashPassword(password));
    }
    std::lock_guard<std::mutex> lock(users_mu_);
    store::AuditEntry audit = Audit(caller, "user.created", "user", "", user.email, {{"roles", user.roles}});
    ASSIGN_OR_RETURN(store::User created, store_->CreateUser(user, &audit));
    WriteJson(res, 201, UserJson(created));
    return Status();
  });

  const std::string user_path = R"(/v1/users/([A-Za-z0-9_.@+\-]+))";
  Admin("GET", user_path, [this](const Request& req, Response& res, Caller& caller) -> Status {
    RETURN_IF_ERROR(Authorize(caller, "user", "view"));
    ASSIGN_OR_RETURN(store::User user, store_->GetUser(caller.tenant_id, caller.params[1]));
    WriteJson(res, 200, UserJson(user));
    return Status();
  });

  Admin("PATCH", user_path, [this](const Request& req, Response& res, Caller& caller) -> Status {
    RETURN_IF_ERROR(Authorize(caller, "user", "update"));
    ASSIGN_OR_RETURN(nlohmann::json body, ParseJsonObject(req));
    RETURN_IF_ERROR(OnlyKeys(body, {"email", "name", "role", "roles", "password", "enabled", "attributes"}));
    const std::string id = caller.params[1];
    std::lock_guard<std::mutex> lock(users_mu_);
    ASSIGN_OR_RETURN(store::User before, store_->GetUser(caller.tenant_id, id));
    const bool self = id == caller.principal.id;
    // Only users within the caller's own permissions are the caller's to manage.
    if (!self) RETURN_IF_ERROR(RequireNoEscalation(caller, {engine::PrincipalType::kUser, RolePolicies(*caller.snapshot, before.roles)}, "the user '" + before.email + "'"));
    store::UserUpdate update;
    nlohmann::json changed = nlohmann::json::array();
    if (body.contains("email")) {
      ASSIGN_OR_RETURN(std::string email, RequiredString(body, "email"));
      RETURN_IF_ERROR(ValidateEmail(email));
      update.email = email;
      changed.push_back("email");
    }
    if (body.contains("name")) {
      ASSIGN_OR_RETURN(std::string name, RequiredString(body, "name"));
      update.name = name;
      changed.push_back("name");
    }
    if (body.contains("role") || body.contains("roles")) {
      ASSIGN_OR_RETURN(std::vector<std::string> roles, ParseRoles(body, *caller.snapshot, false));
      update.roles = roles;
      changed.push_back("roles");
    }
    if (body.contains("enabled")) {
      ASSIGN_OR_RETURN(bool enabled, OptionalBool(body, "enabled", true));
      if (!enabled && id == caller.principal.id) return FailedPreconditionError("you cannot disable yourself");
      update.enabled = enabled;
      changed.push_back("enabled");
    }
    if (body.contains("attributes")) {
      RETURN_IF_ERROR(CheckAttributes(body["attributes"]));
      update.attributes = body["attributes"];
      changed.push_back("attributes");
    }
    if (body.contains("password")) {
      ASSIGN_OR_RETURN(std::string password, RequiredString(body, "password"));
      RETURN_IF_ERROR(ValidatePassword(password));
      ASSIGN_OR_RETURN(std::string hash, HashPassword(password));
      update.password_hash = hash;
      changed.push_back("password");
    }
    if (changed.empty()) {  // nothing to change: no write, no audit row
      WriteJson(res, 200, UserJson(before));
      return Status();
    }
    store::User next = before;
    if (update.roles) next.roles = *update.roles;
    if (update.attributes) next.attributes = *update.attributes;
    if (update.enabled) next.enabled = *update.enabled;
    // What the user will hold must be within the caller's own permissions, unless this is the
    // caller giving up roles it holds (its attributes unchanged).
    const bool gains = update.roles || update.attributes || update.password_hash || (next.enabled && !before.enabled);
    const bool only_dropping = self && !update.attributes && std::all_of(next.roles.begin(), next.roles.end(), [&](const std::string& r) {
      return std::find(before.roles.begin(), before.roles.end(), r) != before.roles.end();
    });
    if (gains && !only_dropping) {
      RETURN_IF_ERROR(RequireNoEscalation(caller, {engine::PrincipalType::kUser, RolePolicies(*caller.snapshot, next.roles)},
                                          "the user '" + before.email + "'"));
    }
    if (ManagesUsersAndAccounts(*caller.snapshot, before)) RETURN_IF_ERROR(RequireUserManagerRemains(caller, id, next));
    store::AuditEntry audit = Audit(caller, "user.updated", "user", id, before.email, {{"changed", changed}});
    ASSIGN_OR_RETURN(store::User after, store_->UpdateUser(caller.tenant_id, id, update, &audit));
    if (update.password_hash || (update.enabled && !*update.enabled)) {
      (void)store_->DeleteSessionsOfUser(caller.tenant_id, id);
    }
    WriteJson(res, 200, UserJson(after));
    return Status();
  });

  Admin("DELETE", user_path, [this](const Request& req, Response& res, Caller& caller) -> Status {
    RETURN_IF_ERROR(Authorize(caller, "user", "delete"));
    const std::string id = caller.params[1];
    if (id == caller.principal.id) return FailedPreconditionError("you cannot delete yourself");
    std::lock_guard<std::mutex> lock(users_mu_);
    ASSIGN_OR_RETURN(store::User user, store_->GetUser(caller.tenant_id, id));
    RETURN_IF_ERROR(RequireNoEscalation(caller, {engine::PrincipalType::kUser, RolePolicies(*caller.snapshot, user.roles)},
                                        "the user '" + user.email + "'"));
    if (ManagesUsersAndAccounts(*caller.snapshot, user)) RETURN_IF_ERROR(RequireUserManagerRemains(caller, id, std::nullopt));
    store::AuditEntry audit = Audit(caller, "user.deleted", "user", id, user.email);
    RETURN_IF_ERROR(store_->DeleteUser(caller.tenant_id, id, &audit));
    res.status = 204;
    return Status();
  });
}

}  // namespace warden::server
