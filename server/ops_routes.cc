// Health, readiness, metrics and policy reload/status.
#include "server/app.h"
#include "server/http_util.h"

namespace warden::server {

void App::RegisterOpsRoutes() {
  Route("GET", "/healthz", [](const httplib::Request&, httplib::Response& res) {
    WriteJson(res, 200, {{"status", "ok"}});
  });

  Route("GET", "/readyz", [this](const httplib::Request&, httplib::Response& res) {
    Status store_ok = store_->Ping();
    bool policies_ok = policies_.Current() != nullptr;
    nlohmann::json body = {{"store", store_ok.ok() ? "ok" : store_ok.message()},
                           {"policies", policies_ok ? "ok" : "not loaded"}};
    body["status"] = store_ok.ok() && policies_ok ? "ready" : "not ready";
    WriteJson(res, store_ok.ok() && policies_ok ? 200 : 503, body);
  });

  Route("GET", "/metrics", [this](const httplib::Request&, httplib::Response& res) {
    auto snap = policies_.Current();
    metrics_.decision_journal_backlog_bytes = store_->DecisionBacklogBytes();
    res.set_content(metrics_.Render(snap ? snap->revision() : ""), "text/plain; version=0.0.4");
  });

  // Policies are admin state: reloading them needs the right to manage users.
  Admin("POST", "/v1/policies/reload", [this](const httplib::Request&, httplib::Response& res, Caller& caller) -> Status {
    RETURN_IF_ERROR(Authorize(caller, "user", "update"));
    Status st = policies_.Reload();
    nlohmann::json status = PolicyStatusJson();
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

  Admin("GET", "/v1/policies/status", [this](const httplib::Request&, httplib::Response& res, Caller& caller) -> Status {
    RETURN_IF_ERROR(Authorize(caller, "serviceaccount", "view"));
    WriteJson(res, 200, PolicyStatusJson());
    return Status();
  });
}

}  // namespace warden::server
