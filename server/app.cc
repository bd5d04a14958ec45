#include "server/app.h"

#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>

#include "common/crypto.h"
#include "common/ids.h"
#include "server/http_util.h"

namespace warden::server {

namespace {

constexpr char kSessionCookie[] = "warden_session";
constexpr char kCsrfHeader[] = "X-CSRF-Token";
constexpr int kPruneBatch = 1000;

thread_local std::chrono::steady_clock::time_point t_request_start;  // the TLS front
// The TLS front's path of a request with a body while httplib reads the body (BindTls).
thread_local std::string t_tls_path;
thread_local bool t_tls_path_parked = false;
// Access-log lines of the event loop's current pass, written with one write() per pass.
thread_local std::string t_access_log;
thread_local bool t_buffer_access_log = false;

std::string CookieValue(const httplib::Request& req, const std::string& name) {
  std::string cookies = req.get_header_value("Cookie");
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

// The JSON error of a request no route handled: unknown endpoint, or HTTP the front refused
// (411, 413, 431, 505, ...). Both fronts use it so their errors read the same.
void WriteProtocolError(httplib::Response& res, int status, const std::string& message) {
  static const std::map<int, std::string> codes = {
      {404, "not_found"}, {405, "method_not_allowed"}, {408, "request_timeout"}, {411, "length_required"},
      {413, "payload_too_large"}, {414, "uri_too_long"}, {431, "headers_too_large"}, {500, "internal"}};
  auto it = codes.find(status);
  WriteError(res, status, it == codes.end() ? "invalid_argument" : it->second, message,
             status == 413 ? "body" : "");
}

std::string NoSuchEndpoint(const httplib::Request& req) {
  return "no such endpoint: " + req.method + " " + req.path;
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

int64_t RateLimiter::RetryAfter(const std::string& addr) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = windows_.find(addr);
  if (it == windows_.end()) return 0;
  const int64_t now = clock_.NowMillis();
  if (now - it->second.start >= 60'000) {
    windows_.erase(it);
    return 0;
  }
  if (it->second.count < per_minute_) return 0;
  return (it->second.start + 60'000 - now) / 1000 + 1;
}

void RateLimiter::Record(const std::string& addr) {
  std::lock_guard<std::mutex> lock(mu_);
  if (windows_.size() > 100'000) windows_.clear();  // bound memory under address floods
  const int64_t now = clock_.NowMillis();
  Window& w = windows_[addr];
  if (w.count == 0 || now - w.start >= 60'000) w = Window{now, 0};
  ++w.count;
}

App::App(Config config, store::Store* store, std::string pepper, const Clock& clock,
         std::function<Status()> checkpoint)
    : config_(std::move(config)),
      store_(store),
      pepper_(std::move(pepper)),
      clock_(clock),
      checkpoint_(std::move(checkpoint)),
      policies_(config_.policies_dir, clock, &metrics_),
      slow_tokens_(config_.test_token_lookup_delay_ms > 0
                       ? std::make_unique<SlowTokenStore>(store, config_.test_token_lookup_delay_ms)
                       : nullptr),
      verifier_(slow_tokens_ ? slow_tokens_.get() : store, &policies_, pepper_, config_.token_prefix, clock, &metrics_),
      logger_(std::make_unique<DecisionLogger>(store, &metrics_)),
      limiter_(config_.login_failures_per_minute, clock),
      invalid_token_limiter_(config_.invalid_tokens_per_minute, clock) {}

App::~App() { Stop(); }

Status App::Init(std::string* admin_password_out) {
  Status loaded = policies_.Reload();
  if (!loaded.ok()) return loaded;
  if (!config_.decision_export_path.empty()) {
    store::NdjsonSink::Options options;
    options.path = config_.decision_export_path;
    options.max_bytes = config_.decision_export_max_bytes;
    ASSIGN_OR_RETURN(export_, store::NdjsonSink::Open(options, clock_));
    logger_->SetSink(export_.get());
  }
  // Account policies were compiled against the old snapshot: drop them on every swap.
  policies_.OnSwap([this] {
    verifier_.InvalidateAll();
    RecheckAccountPolicies();
  });
  ASSIGN_OR_RETURN(store::Tenant tenant, store_->EnsureDefaultTenant());
  tenant_id_ = tenant.id;
  tenant_tokens_.store(std::make_shared<const TenantTokens>());
  ASSIGN_OR_RETURN(std::vector<store::Tenant> tenants, store_->ListTenants());
  for (const store::Tenant& t : tenants) SetTenantToken(t.id, t.tenant_token);
  RecheckAccountPolicies();
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
  // The hot path first, so the router tries it first (under TLS; the event loop answers it
  // without the router).
  Route("POST", "/v1/check", [this](const httplib::Request& req, httplib::Response& res) { HandleCheck(req, res); });
  RegisterAuthRoutes();
  RegisterAccountRoutes();
  RegisterCheckRoutes();
  RegisterOpsRoutes();

  StatusOr<int> port = Status();
  if (!config_.tls_cert.empty()) {
    port = BindTls();
  } else {
    EventServer::Options options;
    options.host = config_.Host();
    options.port = config_.Port();
    options.max_body = static_cast<size_t>(config_.payload_limit);
    options.workers = std::clamp(config_.threads, 2, 16);
    options.header_timeout_ms = static_cast<int>(config_.header_timeout_ms);
    options.request_timeout_ms = static_cast<int>(config_.request_timeout_ms);
    options.idle_timeout_ms = static_cast<int>(config_.idle_timeout_ms);
    options.max_connections = static_cast<size_t>(config_.max_connections);
    options.max_target_bytes = static_cast<size_t>(config_.max_target_bytes);
    options.connection_buffer_bytes = static_cast<size_t>(config_.connection_buffer_bytes);
    options.total_buffer_bytes = static_cast<size_t>(config_.total_buffer_bytes);
    EventServer::Hooks hooks;
    hooks.is_inline = [](const httplib::Request& req) { return req.path == "/v1/check" && req.method == "POST"; };
    hooks.handle_inline = [this](httplib::Request& req, httplib::Response& res) { return DecideInline(req, res); };
    hooks.end_batch = [this] { CommitInline(); };
    hooks.handle = [this](httplib::Request& req, httplib::Response& res) { Dispatch(req, res); };
    hooks.log = [this](const httplib::Request& req, const httplib::Response& res, double seconds) {
      t_buffer_access_log = true;  // always the loop thread
      LogRequest(req, res, seconds, res.get_header_value("X-Request-Id"));
    };
    hooks.end_pass = [] {
      if (t_access_log.empty()) return;
      std::fwrite(t_access_log.data(), 1, t_access_log.size(), stderr);
      t_access_log.clear();
    };
    hooks.notice = [](const std::string& message) { std::fprintf(stderr, "warden: %s\n", message.c_str()); };
    hooks.error = WriteProtocolError;
    hooks.limit = [this](HttpLimit limit) { ++metrics_.http_limits[static_cast<size_t>(limit)]; };
    front_ = std::make_unique<EventServer>(options, std::move(hooks));
    port = front_->Bind();
  }
  if (!port.ok()) return port.status();
  maintenance_ = std::thread([this] { MaintenanceLoop(); });
  return port;
}

StatusOr<int> App::BindTls() {
  auto ssl = std::make_unique<httplib::SSLServer>(config_.tls_cert.c_str(), config_.tls_key.c_str());
  if (!ssl->is_valid()) return InvalidArgumentError("cannot load the TLS certificate or key", "tls_cert");
  tls_ = std::move(ssl);
  const int threads = config_.threads;
  tls_->new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  tls_->set_tcp_nodelay(true);
  tls_->set_keep_alive_max_count(1'000'000);
  tls_->set_keep_alive_timeout(30);
  tls_->set_read_timeout(30);
  tls_->set_payload_max_length(static_cast<size_t>(config_.payload_limit));

  // Requests are routed through the same table as the event loop's, never by httplib's own
  // router, which runs std::regex over the path. A request without a body is answered here,
  // before routing. httplib reads a body only after this handler, so a request with one has
  // its path parked (same thread, until the handler or the logger) and replaced by "/", whose
  // only routes, below, put it back and dispatch. The Request is httplib's non-const object.
  const size_t max_target = static_cast<size_t>(config_.max_target_bytes);
  tls_->set_pre_routing_handler([this, max_target](const httplib::Request& req, httplib::Response& res) {
    t_request_start = std::chrono::steady_clock::now();
    t_tls_path_parked = false;  // whatever an earlier request on this thread left
    if (req.target.size() > max_target) {
      SetRequestId(req, res);
      ++metrics_.http_limits[static_cast<size_t>(HttpLimit::kTargetLength)];
      WriteProtocolError(res, 414, "the request target is longer than the limit");
      return httplib::Server::HandlerResponse::Handled;
    }
    if (req.method == "POST" || req.method == "PUT" || req.method == "PATCH" || req.method == "DELETE") {
      t_tls_path = std::move(const_cast<httplib::Request&>(req).path);
      t_tls_path_parked = true;
      const_cast<httplib::Request&>(req).path = "/";
      return httplib::Server::HandlerResponse::Unhandled;
    }
    Dispatch(req, res);
    return httplib::Server::HandlerResponse::Handled;
  });
  auto unpark = [](const httplib::Request& req) {
    if (!t_tls_path_parked) return;
    t_tls_path_parked = false;
    const_cast<httplib::Request&>(req).path = std::move(t_tls_path);
  };
  auto with_body = [this, unpark](const httplib::Request& req, httplib::Response& res) {
    unpark(req);
    Dispatch(req, res);
  };
  tls_->Post("/", with_body);
  tls_->Put("/", with_body);
  tls_->Patch("/", with_body);
  tls_->Delete("/", with_body);
  tls_->set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    switch (res.status) {
      case 404: WriteProtocolError(res, 404, NoSuchEndpoint(req)); break;
      case 413: WriteProtocolError(res, 413, "the request body is larger than the payload limit"); break;
      case 405: WriteProtocolError(res, 405, "method not allowed"); break;
      default: WriteProtocolError(res, res.status, "the request could not be processed"); break;
    }
  });
  tls_->set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    WriteError(res, 500, "internal", "internal error");
  });
  tls_->set_logger([this, unpark](const httplib::Request& req, const httplib::Response& res) {
    unpark(req);  // the body was refused (say, a 413) before the handler ran
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_request_start).count();
    LogRequest(req, res, secs, res.get_header_value("X-Request-Id"));
  });
  int port = config_.Port();
  if (port == 0) {
    port = tls_->bind_to_any_port(config_.Host());
  } else if (!tls_->bind_to_port(config_.Host(), port)) {
    port = -1;
  }
  if (port < 0) return UnavailableError("cannot listen on " + config_.listen);
  return port;
}

void App::Route(const std::string& method, const std::string& pattern, httplib::Server::Handler handler) {
  router_.Add(method, pattern, [handler = std::move(handler)](const httplib::Request& req, httplib::Response& res,
                                                              const Router::Captures&) { handler(req, res); });
}

void App::Dispatch(const httplib::Request& req, httplib::Response& res) {
  SetRequestId(req, res);
  try {
    Router::Captures captures;
    if (const Router::Handler* handler = router_.Find(req.method, req.path, &captures)) {
      (*handler)(req, res, captures);
      if (res.status < 0) res.status = 200;
      return;
    }
    WriteProtocolError(res, 404, NoSuchEndpoint(req));
  } catch (...) {
    WriteError(res, 500, "internal", "internal error");
  }
}

void App::SetRequestId(const httplib::Request& req, httplib::Response& res) {
  std::string id = req.get_header_value("X-Request-Id");
  if (id.empty() || id.size() > 128) id = NewUlid(clock_);
  res.set_header("X-Request-Id", id);
}

namespace {

// `text` cut to `max` bytes, or "-" when empty. Bytes that are not printable ASCII (controls,
// DEL, bytes >= 0x80) are written as \xNN and a backslash as \\, so that a decoded path
// ("%0a") cannot end the line and forge another.
void AppendField(std::string* out, std::string_view text, size_t max) {
  static constexpr char kHex[] = "0123456789abcdef";
  if (text.empty()) out->push_back('-');
  for (unsigned char ch : text.substr(0, max)) {
    if (ch == '\\') {
      out->append("\\\\");
    } else if (ch < 0x20 || ch >= 0x7f) {
      const char escaped[] = {'\\', 'x', kHex[ch >> 4], kHex[ch & 0xf]};
      out->append(escaped, sizeof escaped);
    } else {
      out->push_back(static_cast<char>(ch));
    }
  }
}

void AppendInt(std::string* out, int64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, end);
}

}  // namespace

void App::LogRequest(const httplib::Request& req, const httplib::Response& res, double seconds,
                     const std::string& request_id) {
  metrics_.request_seconds.Observe(seconds);
  if (!config_.access_log) return;
  // One line: "<RFC 3339 time> <method> <path> <status> <ms>ms rid=<request id>". Never the
  // query string or a body: they may carry secrets. Built by hand: snprintf and the time
  // formatting were ~7,000 instructions a request, on the event loop.
  thread_local std::string line;
  thread_local int64_t cached_second = -1;
  thread_local std::string cached_prefix;  // "YYYY-MM-DDTHH:MM:SS." of cached_second
  const int64_t now = clock_.NowMillis();
  const int64_t second = now >= 0 ? now / 1000 : (now - 999) / 1000;
  if (second != cached_second) {
    cached_second = second;
    cached_prefix = FormatTimestamp(second * 1000).substr(0, 20);
  }
  const int64_t ms = now - second * 1000;
  line.assign(cached_prefix);
  line.push_back(static_cast<char>('0' + ms / 100));
  line.push_back(static_cast<char>('0' + ms / 10 % 10));
  line.push_back(static_cast<char>('0' + ms % 10));
  line += "Z ";
  AppendField(&line, req.method, 16);
  line.push_back(' ');
  AppendField(&line, req.path, 200);
  line.push_back(' ');
  AppendInt(&line, res.status);
  line.push_back(' ');
  const int64_t micros = std::llround(std::max(0.0, seconds) * 1e6);
  AppendInt(&line, micros / 1000);
  line.push_back('.');
  line.push_back(static_cast<char>('0' + micros % 1000 / 100));
  line.push_back(static_cast<char>('0' + micros % 100 / 10));
  line.push_back(static_cast<char>('0' + micros % 10));
  line += "ms rid=";
  if (!request_id.empty()) AppendField(&line, request_id, 128);
  line.push_back('\n');
  if (t_buffer_access_log) {
    t_access_log += line;
  } else {
    std::fwrite(line.data(), 1, line.size(), stderr);
  }
}

void App::Serve() {
  if (front_) front_->Serve();
  else if (tls_) tls_->listen_after_bind();
}

void App::Stop() {
  if (front_) front_->Stop();
  if (tls_) tls_->stop();
  {
    std::lock_guard<std::mutex> lock(maint_mu_);
    stopping_ = true;
  }
  maint_cv_.notify_all();
  if (maintenance_.joinable()) maintenance_.join();
  policies_.StopWatching();
  if (logger_) logger_->Stop();
  verifier_.FlushLastUsed();
}

void App::MaintenanceLoop() {
  pthread_setname_np(pthread_self(), "warden-maint");
  // Checkpoints, pruning and last-used writes are background work: the event loop preempts it.
  (void)setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), 10);
  if (config_.watch_policies) policies_.StartWatching();
  int tick = 0;
  std::unique_lock<std::mutex> lock(maint_mu_);
  while (!maint_cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_; })) {
    lock.unlock();
    verifier_.FlushLastUsed();
    if (checkpoint_) (void)checkpoint_();
    if (export_) (void)export_->Sync();
    if (++tick % 10 == 0) {
      store::Retention retention;
      retention.max_age_ms = config_.decision_retention_days * 86'400'000;
      retention.max_rows_per_principal = config_.decision_retention_rows;
      retention.max_unauthenticated_rows = config_.decision_retention_unauthenticated_rows;
      for (int i = 0; i < 20; ++i) {  // at most 20 small batches per pass: never stall checks
        auto pruned = store_->Prune(retention, kPruneBatch);
        if (!pruned.ok() || *pruned == 0) break;
        metrics_.decision_rows_pruned += static_cast<uint64_t>(*pruned);
        if (*pruned < kPruneBatch) break;
      }
      (void)store_->DeleteExpiredSessions();
    }
    lock.lock();
  }
}

void App::RecheckAccountPolicies() {
  auto snapshot = policies_.Current();
  nlohmann::json broken = nlohmann::json::array();
  store::ListOptions page{store::kMaxPageLimit, ""};
  for (;;) {
    auto accounts = store_->ListAccounts(tenant_id_, page);
    if (!accounts.ok()) break;
    for (const auto& account : accounts->items) {
      engine::PolicyResult r = engine::CompileAccountPolicy(*snapshot, account.policy_yaml, "permissions.yaml", account.name);
      if (r.policy) continue;
      nlohmann::json errors = nlohmann::json::array();
      for (const auto& e : r.errors) errors.push_back(e.ToJson());
      broken.push_back({{"id", account.id}, {"name", account.name}, {"errors", errors}});
    }
    if (accounts->next_cursor.empty()) break;
    page.cursor = accounts->next_cursor;
  }
  std::lock_guard<std::mutex> lock(broken_mu_);
  broken_accounts_ = std::move(broken);
}

nlohmann::json App::PolicyStatusJson() const {
  nlohmann::json status = policies_.StatusJson();
  std::lock_guard<std::mutex> lock(broken_mu_);
  status["accounts_with_errors"] = broken_accounts_;
  return status;
}

void App::Admin(const std::string& method, const std::string& pattern, AdminHandler handler) {
  const bool changes_state = method != "GET";
  auto wrapped = [this, handler, changes_state](const httplib::Request& req, httplib::Response& res,
                                               const Router::Captures& captures) {
    StatusOr<Caller> caller = Authenticate(req);
    if (!caller.ok()) return WriteError(res, caller.status());
    caller->params = captures;
    if (changes_state && caller->via_cookie &&
        !ConstantTimeEquals(req.get_header_value(kCsrfHeader), caller->csrf_token)) {
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
  router_.Add(method, pattern, std::move(wrapped));
}

StatusOr<Caller> App::Authenticate(const httplib::Request& req) {
  std::string auth = req.get_header_value("Authorization");
  std::string credential;
  bool via_cookie = false;
  if (!auth.empty()) {
    if (auth.rfind("Bearer ", 0) != 0) return UnauthenticatedError("the Authorization header must be 'Bearer <token>'");
    credential = auth.substr(7);
  } else {
    credential = CookieValue(req, kSessionCookie);
    via_cookie = true;
    if (credential.empty()) return UnauthenticatedError("authentication required: a session or an API token");
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

Status App::Authorize(const Caller& caller, std::string_view model, std::string_view action) {
  engine::Attributes none;
  engine::Decision d = caller.snapshot->Evaluate(caller.principal, caller.policies, model, action, none, none);
  if (d.allowed) return Status();
  std::string msg = "not allowed to " + std::string(action) + " " + std::string(model) + ": " +
                    std::string(engine::ReasonName(d.reason));
  if (!d.rule.empty()) msg += " (rule " + std::string(d.rule) + ")";
  return PermissionDeniedError(msg);
}

Status App::RequireNoEscalation(Caller& caller, const engine::Grant& target, std::string_view target_desc) {
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

StatusOr<std::shared_ptr<const engine::CompiledPolicy>> App::AccountPolicy(const Caller& caller,
                                                                            const store::ServiceAccount& account) {
  engine::PolicyResult compiled =
      engine::CompileAccountPolicy(*caller.snapshot, account.policy_yaml, "permissions.yaml", account.name);
  if (!compiled.policy) {
    return FailedPreconditionError("the service account's permissions do not compile against the current policies "
                                   "(GET /v1/policies/status); fix them first");
  }
  return std::shared_ptr<const engine::CompiledPolicy>(std::move(compiled.policy));
}

bool App::ManagesUsersAndAccounts(const engine::PolicySnapshot& snapshot, const store::User& user) const {
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

Status App::RequireUserManagerRemains(const Caller& caller, const std::string& user_id,
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

void App::SetTenantToken(const std::string& tenant_id, const std::string& token) {
  std::lock_guard<std::mutex> lock(tenant_tokens_mu_);
  auto next = std::make_shared<TenantTokens>(*tenant_tokens_.load());
  std::erase_if(*next, [&](const auto& entry) { return entry.second == tenant_id; });
  (*next)[Sha256Hex(token)] = tenant_id;
  tenant_tokens_.store(std::move(next));
}

std::string App::TenantOfToken(std::string_view token) const {
  auto tokens = tenant_tokens_.load();
  auto it = tokens->find(Sha256Hex(token));
  return it == tokens->end() ? std::string() : it->second;
}

std::string App::SessionHash(std::string_view token) const {
  return ToHex(HmacSha256(pepper_, "session:" + std::string(token)));
}

store::AuditEntry App::Audit(const Caller& caller, std::string action, std::string target_type,
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
