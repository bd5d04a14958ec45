// GET /healthz, /readyz and /metrics: unauthenticated, cheap, for load balancers and
// Prometheus. (Reloading policies and reading their status are admin routes:
// admin/admin_api.h.)
#pragma once

#include "server/http/router.h"
#include "server/ops/metrics.h"
#include "server/ops/policy_manager.h"
#include "store/store.h"

namespace warden::server {

void AddOpsRoutes(Router* router, store::Store* store, PolicyManager* policies, Metrics* metrics);

}  // namespace warden::server
