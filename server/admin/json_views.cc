#include "server/admin/json_views.h"

#include "common/clock.h"
#include "engine/engine.h"
#include "server/http/json_io.h"

namespace warden::server {

nlohmann::json TimeJson(int64_t millis) {
  return millis == 0 ? nlohmann::json(nullptr) : nlohmann::json(FormatTimestamp(millis));
}

nlohmann::json UserJson(const store::User& u) {
  return {{"id", u.id},
          {"email", u.email},
          {"name", u.name},
          {"role", u.roles.empty() ? nlohmann::json(nullptr) : nlohmann::json(u.roles.front())},
          {"roles", u.roles},
          {"enabled", u.enabled},
          {"attributes", u.attributes},
          {"created_at", TimeJson(u.created_at)},
          {"updated_at", TimeJson(u.updated_at)}};
}

nlohmann::json AccountJson(const store::ServiceAccount& a) {
  return {{"id", a.id},
          {"name", a.name},
          {"description", a.description},
          {"enabled", a.enabled},
          {"token_count", a.token_count},
          {"policy_version", a.policy_version},
          {"attributes", a.attributes},
          {"created_at", TimeJson(a.created_at)},
          {"created_by", {{"type", a.created_by_type}, {"id", a.created_by_id}}},
          {"updated_at", TimeJson(a.updated_at)},
          {"last_used_at", TimeJson(a.last_used_at)},
          {"deleted_at", TimeJson(a.deleted_at)}};
}

nlohmann::json TokenJson(const store::ApiTokenRecord& t) {
  return {{"id", t.id},
          {"name", t.name},
          {"prefix", t.display_prefix},
          {"created_at", TimeJson(t.created_at)},
          {"created_by", {{"type", t.created_by_type}, {"id", t.created_by_id}}},
          {"last_used_at", TimeJson(t.last_used_at)},
          {"expires_at", TimeJson(t.expires_at)}};
}

nlohmann::json AuditJson(const store::AuditEntry& e) {
  return {{"id", e.id},
          {"time", TimeJson(e.time)},
          {"actor", {{"type", e.actor_type}, {"id", e.actor_id}}},
          {"action", e.action},
          {"target", {{"type", e.target_type}, {"id", e.target_id}, {"name", e.target_name}}},
          {"details", e.details}};
}

nlohmann::json DecisionJson(const store::DecisionRow& r) {
  nlohmann::json out = {{"decision_id", r.id},
          {"time", TimeJson(r.time)},
          {"principal", {{"type", r.principal_type}, {"id", r.principal_id}, {"name", r.principal_name},
                         {"token_id", r.token_id.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.token_id)}}},
          {"model", r.model},
          {"action", r.action},
          {"resource_id", r.resource_id},
          {"allowed", r.allowed},
          {"reason", r.reason},
          {"rule", r.rule},
          {"eval_error", !r.eval_error.empty()},
          {"policy_revision", r.policy_revision},
          {"context", {{"client_addr", r.client_addr}, {"method", r.method}, {"path", r.path},
                       {"request_id", r.request_id}}},
          {"latency_us", r.latency_us}};
  // AuthZEN: the PEP's account that asked about the principal (DESIGN.md 6.1).
  if (!r.caller_id.empty()) out["caller"] = {{"type", "service_account"}, {"id", r.caller_id}, {"name", r.caller_name}};
  return out;
}

nlohmann::json PolicyVersionJson(const store::PolicyVersion& v) {
  return {{"version", v.version},
          {"created_at", TimeJson(v.created_at)},
          {"actor", {{"type", v.actor_type}, {"id", v.actor_id}}},
          {"policy_yaml", v.policy_yaml}};
}

Status CheckAttributes(const nlohmann::json& value) {
  if (!value.is_object()) return InvalidArgumentError("attributes must be an object", "attributes");
  return engine::Attributes::FromJson(value, "attributes").status();
}

StatusOr<store::ListOptions> PageOptions(const Request& req) {
  ASSIGN_OR_RETURN(int64_t limit, QueryInt(req, "limit", store::kDefaultPageLimit, 1, store::kMaxPageLimit));
  return store::ListOptions{static_cast<int>(limit), req.Param("cursor")};
}

}  // namespace warden::server
