// The warden server: wiring only (DESIGN.md 2.1). App owns the rooms and their threads:
//   http/   the plain-HTTP event loop or the TLS front, the router, the access log;
//   check/  the check service and its adapters (/v1/check, /v1/forward-auth, AuthZEN);
//   admin/  the admin API;
//   ops/    health, metrics, the policy manager, the maintenance thread;
// and connects them to engine/ (through PolicyManager) and store/ (store::Store).
// Thread-safety: Init, Bind and Serve from one thread; Stop from any thread.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "common/clock.h"
#include "common/status.h"
#include "server/admin/admin_api.h"
#include "server/check/authzen_api.h"
#include "server/check/check_api.h"
#include "server/check/check_service.h"
#include "server/check/decision_logger.h"
#include "server/check/forward_auth.h"
#include "server/check/token_verifier.h"
#include "server/config.h"
#include "server/http/access_log.h"
#include "server/http/event_server.h"
#include "server/http/router.h"
#include "server/http/tls_front.h"
#include "server/ops/account_policy_status.h"
#include "server/ops/maintenance.h"
#include "server/ops/metrics.h"
#include "server/ops/policy_manager.h"
#include "store/ndjson_sink.h"
#include "store/store.h"

namespace warden::server {

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
  // Every request but the event loop's inline checks: sets X-Request-Id, routes, and
  // answers 404 when no route matches.
  void Dispatch(const Request& req, Response& res);
  // The check-service adapter of an inline request (/v1/check, forward-auth), or null.
  const CheckService::Adapter* InlineAdapter(const Request& req) const;
  void LogRequest(const Request& req, const Response& res, double seconds, bool buffer);
  StatusOr<int> BindPlain();
  StatusOr<int> BindTls();
  void AddMaintenanceTasks();
  // A change another replica made (store::ChangeFeed): drops or refreshes what it affects.
  void OnStoreChange(const store::Change& change);

  Config config_;
  store::Store* store_;
  const Clock& clock_;
  std::function<Status()> checkpoint_;
  Metrics metrics_;
  PolicyManager policies_;
  std::unique_ptr<store::TokenStore> slow_tokens_;  // tests only: test_token_lookup_delay_ms
  TokenVerifier verifier_;
  std::unique_ptr<store::DecisionSink> export_;  // the NDJSON export, when configured
  DecisionLogger logger_;
  CheckService checks_;
  CheckApi check_api_;
  CheckService::Adapter check_adapter_;
  ForwardAuth forward_auth_;
  CheckService::Adapter forward_auth_adapter_;
  AuthzenApi authzen_;
  AccountPolicyStatus policy_status_;
  AdminApi admin_;
  AccessLog access_log_;
  Router router_;  // written before serving, then read-only
  std::unique_ptr<EventServer> front_;  // plain HTTP
  std::unique_ptr<TlsFront> tls_;       // HTTPS
  Maintenance maintenance_;
  std::string tenant_id_ = store::kDefaultTenantId;
};

}  // namespace warden::server
