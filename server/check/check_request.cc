// POST /v1/check bodies (see check_request.h).
#include "server/check/check_request.h"

#include <optional>

namespace warden::server {

namespace {

constexpr size_t kMaxName = 128;
constexpr size_t kMaxContextString = 2048;

namespace sj = simdjson::dom;

// `key` as an error's field path under `prefix` ("" at the top level).
std::string FieldPath(std::string_view prefix, std::string_view key) {
  return prefix.empty() ? std::string(key) : std::string(prefix) + "." + std::string(key);
}

// The same mapping as engine::Attributes::FromJson (strings, numbers, booleans, arrays of
// strings; null = absent; the bounds of Attributes::Add), from simdjson's document instead of
// a nlohmann tree. Add refuses the 65th attribute, so a body of 90,000 costs no more than 64.
StatusOr<engine::Attributes> AttributesFrom(sj::object object, std::string_view prefix, std::optional<BodyLimit>* tripped) {
  engine::Attributes out;
  for (sj::key_value_pair kv : object) {
    const sj::element& value = kv.value;
    engine::Value v;
    switch (value.type()) {
      case sj::element_type::NULL_VALUE: continue;
      case sj::element_type::BOOL: v = value.get_bool().value_unsafe(); break;
      case sj::element_type::INT64:
      case sj::element_type::UINT64:
      case sj::element_type::DOUBLE: v = value.get_double().value_unsafe(); break;
      case sj::element_type::STRING: v = std::string(value.get_string().value_unsafe()); break;
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
        v = std::move(list);
        break;
      }
      default: {
        const std::string field = FieldPath(prefix, kv.key);
        return InvalidArgumentError(field + " must be a string, number, boolean or array of strings", field);
      }
    }
    Status added = out.Add(kv.key, std::move(v), prefix);
    if (!added.ok()) {
      if (tripped) *tripped = BodyLimit::kAttributes;
      return added;
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

Status ParseCheck(sj::element value, const std::string& field, CheckInput* out, std::optional<BodyLimit>* tripped) {
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
    ASSIGN_OR_RETURN(out->resource, AttributesFrom(attrs, path, tripped));
  }
  return Status();
}

}  // namespace

StatusOr<CheckRequest> ParseCheckRequest(sj::element doc, int max_checks, std::optional<BodyLimit>* tripped) {
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
      if (tripped) *tripped = BodyLimit::kChecks;
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
      RETURN_IF_ERROR(ParseCheck(check, field, &in, tripped));
      out.checks.push_back(std::move(in));
    }
    for (sj::key_value_pair kv : body) {
      if (kv.key != "token" && kv.key != "tenant_token" && kv.key != "checks" && kv.key != "context") {
        return InvalidArgumentError("unknown field '" + std::string(kv.key) + "'", std::string(kv.key));
      }
    }
  } else {
    CheckInput in;
    RETURN_IF_ERROR(ParseCheck(doc, "", &in, tripped));
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
    ASSIGN_OR_RETURN(out.context, AttributesFrom(ctx, "context", tripped));
  }
  return out;
}

}  // namespace warden::server
