// The tenant token (GET /v1/tenant, rotation) and the decision history (an account's LOGS
// tab, and the tenant-wide /v1/decisions).
#include <span>

#include "server/admin/admin_api.h"
#include "server/admin/json_views.h"
#include "server/http/json_io.h"

namespace warden::server {

void AdminApi::RegisterTenantRoutes() {
  // Whoever sees the tenant token can act as the tenant (create on the analytics models).
  auto check_tenant = [this](Caller& caller) -> Status {
    const engine::CompiledPolicy* tenant = &caller.snapshot->TenantPolicy();
    return RequireNoEscalation(caller, {engine::PrincipalType::kTenant, std::span(&tenant, 1)}, "the tenant token");
  };
  Admin("GET", "/v1/tenant", [this, check_tenant](const Request&, Response& res, Caller& caller) -> Status {
    RETURN_IF_ERROR(Authorize(caller, "serviceaccount", "view"));
    RETURN_IF_ERROR(check_tenant(caller));
    ASSIGN_OR_RETURN(store::Tenant tenant, store_->GetTenant(caller.tenant_id));
    WriteJson(res, 200, {{"id", tenant.id}, {"name", tenant.name}, {"tenant_token", tenant.tenant_token},
                         {"analytics", caller.snapshot->catalog().analytics()},
                         {"created_at", TimeJson(tenant.created_at)}});
    return Status();
  });

  Admin("POST", R"(/v1/tenant/token:rotate)", [this, check_tenant](const Request&, Response& res, Caller& caller) -> Status {
    RETURN_IF_ERROR(Authorize(caller, "serviceaccount", "update"));
    RETURN_IF_ERROR(check_tenant(caller));
    store::AuditEntry audit = Audit(caller, "tenant.token_rotated", "tenant", caller.tenant_id, caller.tenant_id);
    ASSIGN_OR_RETURN(std::string token, store_->RotateTenantToken(caller.tenant_id, &audit));
    SetTenantToken(caller.tenant_id, token);
    WriteJson(res, 200, {{"id", caller.tenant_id}, {"tenant_token", token}});
    return Status();
  });

  // Shared by the per-account history and the tenant-wide one.
  auto query_from = [](const Request& req, const std::string& tenant) -> StatusOr<store::DecisionQuery> {
    store::DecisionQuery q;
    q.tenant_id = tenant;
    ASSIGN_OR_RETURN(store::ListOptions page_options, PageOptions(req));
    q.limit = page_options.limit;
    q.cursor = page_options.cursor;
    if (req.HasParam("allowed")) {
      std::string a = req.Param("allowed");
      if (a == "true") q.allowed = true;
      else if (a == "false") q.allowed = false;
      else return InvalidArgumentError("allowed must be true or false", "allowed");
    }
    q.model = req.Param("model");
    q.action = req.Param("action");
    ASSIGN_OR_RETURN(q.since, QueryTime(req, "since"));
    ASSIGN_OR_RETURN(q.until, QueryTime(req, "until"));
    return q;
  };

  Admin("GET", R"(/v1/service-accounts/([A-Za-z0-9_.\-]+)/logs)",
        [this, query_from](const Request& req, Response& res, Caller& caller) -> Status {
    RETURN_IF_ERROR(Authorize(caller, "serviceaccount", "view"));
    const std::string key = caller.params[1];
    // A deleted account's history stays readable by its id.
    auto account = store_->GetAccount(caller.tenant_id, key, /*include_deleted=*/true);
    if (!account.ok() && account.status().code() == StatusCode::kNotFound) {
      account = store_->GetAccountByName(caller.tenant_id, key, /*include_deleted=*/true);
    }
    if (!account.ok()) return account.status().code() == StatusCode::kNotFound
                                  ? NotFoundError("no service account '" + key + "'") : account.status();
    ASSIGN_OR_RETURN(store::DecisionQuery q, query_from(req, caller.tenant_id));
    q.principal_id = account->id;
    ASSIGN_OR_RETURN(auto page, store_->Query(q));
    WriteJson(res, 200, PageJson(page, DecisionJson));
    return Status();
  });

  Admin("GET", "/v1/decisions", [this, query_from](const Request& req, Response& res, Caller& caller) -> Status {
    RETURN_IF_ERROR(Authorize(caller, "serviceaccount", "view"));
    RETURN_IF_ERROR(Authorize(caller, "user", "view"));
    ASSIGN_OR_RETURN(store::DecisionQuery q, query_from(req, caller.tenant_id));
    q.principal_id = req.Param("principal_id");
    ASSIGN_OR_RETURN(auto page, store_->Query(q));
    WriteJson(res, 200, PageJson(page, DecisionJson));
    return Status();
  });
}

}  // namespace warden::server
