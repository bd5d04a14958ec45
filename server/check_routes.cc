// POST /v1/check (the hot path), the tenant token, and the decision history.
#include <chrono>
#include <optional>
#include <span>

#include <simdjson.h>

#include "common/crypto.h"
#include "common/json_text.h"
#include "common/ids.h"
#include "server/app.h"
#include "server/http_util.h"
#include "server/json_views.h"

namespace warden::server {

namespace {

constexpr size_t kMaxName = 128;
constexpr size_t kMaxContextString = 2048;

struct CheckInput {
  std::string model;
  std::string action;
  std::string resource_id;
  engine::Attributes resource;
};

struct CheckRequest {
  std::string token;
  bool tenant = false;
  bool single = false;
  std::vector<CheckInput> checks;
  engine::Attributes context;
  std::string client_addr, method, path, request_id;
};

namespace sj = simdjson::dom;

// `key` as an error's field path under `prefix` ("" at the top level).
std::string FieldPath(std::string_view prefix, std::string_view key) {
  return prefix.empty() ? std::string(key) : std::string(prefix) + "." + std::string(key);
}

// The same mapping as engine::Attributes::FromJson (strings, numbers, booleans, arrays of
// strings; null = absent), from simdjson's document instead of a nlohmann tree.
StatusOr<engine::Attributes> AttributesFrom(sj::object object, std::string_view prefix) {
  engine::Attributes out;
  for (sj::key_value_pair kv : object) {
    const sj::element& value = kv.value;
    switch (value.type()) {
      case sj::element_type::NULL_VALUE: break;
      case sj::element_type::BOOL: out.Set(std::string(kv.key), value.get_bool().value_unsafe()); break;
      case sj::element_type::INT64:
      case sj::element_type::UINT64:
      case sj::element_type::DOUBLE: out.Set(std::string(kv.key), value.get_double().value_unsafe()); break;
      case sj::element_type::STRING: out.Set(std::string(kv.key), std::string(value.get_string().value_unsafe())); break;
      case sj::element_type::ARRAY: {
        std::vector<std::string> list;
        sj::array items;
        if (value.get_array().get(items) != simdjson::SUCCESS) break;  // the type says it is one
        for (sj::element item : items) {
          if (!item.is_string()) {
            const std::string field = FieldPath(prefix, kv.key);
            return InvalidArgumentError(field + " must be an array of strings", field);
          }
          list.emplace_back(item.get_string().value_unsafe());
        }
        out.Set(std::string(kv.key), std::move(list));
        break;
      }
      default: {
        const std::string field = FieldPath(prefix, kv.key);
        return InvalidArgumentError(field + " must be a string, number, boolean or array of strings", field);
      }
    }
  }
  return out;
}

// The member `key` of `obj`, or nullopt when it is absent or null.
std::optional<sj::element> Member(sj::object obj, std::string_view key) {
  sj::element e;
  if (obj.at_key(key).get(e) != simdjson::SUCCESS || e.is_null()) return std::nullopt;
  return e;
}

bool Has(sj::object obj, std::string_view key) {
  sj::element e;
  return obj.at_key(key).get(e) == simdjson::SUCCESS;
}

Status ParseCheck(sj::element value, const std::string& field, CheckInput* out) {
  sj::object obj;
  if (value.get_object().get(obj) != simdjson::SUCCESS) return InvalidArgumentError(field + " must be an object", field);
  for (sj::key_value_pair kv : obj) {
    const std::string_view k = kv.key;
    if (k != "model" && k != "action" && k != "resource" && k != "token" && k != "tenant_token" &&
        k != "context" && k != "checks") {
      return InvalidArgumentError("unknown field '" + std::string(k) + "'", FieldPath(field, k));
    }
  }
  for (auto [key, target] : {std::pair<const char*, std::string*>{"model", &out->model}, {"action", &out->action}}) {
    const std::string path = FieldPath(field, key);
    std::optional<sj::element> e = Member(obj, key);
    if (!e) return InvalidArgumentError(std::string(key) + " is required", path);
    std::string_view text;
    if (e->get_string().get(text) != simdjson::SUCCESS) return InvalidArgumentError(std::string(key) + " must be a string", path);
    if (text.empty() || text.size() > kMaxName) return InvalidArgumentError(std::string(key) + " must be 1-128 characters", path);
    target->assign(text);
  }
  if (std::optional<sj::element> res = Member(obj, "resource")) {
    const std::string path = FieldPath(field, "resource");
    sj::object attrs;
    if (res->get_object().get(attrs) != simdjson::SUCCESS) return InvalidArgumentError("resource must be an object", path);
    if (std::optional<sj::element> id = Member(attrs, "id")) {
      // `id` is also an attribute conditions may use.
      std::string_view text;
      int64_t number = 0;
      uint64_t unsigned_number = 0;
      if (id->get_string().get(text) == simdjson::SUCCESS) out->resource_id.assign(text);
      else if (id->get_int64().get(number) == simdjson::SUCCESS) out->resource_id = std::to_string(number);
      else if (id->get_uint64().get(unsigned_number) == simdjson::SUCCESS) out->resource_id = std::to_string(unsigned_number);
      else return InvalidArgumentError("resource.id must be a string", path + ".id");
      if (out->resource_id.size() > 512) return InvalidArgumentError("resource.id is too long", path + ".id");
    }
    ASSIGN_OR_RETURN(out->resource, AttributesFrom(attrs, path));
  }
  return Status();
}

StatusOr<CheckRequest> ParseCheckRequest(sj::element doc, int max_checks) {
  CheckRequest out;
  sj::object body;
  if (doc.get_object().get(body) != simdjson::SUCCESS) return InvalidArgumentError("the body must be a JSON object");
  const bool has_token = Has(body, "token"), has_tenant = Has(body, "tenant_token");
  if (has_token == has_tenant) return InvalidArgumentError("give exactly one of token or tenant_token", "token");
  const std::string token_field = has_token ? "token" : "tenant_token";
  std::string_view token;
  if (body.at_key(token_field).get_string().get(token) != simdjson::SUCCESS) {
    return InvalidArgumentError(token_field + " must be a string", token_field);
  }
  if (token.size() > 256) return InvalidArgumentError(token_field + " is too long", token_field);
  out.token.assign(token);
  out.tenant = has_tenant;
  if (sj::element checks_value; body.at_key("checks").get(checks_value) == simdjson::SUCCESS) {
    if (Has(body, "model") || Has(body, "action") || Has(body, "resource")) {
      return InvalidArgumentError("give checks or a single model/action, not both", "checks");
    }
    sj::array checks;
    if (checks_value.get_array().get(checks) != simdjson::SUCCESS || checks.size() == 0) {
      return InvalidArgumentError("checks must be a non-empty array", "checks");
    }
    if (checks.size() > static_cast<size_t>(max_checks)) {
      return InvalidArgumentError("at most " + std::to_string(max_checks) + " checks per request", "checks");
    }
    size_t i = 0;
    for (sj::element check : checks) {
      const std::string field = "checks[" + std::to_string(i++) + "]";
      if (sj::object obj; check.get_object().get(obj) == simdjson::SUCCESS &&
                          (Has(obj, "token") || Has(obj, "tenant_token") || Has(obj, "context") || Has(obj, "checks"))) {
        return InvalidArgumentError("a check holds only model, action and resource", field);
      }
      CheckInput in;
      RETURN_IF_ERROR(ParseCheck(check, field, &in));
      out.checks.push_back(std::move(in));
    }
    for (sj::key_value_pair kv : body) {
      if (kv.key != "token" && kv.key != "tenant_token" && kv.key != "checks" && kv.key != "context") {
        return InvalidArgumentError("unknown field '" + std::string(kv.key) + "'", std::string(kv.key));
      }
    }
  } else {
    CheckInput in;
    RETURN_IF_ERROR(ParseCheck(doc, "", &in));
    out.checks.push_back(std::move(in));
    out.single = true;
  }
  if (std::optional<sj::element> ctx_value = Member(body, "context")) {
    sj::object ctx;
    if (ctx_value->get_object().get(ctx) != simdjson::SUCCESS) return InvalidArgumentError("context must be an object", "context");
    for (auto [key, target] : {std::pair<const char*, std::string*>{"client_address", &out.client_addr},
                               {"client_addr", &out.client_addr}, {"method", &out.method},
                               {"path", &out.path}, {"request_id", &out.request_id}}) {
      std::optional<sj::element> e = Member(ctx, key);
      if (!e) continue;
      const std::string field = std::string("context.") + key;
      std::string_view text;
      if (e->get_string().get(text) != simdjson::SUCCESS) return InvalidArgumentError(field + " must be a string", field);
      if (text.size() > kMaxContextString) return InvalidArgumentError(field + " is too long", field);
      target->assign(text);
    }
    ASSIGN_OR_RETURN(out.context, AttributesFrom(ctx, "context"));
  }
  return out;
}

// A JSON string literal for `s` (valid UTF-8: it came out of the JSON parser or the code).
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
  StatusOr<CheckRequest> parsed = ParseCheckRequest(doc, config_.max_batch_checks);
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
