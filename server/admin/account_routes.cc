// Service accounts, their permissions and tokens; roles, catalog and the audit log.
#include <optional>
#include <regex>

#include "common/crypto.h"
#include "server/admin/admin_api.h"
#include "server/http/json_io.h"
#include "server/admin/json_views.h"

namespace warden::server {

namespace {

constexpr char kAccountPath[] = R"(/v1/service-accounts/([A-Za-z0-9_.\-]+))";
constexpr char kPolicyFile[] = "permissions.yaml";
constexpr size_t kMaxDescription = 1000;

Status ValidateAccountName(const std::string& name) {
  static const std::regex re(R"(^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$)");
  if (!std::regex_match(name, re)) {
    return InvalidArgumentError(
        "name must be 1-64 characters: letters, digits, '.', '_' or '-', starting with a letter or digit",
        "name");
  }
  // Accounts are addressed by id or name in URLs; a name shaped like an id would be ambiguous.
  static const std::regex id_like(R"(^[0-9A-HJKMNP-TV-Z]{26}$)");
  if (std::regex_match(name, id_like)) return InvalidArgumentError("name must not look like an account id", "name");
  return Status();
}

// Writes the 400 answer for a policy with compile errors (every error with its position).
// `json_yaml`: the YAML emitted for a JSON body, whose lines the client never saw; then each
// error names the JSON field instead of a line and column.
void WritePolicyErrors(Response& res, const std::vector<engine::CompileError>& errors,
                       const std::string* json_yaml) {
  nlohmann::json list = nlohmann::json::array();
  std::string message = "the policy does not compile:";
  const std::optional<engine::PolicyFieldIndex> fields =
      json_yaml != nullptr ? std::optional<engine::PolicyFieldIndex>(std::in_place, *json_yaml) : std::nullopt;
  for (const auto& e : errors) {
    if (fields) {
      std::string field = fields->At(e.line, e.column);
      list.push_back({{"field", field}, {"message", e.message}});
      if (list.size() <= 10) message += "\n" + (field.empty() ? "" : field + ": ") + e.message;
      continue;
    }
    list.push_back(e.ToJson());
    if (list.size() <= 10) message += "\n" + e.ToString();
  }
  WriteJson(res, 400, {{"error", {{"code", "invalid_argument"}, {"message", message},
                                  {"field", "permissions"}, {"errors", list}}}});
}

}  // namespace

void AdminApi::RegisterAccountRoutes() {
  // Compiles `yaml` for the account and refuses permissions the caller does not hold itself.
  // On compile errors the 400 is written to `res` and `*written` is set; `from_json`: the
  // client sent JSON, so errors name JSON fields.
  auto check_policy = [this](Caller& caller, const std::string& yaml, const std::string& account_name,
                             Response& res, bool* written, bool from_json) -> Status {
    engine::PolicyResult compiled = engine::CompileAccountPolicy(*caller.snapshot, yaml, kPolicyFile, account_name);
    if (!compiled.policy) {
      WritePolicyErrors(res, compiled.errors, from_json ? &yaml : nullptr);
      *written = true;
      return Status();
    }
    const engine::CompiledPolicy* policy = compiled.policy.get();
    return RequireNoEscalation(caller, {engine::PrincipalType::kServiceAccount, std::span(&policy, 1)},
                               "the service account '" + account_name + "'");
  };
  // The stored account as a no-escalation target: minting its token, enabling it or changing
  // the attributes its conditions read gives its permissions to whoever holds a token.
  auto check_account = [this](Caller& caller, const store::ServiceAccount& account) -> Status {
    ASSIGN_OR_RETURN(auto policy, AccountPolicy(caller, account));
    const engine::CompiledPolicy* p = policy.get();
    return RequireNoEscalation(caller, {engine::PrincipalType::kServiceAccount, std::span(&p, 1)},
                               "the service account '" + account.name + "'");
  };
  // Finds a live account by id, then by name.
  auto find = [this](const Caller& caller, const std::string& key) -> StatusOr<store::ServiceAccount> {
    auto by_id = store_->GetAccount(caller.tenant_id, key);
    if (by_id.ok() || by_id.status().code() != StatusCode::kNotFound) return by_id;
    auto by_name = store_->GetAccountByName(caller.tenant_id, key);
    if (by_name.ok() || by_name.status().code() != StatusCode::kNotFound) return by_name;
    return NotFoundError("no service account '" + key + "'");
  };

  Admin("GET", "/v1/service-accounts", [this](const Request& req, Response& res, Caller& caller) -> Status {
    RETURN_IF_ERROR(Authorize(caller, "serviceaccount", "view"));
    ASSIGN_OR_RETURN(store::ListOptions options, PageOptions(req));
    ASSIGN_OR_RETURN(auto page, store_->ListAccounts(caller.tenant_id, options));
    WriteJson(res, 200, PageJson(page, AccountJson));
    return Status();
  });

  Admin("POST", "/v1/service-accounts", [this, find, check_policy](const Request& req, Response& res, Caller& caller) -> Status {
    RETURN_IF_ERROR(Authorize(caller, "serviceaccount", "create"));
    ASSIGN_OR_RETURN(nlohmann::json body, ParseJsonObject(req));
    RETURN_IF_ERROR(OnlyKeys(body, {"name", "description", "copy_permissions_from", "attributes", "enabled"}));
    store::ServiceAccount account;
    account.tenant_id = caller.tenant_id;
    ASSIGN_OR_RETURN(account.name, RequiredString(body, "name"));
    RETURN_IF_ERROR(ValidateAccountName(account.name));
    ASSIGN_OR_RETURN(account.description, OptionalString(body, "description"));
    if (account.description.size() > kMaxDescription) return InvalidArgumentError("description is too long", "description");
    ASSIGN_OR_RETURN(account.enabled, OptionalBool(body, "enabled", true));
    if (body.contains("attributes")) {
      RETURN_IF_ERROR(CheckAttributes(body["attributes"]));
      account.attributes = body["attributes"];
    }
    std::string kind = "scratch", source;
    if (body.contains("copy_permissions_from") && !body["copy_permissions_from"].is_null()) {
      const auto& from = body["copy_permissions_from"];
      if (!from.is_object()) return InvalidArgumentError("copy_permissions_from must be an object", "copy_permissions_from");
      RETURN_IF_ERROR(OnlyKeys(from, {"kind", "name"}, "copy_permissions_from."));
      auto k = RequiredString(from, "kind");
      if (!k.ok()) return InvalidArgumentError(k.status().message(), "copy_permissions_from.kind");
      kind = *k;
      if (kind != "scratch") {
        auto n = RequiredString(from, "name");
        if (!n.ok()) return InvalidArgumentError(n.status().message(), "copy_permissions_from.name");
        source = *n;
      }
    }
    engine::PolicyDoc doc;
    nlohmann::json copied = {{"kind", kind}};
    if (kind == "scratch") {
      doc = engine::ScratchPolicy(*caller.snapshot, account.name);
    } else if (kind == "role") {
      auto role_doc = engine::CopyRolePolicy(*caller.snapshot, source, account.name);
      if (!role_doc.ok()) return InvalidArgumentError("unknown role '" + source + "'", "copy_permissions_from.name");
      doc = std::move(role_doc).value();
      copied["name"] = source;
    } else if (kind == "service_account") {
      auto src = find(caller, source);
      if (!src.ok()) return InvalidArgumentError("unknown service account '" + source + "'", "copy_permissions_from.name");
      RETURN_IF_ERROR(Authorize(caller, "serviceaccount", "view"));
      std::vector<engine::CompileError> errors;
      auto src_doc = engine::ParsePolicyDoc(src->policy_yaml, kPolicyFile, &errors);
      if (!src_doc.ok()) return FailedPreconditionError("the source account's policy cannot be read");
      doc = engine::CopyAccountPolicy(*caller.snapshot, *src_doc, src->name, account.name);
      copied["name"] = src->name;
      copied["id"] = src->id;
    } else {
      return InvalidArgumentError("kind must be scratch, role or service_account", "copy_permissions_from.kind");
    }
    account.policy_yaml = engine::EmitPolicyYaml(doc);
    bool written = false;
    RETURN_IF_ERROR(check_policy(caller, account.policy_yaml, account.name, res, &written, false));
    if (written) return Status();
    account.created_by_type = caller.actor_type;
    account.created_by_id = caller.principal.id;
    store::AuditEntry audit = Audit(caller, "service_account.created", "service_account", "", account.name,
                                    {{"copy_permissions_from", copied}});
    ASSIGN_OR_RETURN(store::ServiceAccount created, store_->CreateAccount(account, &audit));
    WriteJson(res, 201, AccountJson(created));
    return Status();
  });

  Admin("GET", kAccountPath, [this, find](const Request& req, Response& res, Caller& caller) -> Status {
    RETURN_IF_ERROR(Authorize(caller, "serviceaccount", "view"));
    ASSIGN_OR_RETURN(store::ServiceAccount account, find(caller, caller.params[1]));
    WriteJson(res, 200, AccountJson(account));
    return Status();
  });

  Admin("PATCH", kAccountPath, [this, find, check_account](const Request& req, Response& res, Caller& caller) -> Status {
    RETURN_IF_ERROR(Authorize(caller, "serviceaccount", "update"));
    ASSIGN_OR_RETURN(nlohmann::json body, ParseJsonObject(req));
    RETURN_IF_ERROR(OnlyKeys(body, {"name", "description", "enabled", "attributes"}));
    ASSIGN_OR_RETURN(store::ServiceAccount before, find(caller, caller.params[1]));
    store::AccountUpdate update;
    std::string action = "service_account.updated";
    nlohmann::json details = nlohmann::json::object();
    if (body.contains("name")) {
      ASSIGN_OR_RETURN(std::string name, RequiredString(body, "name"));
      RETURN_IF_ERROR(ValidateAccountName(name));
      update.name = name;
      if (name != before.name) {
        action = "service_account.renamed";
        details["old_name"] = before.name;
        details["new_name"] = name;
      }
    }
    if (body.contains("description")) {
      ASSIGN_OR_RETURN(std::string d, RequiredString(body, "description"));
      if (d.size() > kMaxDescription) return InvalidArgumentError("description is too long", "description");
      update.description = d;
      details["description"] = true;
    }
    if (body.contains("attributes")) {
      RETURN_IF_ERROR(CheckAttributes(body["attributes"]));
      update.attributes = body["attributes"];
      details["attributes"] = true;
    }
    if (body.contains("enabled")) {
      ASSIGN_OR_RETURN(bool enabled, OptionalBool(body, "enabled", true));
      update.enabled = enabled;
      if (enabled != before.enabled) action = enabled ? "service_account.enabled" : "service_account.disabled";
      details["enabled"] = enabled;
    }
    if (body.empty()) {  // nothing to change: no write, no audit row
      WriteJson(res, 200, AccountJson(before));
      return Status();
    }
    if ((update.enabled && *update.enabled && !before.enabled) || update.attributes) {
      RETURN_IF_ERROR(check_account(caller, before));
    }
    store::AuditEntry audit = Audit(caller, action, "service_account", before.id, update.name.value_or(before.name), details);
    ASSIGN_OR_RETURN(store::ServiceAccount after, store_->UpdateAccount(caller.tenant_id, before.id, update, &audit));
    verifier_.InvalidateAccount(before.id);
    WriteJson(res, 200, AccountJson(after));
    return Status();
  });

  Admin("DELETE", kAccountPath, [this, find](const Request& req, Response& res, Caller& caller) -> Status {
    RETURN_IF_ERROR(Authorize(caller, "serviceaccount", "delete"));
    ASSIGN_OR_RETURN(store::ServiceAccount account, find(caller, caller.params[1]));
    store::AuditEntry audit = Audit(caller, "service_account.deleted", "service_account", account.id, account.name,
                                    {{"tokens_deleted", account.token_count}});
    RETURN_IF_ERROR(store_->SoftDeleteAccount(caller.tenant_id, account.id, &audit));
    verifier_.InvalidateAccount(account.id);
    res.status = 204;
    return Status();
  });

  const std::string permissions_path = std::string(kAccountPath) + "/permissions";
  Admin("GET", permissions_path, [this, find](const Request& req, Response& res, Caller& caller) -> Status {
    RETURN_IF_ERROR(Authorize(caller, "serviceaccount", "view"));
    ASSIGN_OR_RETURN(store::ServiceAccount account, find(caller, caller.params[1]));
    res.SetHeader("ETag", "\"" + std::to_string(account.policy_version) + "\"");
    if (IsYamlContentType(req.Header("Accept"))) {
      res.status = 200;
      res.SetContent(account.policy_yaml, "application/yaml");
      return Status();
    }
    std::vector<engine::CompileError> errors;
    ASSIGN_OR_RETURN(engine::PolicyDoc doc, engine::ParsePolicyDoc(account.policy_yaml, kPolicyFile, &errors));
    nlohmann::json out = engine::PolicyDocToJson(doc);
    out["version"] = account.policy_version;
    WriteJson(res, 200, out);
    return Status();
  });

  Admin("PUT", permissions_path, [this, find, check_policy](const Request& req, Response& res, Caller& caller) -> Status {
    RETURN_IF_ERROR(Authorize(caller, "serviceaccount", "update"));
    ASSIGN_OR_RETURN(store::ServiceAccount account, find(caller, caller.params[1]));
    const std::string content_type = req.Header("Content-Type");
    const bool from_yaml = IsYamlContentType(content_type);
    // The document as sent, and whether it names its provenance (a YAML copiedFrom key, a JSON
    // copied_from field).
    engine::PolicyDoc doc;
    bool sent_copied_from = false;
    std::string yaml;  // what is compiled and stored
    if (from_yaml) {
      yaml = req.body;
      bool written = false;  // compile first: errors carry positions in the client's text
      RETURN_IF_ERROR(check_policy(caller, yaml, account.name, res, &written, false));
      if (written) return Status();
      std::vector<engine::CompileError> errors;
      ASSIGN_OR_RETURN(doc, engine::ParsePolicyDoc(yaml, kPolicyFile, &errors, &sent_copied_from));
    } else if (IsJsonContentType(req)) {
      ASSIGN_OR_RETURN(nlohmann::json body, ParseJsonObject(req));
      body.erase("version");
      sent_copied_from = body.contains("copied_from") && !body["copied_from"].is_null();
      ASSIGN_OR_RETURN(doc, engine::PolicyDocFromJson(body));
    } else {
      return UnsupportedMediaType("the body must be application/json or application/yaml");
    }
    // Provenance is the server's: set when the account was created or copied, kept across
    // edits. A document may repeat it, not change it; it may only name its own account.
    if (!doc.account.empty() && doc.account != account.name) {
      return InvalidArgumentError("account must be '" + account.name + "', the account this policy belongs to", "account");
    }
    std::vector<engine::CompileError> stored_errors;
    auto stored = engine::ParsePolicyDoc(account.policy_yaml, kPolicyFile, &stored_errors);
    if (!stored.ok()) return InternalError("the stored policy of this account cannot be read");
    const bool same_provenance = doc.copied_from_kind == stored->copied_from_kind &&
                                 doc.copied_from_name == stored->copied_from_name &&
                                 doc.copied_from_revision == stored->copied_from_revision;
    if (sent_copied_from && !same_provenance) {
      return InvalidArgumentError("copied_from is set by the server when the account is created or copied and cannot be changed; "
                                  "send it unchanged or leave it out",
                                  from_yaml ? "copiedFrom" : "copied_from");
    }
    if (!from_yaml || !sent_copied_from || doc.account.empty()) {
      // Stored in canonical form with the server's account name and provenance (a YAML body
      // that already carries both is stored as sent, comments and all).
      doc.account = account.name;
      doc.copied_from_kind = stored->copied_from_kind;
      doc.copied_from_name = stored->copied_from_name;
      doc.copied_from_revision = stored->copied_from_revision;
      yaml = engine::EmitPolicyYaml(doc);
      bool written = false;
      RETURN_IF_ERROR(check_policy(caller, yaml, account.name, res, &written, !from_yaml));
      if (written) return Status();
    }
    std::optional<int64_t> expected;
    if (std::string m = req.Header("If-Match"); !m.empty()) {
      try {
        expected = std::stoll(m.front() == '"' ? m.substr(1) : m);
      } catch (const std::exception&) {
        return InvalidArgumentError("If-Match must be a policy version", "If-Match");
      }
    }
    store::AuditEntry audit = Audit(caller, "service_account.permissions_changed", "service_account", account.id,
                                    account.name, {{"from_version", account.policy_version}});
    ASSIGN_OR_RETURN(store::PolicyVersion version,
                     store_->SetPolicy(caller.tenant_id, account.id, yaml, caller.actor_type, caller.principal.id,
                                       expected, &audit));
    verifier_.InvalidateAccount(account.id);
    WriteJson(res, 200, {{"id", account.id}, {"version", version.version}, {"updated_at", TimeJson(version.created_at)}});
    return Status();
  });

  Admin("GET", permissions_path + "/versions", [this, find](const Request& req, Response& res, Caller& caller) -> Status {
    RETURN_IF_ERROR(Authorize(caller, "serviceaccount", "view"));
    ASSIGN_OR_RETURN(store::ServiceAccount account, find(caller, caller.params[1]));
    ASSIGN_OR_RETURN(auto versions, store_->ListPolicyVersions(caller.tenant_id, account.id));
    nlohmann::json items = nlohmann::json::array();
    for (const auto& v : versions) items.push_back(PolicyVersionJson(v));
    WriteJson(res, 200, {{"items", items}});
    return Status();
  });

  const std::string tokens_path = std::string(kAccountPath) + "/tokens";
  Admin("GET", tokens_path, [this, find](const Request& req, Response& res, Caller& caller) -> Status {
    RETURN_IF_ERROR(Authorize(caller, "serviceaccount", "view"));
    ASSIGN_OR_RETURN(store::ServiceAccount account, find(caller, caller.params[1]));
    ASSIGN_OR_RETURN(auto tokens, store_->ListTokens(caller.tenant_id, account.id));
    nlohmann::json items = nlohmann::json::array();
    for (const auto& t : tokens) items.push_back(TokenJson(t));
    WriteJson(res, 200, {{"items", items}});
    return Status();
  });

  Admin("POST", tokens_path, [this, find, check_account](const Request& req, Response& res, Caller& caller) -> Status {
    RETURN_IF_ERROR(Authorize(caller, "serviceaccount", "update"));
    ASSIGN_OR_RETURN(nlohmann::json body, ParseJsonObject(req));
    RETURN_IF_ERROR(OnlyKeys(body, {"name", "expires_at"}));
    ASSIGN_OR_RETURN(store::ServiceAccount account, find(caller, caller.params[1]));
    RETURN_IF_ERROR(check_account(caller, account));
    store::ApiTokenRecord record;
    ASSIGN_OR_RETURN(record.name, RequiredString(body, "name"));
    if (record.name.empty() || record.name.size() > 100) return InvalidArgumentError("name must be 1-100 characters", "name");
    ASSIGN_OR_RETURN(std::string expires, OptionalString(body, "expires_at"));
    if (!expires.empty()) {
      if (!ParseTimestamp(expires, &record.expires_at)) {
        return InvalidArgumentError("expires_at must be an RFC 3339 time", "expires_at");
      }
      if (record.expires_at <= clock_.NowMillis()) return InvalidArgumentError("expires_at must be in the future", "expires_at");
    }
    ApiToken token = NewApiToken(config_.token_prefix);
    record.id = token.id;
    record.tenant_id = caller.tenant_id;
    record.account_id = account.id;
    record.secret_hash = verifier_.HashSecret(token.secret);
    record.display_prefix = TokenDisplayPrefix(token);
    record.created_at = clock_.NowMillis();
    record.created_by_type = caller.actor_type;
    record.created_by_id = caller.principal.id;
    store::AuditEntry audit = Audit(caller, "token.created", "service_account", account.id, account.name,
                                    {{"token_id", record.id}, {"token_name", record.name}});
    RETURN_IF_ERROR(store_->CreateToken(record, &audit));
    verifier_.NoteTokenCreated(record.id);
    WriteJson(res, 201, {{"id", record.id},
                         {"name", record.name},
                         {"token", FormatApiToken(token)},
                         {"prefix", record.display_prefix},
                         {"created_at", TimeJson(record.created_at)},
                         {"expires_at", TimeJson(record.expires_at)}});
    return Status();
  });

  Admin("DELETE", tokens_path + R"(/([A-Za-z0-9]+))", [this, find](const Request& req, Response& res, Caller& caller) -> Status {
    RETURN_IF_ERROR(Authorize(caller, "serviceaccount", "update"));
    ASSIGN_OR_RETURN(store::ServiceAccount account, find(caller, caller.params[1]));
    const std::string token_id = caller.params[2];
    store::AuditEntry audit = Audit(caller, "token.deleted", "service_account", account.id, account.name,
                                    {{"token_id", token_id}});
    RETURN_IF_ERROR(store_->DeleteToken(caller.tenant_id, account.id, token_id, &audit));
    verifier_.InvalidateToken(token_id);
    res.status = 204;
    return Status();
  });

  Admin("GET", "/v1/roles", [](const Request&, Response& res, Caller& caller) -> Status {
    nlohmann::json items = nlohmann::json::array();
    for (const auto& name : caller.snapshot->RoleNames()) {
      if (auto role = caller.snapshot->RoleJson(name)) items.push_back(*role);
    }
    WriteJson(res, 200, {{"items", items}, {"revision", caller.snapshot->revision()}});
    return Status();
  });

  Admin("GET", R"(/v1/roles/([A-Za-z0-9_.\-]+))", [](const Request& req, Response& res, Caller& caller) -> Status {
    auto role = caller.snapshot->RoleJson(std::string(caller.params[1]));
    if (!role) return NotFoundError("no role '" + std::string(caller.params[1]) + "'");
    WriteJson(res, 200, *role);
    return Status();
  });

  Admin("GET", "/v1/catalog", [](const Request&, Response& res, Caller& caller) -> Status {
    nlohmann::json models = nlohmann::json::array();
    for (const auto& m : caller.snapshot->catalog().models()) {
      nlohmann::json attrs = nlohmann::json::object();
      for (const auto& a : m.attributes) attrs[a.name] = a.type;
      models.push_back({{"name", m.name}, {"actions", m.actions}, {"attributes", attrs}});
    }
    WriteJson(res, 200, {{"models", models}, {"analytics", caller.snapshot->catalog().analytics()},
                         {"revision", caller.snapshot->revision()}});
    return Status();
  });

  Admin("GET", "/v1/audit", [this](const Request& req, Response& res, Caller& caller) -> Status {
    store::AuditQuery query;
    query.tenant_id = caller.tenant_id;
    query.target_id = req.Param("target_id");
    query.target_type = req.Param("target_type");
    RETURN_IF_ERROR(Authorize(caller, "serviceaccount", "view"));
    if (query.target_type != "service_account") RETURN_IF_ERROR(Authorize(caller, "user", "view"));
    ASSIGN_OR_RETURN(store::ListOptions page_options, PageOptions(req));
    query.limit = page_options.limit;
    query.cursor = page_options.cursor;
    ASSIGN_OR_RETURN(auto page, store_->List(query));
    WriteJson(res, 200, PageJson(page, AuditJson));
    return Status();
  });
}

}  // namespace warden::server
