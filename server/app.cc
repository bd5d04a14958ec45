#include "server/app.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "common/crypto.h"
#include "common/ids.h"
#include "server/check/slow_token_store.h"
#include "server/console/console.h"
#include "server/http/json_io.h"
#include "server/ops/ops_routes.h"

namespace warden::server {

namespace {

constexpr int kPruneBatch = 5000;  // decision rows a Prune transaction deletes at most
constexpr std::chrono::milliseconds kPruneBudget{250};  // per second, on the maintenance thread

std::vector<std::string> TrustedProxies(const Config& config) {
  std::vector<std::string> out;
  std::string_view rest = config.trusted_proxies;
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (!item.empty()) out.emplace_back(item);
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return out;
}

}  // namespace

App::App(Config config, store::Store* store, std::string pepper, const Clock& clock,
         std::function<Status()> checkpoint)
    : config_(std::move(config)),
      store_(store),
      clock_(clock),
      checkpoint_(std::move(checkpoint)),
      policies_(config_.policies_dir, clock, &metrics_),
      slow_tokens_(config_.test_token_lookup_delay_ms > 0
                       ? std::make_unique<SlowTokenStore>(store, config_.test_token_lookup_delay_ms)
                       : nullptr),
      verifier_(slow_tokens_ ? slow_tokens_.get() : store, &policies_, pepper, config_.token_prefix, clock, &metrics_),
      logger_(store, &metrics_),
      checks_({store::kDefaultTenantId, config_.invalid_tokens_per_minute, TrustedProxies(config_)}, &policies_,
              &verifier_, &logger_, &metrics_, clock),
      check_api_(&checks_, &metrics_, config_.max_batch_checks),
      check_adapter_([this](const Request& req, Response& res, std::vector<store::DecisionRow>* rows, bool cache_only,
                            bool* needs_store) { check_api_.Decide(req, res, rows, cache_only, needs_store); }),
      forward_auth_({config_.forward_auth_header}, &checks_),
      forward_auth_adapter_([this](const Request& req, Response& res, std::vector<store::DecisionRow>* rows,
                                   bool cache_only, bool* needs_store) {
        forward_auth_.Decide(req, res, rows, cache_only, needs_store);
      }),
      authzen_({config_.public_url, !config_.tls_cert.empty(), config_.max_batch_checks}, &checks_, store, store),
      policy_status_(store, &policies_),
      admin_({&config_, store, std::move(pepper), &clock, &metrics_, &policies_, &verifier_, &checks_,
              &policy_status_}),
      access_log_(clock, config_.access_log) {}

App::~App() { Stop(); }

Status App::Init(std::string* admin_password_out) {
  Status loaded = policies_.Reload();
  if (!loaded.ok()) return loaded;
  if (!config_.decision_export_path.empty()) {
    store::NdjsonSink::Options options;
    options.path = config_.decision_export_path;
    options.max_bytes = config_.decision_export_max_bytes;
    ASSIGN_OR_RETURN(export_, store::NdjsonSink::Open(options, clock_));
    logger_.SetSink(export_.get());
  }
  // Account policies were compiled against the old snapshot: drop them on every swap.
  policies_.OnSwap([this] {
    verifier_.InvalidateAll();
    policy_status_.Recheck(tenant_id_);
  });
  ASSIGN_OR_RETURN(store::Tenant tenant, store_->EnsureDefaultTenant());
  tenant_id_ = tenant.id;
  admin_.SetTenant(tenant_id_);
  ASSIGN_OR_RETURN(std::vector<store::Tenant> tenants, store_->ListTenants());
  for (const store::Tenant& t : tenants) checks_.SetTenantToken(t.id, t.tenant_token);
  store_->Subscribe([this](const store::Change& change) { OnStoreChange(change); });
  policy_status_.Recheck(tenant_id_);
  ASSIGN_OR_RETURN(int64_t users, store_->CountUsers(tenant_id_));
  if (users == 0) {
    std::string password = config_.admin_password;
    if (password.empty()) {
      password = RandomBase62(20);
      *admin_password_out = password;
    }
    ASSIGN_OR_RETURN(std::string hash, HashPassword(password));
    store::User admin;
    admin.tenant_id = tenant_id_;
    admin.email = config_.admin_email;
    admin.name = "Administrator";
    admin.roles = {"admin"};
    admin.password_hash = hash;
    store::AuditEntry audit;
    audit.tenant_id = tenant_id_;
    audit.actor_type = store::kActorSystem;
    audit.actor_id = "warden";
    audit.action = "user.created";
    audit.target_type = "user";
    audit.target_name = admin.email;
    ASSIGN_OR_RETURN(store::User created, store_->CreateUser(admin, &audit));
    (void)created;
  }
  return Status();
}

StatusOr<int> App::Bind() {
  // The hot path first, so the router tries it first (the event loop answers it without the
  // router; its workers and the TLS front route it).
  router_.Add("POST", "/v1/check", [this](const Request& req, Response& res, const Router::Captures&) {
    checks_.Handle(check_adapter_, req, res);
  });
  // AuthZEN 1.0 (DESIGN.md 6.1): each endpoint an adapter of the check service, on the workers.
  for (auto [path, endpoint] : {std::pair<const char*, AuthzenApi::Endpoint>{AuthzenApi::kEvaluationPath,
                                                                             AuthzenApi::Endpoint::kEvaluation},
                                {AuthzenApi::kEvaluationsPath, AuthzenApi::Endpoint::kEvaluations},
                                {AuthzenApi::kSearchSubjectPath, AuthzenApi::Endpoint::kSearchSubject},
                                {AuthzenApi::kSearchResourcePath, AuthzenApi::Endpoint::kSearchResource},
                                {AuthzenApi::kSearchActionPath, AuthzenApi::Endpoint::kSearchAction}}) {
    const AuthzenApi::Endpoint e = endpoint;
    CheckService::Adapter adapter = [this, e](const Request& req, Response& res, std::vector<store::DecisionRow>* rows,
                                              bool cache_only, bool* needs_store) {
      authzen_.Decide(e, req, res, rows, cache_only, needs_store);
    };
    router_.Add("POST", path, [this, adapter](const Request& req, Response& res, const Router::Captures&) {
      checks_.Handle(adapter, req, res);
    });
  }
  router_.Add("GET", AuthzenApi::kMetadataPath,
              [this](const Request& req, Response& res, const Router::Captures&) { authzen_.Metadata(req, res); });
  admin_.Register(&router_);
  AddOpsRoutes(&router_, store_, &policies_, &metrics_);
  console::AddRoutes(&router_);

  StatusOr<int> port = config_.tls_cert.empty() ? BindPlain() : BindTls();
  if (!port.ok()) return port.status();
  AddMaintenanceTasks();
  maintenance_.Start([this] {
    if (config_.watch_policies) policies_.StartWatching();
  });
  return port;
}

StatusOr<int> App::BindPlain() {
  EventServer::Options options;
  options.host = config_.Host();
  options.port = config_.Port();
  options.max_body = static_cast<size_t>(config_.payload_limit);
  options.workers = std::clamp(config_.threads, 2, 16);
  options.header_timeout_ms = static_cast<int>(config_.header_timeout_ms);
  options.request_timeout_ms = static_cast<int>(config_.request_timeout_ms);
  options.idle_timeout_ms = static_cast<int>(config_.idle_timeout_ms);
  options.max_connections = static_cast<size_t>(config_.max_connections);
  options.max_connections_per_address = static_cast<size_t>(config_.max_connections_per_address);
  options.uncapped_addresses = TrustedProxies(config_);
  options.max_target_bytes = static_cast<size_t>(config_.max_target_bytes);
  options.connection_buffer_bytes = static_cast<size_t>(config_.connection_buffer_bytes);
  options.total_buffer_bytes = static_cast<size_t>(config_.total_buffer_bytes);
  EventServer::Hooks hooks;
  hooks.is_inline = [this](const Request& req) { return InlineAdapter(req) != nullptr; };
  hooks.handle_inline = [this](Request& req, Response& res) {
    if (!checks_.DecideInline(*InlineAdapter(req), req, res)) return false;
    SetRequestId(req, res, clock_);
    return true;
  };
  hooks.end_batch = [this] { checks_.CommitInline(); };
  hooks.handle = [this](Request& req, Response& res) { Dispatch(req, res); };
  hooks.log = [this](const Request& req, const Response& res, double seconds) {
    LogRequest(req, res, seconds, /*buffer=*/true);  // always the loop thread
  };
  hooks.end_pass = [this] { access_log_.Flush(); };
  hooks.notice = [](const std::string& message) { std::fprintf(stderr, "warden: %s\n", message.c_str()); };
  hooks.error = WriteProtocolError;
  hooks.limit = [this](HttpLimit limit) { ++metrics_.http_limits[static_cast<size_t>(limit)]; };
  front_ = std::make_unique<EventServer>(options, std::move(hooks));
  return front_->Bind();
}

StatusOr<int> App::BindTls() {
  TlsFront::Options options;
  options.host = config_.Host();
  options.port = config_.Port();
  options.cert_file = config_.tls_cert;
  options.key_file = config_.tls_key;
  options.threads = config_.threads;
  options.max_body = static_cast<size_t>(config_.payload_limit);
  options.max_target_bytes = static_cast<size_t>(config_.max_target_bytes);
  TlsFront::Hooks hooks;
  hooks.handle = [this](Request& req, Response& res) { Dispatch(req, res); };
  hooks.log = [this](const Request& req, const Response& res, double seconds) {
    LogRequest(req, res, seconds, /*buffer=*/false);
  };
  hooks.error = WriteProtocolError;
  hooks.limit = [this](HttpLimit limit) { ++metrics_.http_limits[static_cast<size_t>(limit)]; };
  tls_ = std::make_unique<TlsFront>(options, std::move(hooks));
  return tls_->Bind();
}

const CheckService::Adapter* App::InlineAdapter(const Request& req) const {
  if (req.path == "/v1/check") return req.method == "POST" ? &check_adapter_ : nullptr;
  return IsForwardAuthPath(req.path) ? &forward_auth_adapter_ : nullptr;
}

void App::Dispatch(const Request& req, Response& res) {
  SetRequestId(req, res, clock_);
  try {
    // Forward-auth takes any method and any path under its prefix: not a route of the table.
    if (IsForwardAuthPath(req.path)) return checks_.Handle(forward_auth_adapter_, req, res);
    Router::Captures captures;
    if (const Router::Handler* handler = router_.Find(req.method, req.path, &captures)) {
      (*handler)(req, res, captures);
      if (res.status < 0) res.status = 200;
      return;
    }
    WriteProtocolError(res, 404, "no such endpoint: " + req.method + " " + req.path);
  } catch (...) {
    WriteError(res, 500, "internal", "internal error");
  }
}

void App::LogRequest(const Request& req, const Response& res, double seconds, bool buffer) {
  metrics_.request_seconds.Observe(seconds);
  access_log_.Write(req.method, req.path, res.status, seconds, res.Header("X-Request-Id"), buffer);
}

void App::AddMaintenanceTasks() {
  // Checkpoints, pruning and last-used writes are background work.
  maintenance_.Add(1, [this] {
    verifier_.FlushLastUsed();
    if (checkpoint_) (void)checkpoint_();
    if (export_) (void)export_->Sync();
  });
  // Retention keeps pace with the appends: every second, batches until nothing is over its
  // budget or kPruneBudget has gone by. A batch is one short transaction (whole chunks go
  // without being decoded), so the mover and checks interleave with it. The cap this replaced,
  // 20 batches of 1,000 every 10 s, pruned at most 2,000 rows a second: a tenth of 20k checks
  // a second, so the database grew without bound (docs/benchmarks.md, "Cost as the work grows").
  maintenance_.Add(1, [this] {
    store::Retention retention;
    retention.max_age_ms = config_.decision_retention_days * 86'400'000;
    retention.max_rows_per_principal = config_.decision_retention_rows;
    retention.max_unauthenticated_rows = config_.decision_retention_unauthenticated_rows;
    const auto deadline = std::chrono::steady_clock::now() + kPruneBudget;
    while (std::chrono::steady_clock::now() < deadline) {
      auto pruned = store_->Prune(retention, kPruneBatch);
      if (!pruned.ok() || *pruned == 0) break;
      metrics_.decision_rows_pruned += static_cast<uint64_t>(*pruned);
      if (*pruned < kPruneBatch) break;
    }
  });
  maintenance_.Add(10, [this] { (void)store_->DeleteExpiredSessions(); });
}

void App::OnStoreChange(const store::Change& change) {
  using Kind = store::Change::Kind;
  switch (change.kind) {
    case Kind::kAccount: verifier_.InvalidateAccount(change.id); return;
    case Kind::kToken: verifier_.InvalidateToken(change.id); return;
    case Kind::kTokenCreated: verifier_.NoteTokenCreated(change.id); return;
    case Kind::kTenant: {
      auto tenant = store_->GetTenant(change.id);
      // Unreadable: an unguessable placeholder, so the old token fails closed.
      checks_.SetTenantToken(change.id, tenant.ok() ? tenant->tenant_token : RandomHex(32));
      return;
    }
    case Kind::kEverything: break;
  }
  verifier_.InvalidateAll();
  auto tenants = store_->ListTenants();
  if (!tenants.ok()) return;
  for (const store::Tenant& t : *tenants) checks_.SetTenantToken(t.id, t.tenant_token);
}

void App::Serve() {
  if (front_) front_->Serve();
  else if (tls_) tls_->Serve();
}

void App::Stop() {
  store_->Subscribe({});  // no more calls into this App
  if (front_) front_->Stop();
  if (tls_) tls_->Stop();
  maintenance_.Stop();
  policies_.StopWatching();
  logger_.Stop();
  verifier_.FlushLastUsed();
}

}  // namespace warden::server
