// POST /v1/check (the hot path), the tenant token, and the decision history.
#include <chrono>
#include <optional>
#include <span>

#include <simdjson.h>

#include "common/crypto.h"
#include "common/json_text.h"
#include "common/ids.h"
#include "server/app.h"
#include "server/check_request.h"
#include "server/http_util.h"
#include "server/json_views.h"

namespace warden::server {

namespace {

namespace sj = simdjson::dom;

}  // namespace

void App::DecideCheck(const httplib::Request& req, httplib::Response& res,
                      std::vector<store::DecisionRow>* log_rows, bool* needs_store) {
  const auto start = std::chrono::steady_clock::now();
  if (!IsJsonContentType(req)) return WriteError(res, UnsupportedMediaType("the body must be application/json"));
  // simdjson, not nlohmann::json: building the nlohmann tree and reading it back was about
  // 60,000 instructions of a check's ~150,000. The loop thread (and each TLS-front thread)
  // keeps one parser, sized by the largest body it has seen; larger bodies get their own.
  constexpr size_t kKeptParserBytes = 16 << 10;  // a batch of 100 checks is ~10 KiB
  thread_local sj::parser kept_parser;
  std::optional<sj::parser> own_parser;
  sj::parser& parser = req.body.size() <= kKeptParserBytes ? kept_parser : own_parser.emplace();
  sj::element doc;
  if (parser.parse(req.body.data(), req.body.size()).get(doc) != simdjson::SUCCESS) {
    return WriteError(res, InvalidArgumentError("the body is not valid JSON"));
  }
  std::optional<BodyLimit> tripped;
  StatusOr<CheckRequest> parsed = ParseCheckRequest(doc, config_.max_batch_checks, &tripped);
  if (tripped) metrics_.CountLimitExceeded(*tripped);
  if (!parsed.ok()) return WriteError(res, parsed.status());
  CheckRequest& check = *parsed;

  // Who is asking.
  std::shared_ptr<const engine::PolicySnapshot> snapshot = policies_.Current();
  engine::Principal tenant_principal;
  const engine::Principal* principal = nullptr;
  const engine::CompiledPolicy* policy = nullptr;
  std::optional<engine::Reason> token_failure;
  std::string token_id;
  std::string tenant_id = tenant_id_;
  TokenVerifier::Result verified;
  if (check.tenant) {
    const std::string tenant = TenantOfToken(check.token);
    if (!tenant.empty()) tenant_id = tenant;
    tenant_principal.type = engine::PrincipalType::kTenant;
    tenant_principal.id = tenant_id;
    tenant_principal.name = tenant_id;
    principal = &tenant_principal;
    if (!tenant.empty()) {
      policy = &snapshot->TenantPolicy();
    } else {
      metrics_.token_failures++;
      token_failure = engine::Reason::kTokenInvalid;
    }
  } else {
    verified = verifier_.Verify(check.token, /*cache_only=*/needs_store != nullptr);
    token_id = verified.token_id;
    switch (verified.outcome) {
      case TokenVerifier::Outcome::kNotCached:
        *needs_store = true;
        return;
      case TokenVerifier::Outcome::kUnavailable:
        return WriteError(res, UnavailableError("the token store is unavailable"));
      case TokenVerifier::Outcome::kOk:
      case TokenVerifier::Outcome::kAccountDisabled:
        principal = &verified.account->principal;
        tenant_id = verified.account->tenant_id;
        snapshot = verified.account->snapshot;
        policy = verified.account->policy.get();
        if (verified.outcome == TokenVerifier::Outcome::kAccountDisabled) token_failure = engine::Reason::kAccountDisabled;
        break;
      default:
        token_failure = engine::Reason::kTokenInvalid;
        break;
    }
  }

  // Invalid credentials are cheap to send and each costs a decision row: past a budget per
  // client address they are answered 429 (counted, not logged) until the minute ends.
  const bool invalid_token = token_failure == engine::Reason::kTokenInvalid;
  if (invalid_token) {
    if (int64_t wait = invalid_token_limiter_.RetryAfter(req.remote_addr); wait > 0) {
      metrics_.invalid_token_throttled++;
      res.set_header("Retry-After", std::to_string(wait));
      return WriteError(res, ResourceExhaustedError("too many invalid tokens from this address; retry after " +
                                                    std::to_string(wait) + " s"));
    }
    invalid_token_limiter_.Record(req.remote_addr);
  }

  // Decide every check (DESIGN.md 3.1: unknown model/action first, then token state).
  // The rows are built in place at the end of *log_rows (a temporary vector of them, over a
  // KiB for two checks, missed malloc's small-size caches on every request).
  const size_t first_row = log_rows->size();
  log_rows->resize(first_row + check.checks.size());
  std::span<store::DecisionRow> rows(log_rows->data() + first_row, check.checks.size());
  std::vector<engine::Decision> decisions(check.checks.size());
  std::span<const engine::CompiledPolicy* const> policies(&policy, policy ? 1 : 0);
  const int64_t now = clock_.NowMillis();
  for (size_t i = 0; i < check.checks.size(); ++i) {
    const CheckInput& in = check.checks[i];
    engine::Decision& d = decisions[i];
    const engine::Catalog& catalog = snapshot->catalog();
    auto model = catalog.FindModel(in.model);
    std::optional<engine::ActionId> action;
    if (model) action = catalog.FindAction(*model, in.action);
    if (!model) {
      d = engine::Decision{false, engine::Reason::kUnknownModel, {}, false};
    } else if (!action) {
      d = engine::Decision{false, engine::Reason::kUnknownAction, {}, false};
    } else if (token_failure) {
      d = engine::Decision{false, *token_failure, {}, false};
    } else if (!policy) {  // the account's policy no longer compiles: fail closed
      d = engine::Decision{false, engine::Reason::kNoMatchingAllow, {}, true};
    } else {
      d = snapshot->Evaluate(*principal, policies, *model, *action, in.resource, check.context);
    }
    metrics_.CountDecision(d.allowed, d.reason);
    store::DecisionRow& row = rows[i];
    row.id = NewUlid(clock_);
    row.time = now;
    row.tenant_id = tenant_id;
    row.principal_type = principal ? std::string(engine::PrincipalTypeName(principal->type)) : "service_account";
    row.principal_id = principal ? principal->id : "";
    row.principal_name = principal ? principal->name : "";
    row.token_id = token_id;
    row.model = in.model;
    row.action = in.action;
    row.resource_id = in.resource_id;
    row.allowed = d.allowed;
    row.reason = std::string(engine::ReasonName(d.reason));
    row.rule = std::string(d.rule);
    row.eval_error = d.eval_error ? "cannot evaluate a condition" : "";
    row.policy_revision = snapshot->revision();
    row.client_addr = check.client_addr.empty() ? req.remote_addr : check.client_addr;
    row.method = check.method;
    row.path = check.path;
    row.request_id = check.request_id;
  }
  const int64_t latency_us =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start).count();
  for (auto& row : rows) row.latency_us = latency_us;
  // A request with an invalid token is one row (its first check), whatever its batch size: it
  // is one unauthenticated attempt, and every result names that row's decision id.
  if (invalid_token) {
    for (auto& row : rows) row.id = rows.front().id;
  }

  // The answer is written directly (not through a JSON tree): it is most of the check path's
  // allocations otherwise. Keys in the same (sorted) order nlohmann::json would print them.
  std::string out;
  out.reserve(256 + rows.size() * 200);
  out += '{';
  if (check.single) {
    out += R"("allowed":)";
    out += decisions[0].allowed ? "true" : "false";
    out += ',';
  }
  out += R"("decision_id":)";
  AppendJsonString(&out, rows.front().id);
  out += R"(,"policy_revision":)";
  AppendJsonString(&out, snapshot->revision());
  out += R"(,"principal":{"id":)";
  AppendJsonStringOrNull(&out, rows.front().principal_id);
  out += R"(,"name":)";
  AppendJsonStringOrNull(&out, rows.front().principal_name);
  out += R"(,"token_id":)";
  AppendJsonStringOrNull(&out, token_id);
  out += R"(,"type":)";
  AppendJsonString(&out, rows.front().principal_type);
  out += '}';
  if (check.single) {
    out += R"(,"reason":)";
    AppendJsonString(&out, rows[0].reason);
  }
  out += R"(,"results":[)";
  for (size_t i = 0; i < rows.size(); ++i) {
    if (i > 0) out += ',';
    out += R"({"action":)";
    AppendJsonString(&out, rows[i].action);
    out += R"(,"allowed":)";
    out += decisions[i].allowed ? "true" : "false";
    out += R"(,"decision_id":)";
    AppendJsonString(&out, rows[i].id);
    out += R"(,"eval_error":)";
    out += decisions[i].eval_error ? "true" : "false";
    out += R"(,"model":)";
    AppendJsonString(&out, rows[i].model);
    out += R"(,"reason":)";
    AppendJsonString(&out, rows[i].reason);
    out += R"(,"rule":)";
    AppendJsonStringOrNull(&out, rows[i].rule);
    out += '}';
  }
  out += ']';
  if (check.single) {
    out += R"(,"rule":)";
    AppendJsonStringOrNull(&out, rows[0].rule);
  }
  out += '}';
  res.status = 200;
  res.set_content(std::move(out), "application/json");
  if (invalid_token) log_rows->resize(first_row + 1);
}

void App::HandleCheck(const httplib::Request& req, httplib::Response& res) {
  std::vector<store::DecisionRow> rows;
  DecideCheck(req, res, &rows);
  if (rows.empty()) return;
  // Durable before the answer (group commit). If the row cannot be written, nothing is allowed.
  Status logged = logger_->Write(&rows);
  if (!logged.ok()) WriteError(res, logged);
}

bool App::DecideInline(httplib::Request& req, httplib::Response& res) {
  const size_t before = batch_rows_.size();
  bool needs_store = false;
  try {
    DecideCheck(req, res, &batch_rows_, &needs_store);
  } catch (...) {
    batch_rows_.resize(before);
    res = httplib::Response();
    WriteError(res, 500, "internal", "internal error");
  }
  if (needs_store) {  // a token-cache miss: a worker looks it up, the loop goes on
    metrics_.checks_handed_off++;
    return false;
  }
  SetRequestId(req, res);
  if (batch_rows_.size() > before) batch_answers_.push_back(&res);
  return true;
}

void App::CommitInline() {
  if (batch_rows_.empty()) return;
  // Durable before the answer: one write for every check of the pass. If the rows cannot be
  // written, every answer of the batch becomes a 503 and nothing is allowed.
  Status logged = logger_->Write(&batch_rows_);
  if (!logged.ok()) {
    for (httplib::Response* res : batch_answers_) WriteError(*res, logged);
  }
  batch_rows_.clear();
  batch_answers_.clear();
}

void App::RegisterCheckRoutes() {
  // Whoever sees the tenant token can act as the tenant (create on the analytics models).
  auto check_tenant = [this](Caller& caller) -> Status {
    const engine::CompiledPolicy* tenant = &caller.snapshot->TenantPolicy();
    return RequireNoEscalation(caller, {engine::PrincipalType::kTenant, std::span(&tenant, 1)}, "the tenant token");
  };
  Admin("GET", "/v1/tenant", [this, check_tenant](const httplib::Request&, httplib::Response& res, Caller& caller) -> Status {
    RETURN_IF_ERROR(Authorize(caller, "serviceaccount", "view"));
    RETURN_IF_ERROR(check_tenant(caller));
    ASSIGN_OR_RETURN(store::Tenant tenant, store_->GetTenant(caller.tenant_id));
    WriteJson(res, 200, {{"id", tenant.id}, {"name", tenant.name}, {"tenant_token", tenant.tenant_token},
                         {"analytics", caller.snapshot->catalog().analytics()},
                         {"created_at", TimeJson(tenant.created_at)}});
    return Status();
  });

  Admin("POST", R"(/v1/tenant/token:rotate)", [this, check_tenant](const httplib::Request&, httplib::Response& res, Caller& caller) -> Status {
    RETURN_IF_ERROR(Authorize(caller, "serviceaccount", "update"));
    RETURN_IF_ERROR(check_tenant(caller));
    store::AuditEntry audit = Audit(caller, "tenant.token_rotated", "tenant", caller.tenant_id, caller.tenant_id);
    ASSIGN_OR_RETURN(std::string token, store_->RotateTenantToken(caller.tenant_id, &audit));
    SetTenantToken(caller.tenant_id, token);
    WriteJson(res, 200, {{"id", caller.tenant_id}, {"tenant_token", token}});
    return Status();
  });

  // Shared by the per-account history and the tenant-wide one.
  auto query_from = [](const httplib::Request& req, const std::string& tenant) -> StatusOr<store::DecisionQuery> {
    store::DecisionQuery q;
    q.tenant_id = tenant;
    ASSIGN_OR_RETURN(store::ListOptions page_options, PageOptions(req));
    q.limit = page_options.limit;
    q.cursor = page_options.cursor;
    if (req.has_param("allowed")) {
      std::string a = req.get_param_value("allowed");
      if (a == "true") q.allowed = true;
      else if (a == "false") q.allowed = false;
      else return InvalidArgumentError("allowed must be true or false", "allowed");
    }
    q.model = req.get_param_value("model");
    q.action = req.get_param_value("action");
    ASSIGN_OR_RETURN(q.since, QueryTime(req, "since"));
    ASSIGN_OR_RETURN(q.until, QueryTime(req, "until"));
    return q;
  };

  Admin("GET", R"(/v1/service-accounts/([A-Za-z0-9_.\-]+)/logs)",
        [this, query_from](const httplib::Request& req, httplib::Response& res, Caller& caller) -> Status {
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

  Admin("GET", "/v1/decisions", [this, query_from](const httplib::Request& req, httplib::Response& res, Caller& caller) -> Status {
    RETURN_IF_ERROR(Authorize(caller, "serviceaccount", "view"));
    RETURN_IF_ERROR(Authorize(caller, "user", "view"));
    ASSIGN_OR_RETURN(store::DecisionQuery q, query_from(req, caller.tenant_id));
    q.principal_id = req.get_param_value("principal_id");
    ASSIGN_OR_RETURN(auto page, store_->Query(q));
    WriteJson(res, 200, PageJson(page, DecisionJson));
    return Status();
  });
}

}  // namespace warden::server
