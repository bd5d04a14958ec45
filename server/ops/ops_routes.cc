#include "server/ops/ops_routes.h"

#include "server/http/json_io.h"

namespace warden::server {

void AddOpsRoutes(Router* router, store::Store* store, PolicyManager* policies, Metrics* metrics) {
  router->Add("GET", "/healthz", [](const Request&, Response& res, const Router::Captures&) {
    WriteJson(res, 200, {{"status", "ok"}});
  });

  router->Add("GET", "/readyz", [store, policies](const Request&, Response& res, const Router::Captures&) {
    Status store_ok = store->Ping();
    bool policies_ok = policies->Current() != nullptr;
    nlohmann::json body = {{"store", store_ok.ok() ? "ok" : store_ok.message()},
                           {"policies", policies_ok ? "ok" : "not loaded"}};
    body["status"] = store_ok.ok() && policies_ok ? "ready" : "not ready";
    WriteJson(res, store_ok.ok() && policies_ok ? 200 : 503, body);
  });

  router->Add("GET", "/metrics", [store, policies, metrics](const Request&, Response& res, const Router::Captures&) {
    auto snap = policies->Current();
    metrics->decision_journal_backlog_bytes = store->DecisionBacklogBytes();
    res.status = 200;
    res.SetContent(metrics->Render(snap ? snap->revision() : ""), "text/plain; version=0.0.4");
  });
}

}  // namespace warden::server
