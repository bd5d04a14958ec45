// POST /v1/policies/reload and GET /v1/policies/status.
#include "server/admin/admin_api.h"
#include "server/http/json_io.h"

namespace warden::server {

void AdminApi::RegisterPolicyRoutes() {
  // Policies are admin state: reloading them needs the right to manage users.
  Admin("POST", "/v1/policies/reload", [this](const Request&, Response& res, Caller& caller) -> Status {
    RETURN_IF_ERROR(Authorize(caller, "user", "update"));
    Status st = policies_.Reload();
    nlohmann::json status = policy_status_->StatusJson();
    if (!st.ok()) {
      WriteJson(res, 400, {{"error", {{"code", "invalid_argument"},
                                      {"message", "the policy tree has errors; the previous snapshot keeps serving"},
                                      {"field", "policies"},
                                      {"errors", status["last_reload"]["errors"]}}}});
      return Status();
    }
    WriteJson(res, 200, status);
    return Status();
  });

  Admin("GET", "/v1/policies/status", [this](const Request&, Response& res, Caller& caller) -> Status {
    RETURN_IF_ERROR(Authorize(caller, "serviceaccount", "view"));
    WriteJson(res, 200, policy_status_->StatusJson());
    return Status();
  });
}

}  // namespace warden::server
