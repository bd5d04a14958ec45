#include "store/row_codec.h"

#include <algorithm>
#include <charconv>

namespace warden::store {

using nlohmann::json;

std::string EncodeCursor(int64_t seq) { return "c" + std::to_string(seq); }

StatusOr<int64_t> DecodeCursor(const std::string& cursor) {
  if (cursor.empty()) return kNoCursor;
  int64_t seq = 0;
  const char* begin = cursor.data() + 1;
  const char* end = cursor.data() + cursor.size();
  auto [ptr, ec] = std::from_chars(begin, end, seq);
  if (cursor[0] != 'c' || begin == end || ec != std::errc() || ptr != end || seq <= 0) {
    return InvalidArgumentError("malformed cursor", "cursor");
  }
  return seq;
}

int ClampLimit(int limit) {
  if (limit <= 0) return kDefaultPageLimit;
  return std::min(limit, kMaxPageLimit);
}

StatusOr<json> ParseJsonColumn(const std::string& text, std::string_view what) {
  json value = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) {
    return InternalError("stored " + std::string(what) + " is not valid JSON");
  }
  return value;
}

std::string DumpJson(const json& value) { return value.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string RolesJson(const std::vector<std::string>& roles) { return DumpJson(json(roles)); }

StatusOr<std::vector<std::string>> ParseRoles(const std::string& text) {
  ASSIGN_OR_RETURN(json roles, ParseJsonColumn(text, "roles"));
  if (!roles.is_array()) return InternalError("stored roles are not an array");
  std::vector<std::string> out;
  for (const auto& r : roles) {
    if (r.is_string()) out.push_back(r.get<std::string>());
  }
  return out;
}

void ApplyUpdate(const UserUpdate& update, User* u) {
  if (update.email) u->email = *update.email;
  if (update.name) u->name = *update.name;
  if (update.roles) u->roles = *update.roles;
  if (update.attributes) u->attributes = *update.attributes;
  if (update.enabled) u->enabled = *update.enabled;
  if (update.password_hash) u->password_hash = *update.password_hash;
}

void ApplyUpdate(const AccountUpdate& update, ServiceAccount* a) {
  if (update.name) a->name = *update.name;
  if (update.description) a->description = *update.description;
  if (update.enabled) a->enabled = *update.enabled;
  if (update.attributes) a->attributes = *update.attributes;
}

ServiceAccount NewAccountRow(const ServiceAccount& account, int64_t now, std::string id) {
  ServiceAccount a = account;
  if (a.id.empty()) a.id = std::move(id);
  a.created_at = a.updated_at = now;
  a.policy_version = 1;
  a.deleted_at = 0;
  a.token_count = 0;
  a.last_used_at = 0;
  return a;
}

AuditEntry FillAudit(const AuditEntry& audit, const std::string& tenant_id, const std::string& target_id,
                     const std::string& target_name) {
  AuditEntry e = audit;
  if (e.tenant_id.empty()) e.tenant_id = tenant_id;
  if (e.target_id.empty()) e.target_id = target_id;
  if (e.target_name.empty()) e.target_name = target_name;
  return e;
}

Status ValidateUser(const User& u) {
  if (u.tenant_id.empty()) return InvalidArgumentError("tenant_id is required", "tenant_id");
  if (u.email.empty()) return InvalidArgumentError("email is required", "email");
  if (!u.attributes.is_object()) return InvalidArgumentError("attributes must be an object", "attributes");
  return Status::Ok();
}

Status ValidateAccount(const ServiceAccount& a) {
  if (a.tenant_id.empty()) return InvalidArgumentError("tenant_id is required", "tenant_id");
  if (a.name.empty()) return InvalidArgumentError("name is required", "name");
  if (!a.attributes.is_object()) return InvalidArgumentError("attributes must be an object", "attributes");
  return Status::Ok();
}

Status ValidateToken(const ApiTokenRecord& t) {
  if (t.id.empty()) return InvalidArgumentError("token id is required", "id");
  if (t.secret_hash.size() != 32) return InvalidArgumentError("token secret hash must be 32 bytes", "secret_hash");
  return Status::Ok();
}

Status ValidateDirectoryEntry(const DirectoryEntry& e, size_t index) {
  const std::string field = "entries[" + std::to_string(index) + "]";
  if (e.tenant_id.empty()) return InvalidArgumentError("tenant_id is required", field + ".tenant_id");
  for (auto [name, value] : {std::pair<const char*, const std::string*>{"type", &e.type}, {"id", &e.id}}) {
    if (value->empty() || value->size() > kMaxDirectoryNameBytes) {
      return InvalidArgumentError(std::string(name) + " must be 1-" + std::to_string(kMaxDirectoryNameBytes) +
                                      " bytes",
                                  field + "." + name);
    }
  }
  if (e.kind == DirectoryKind::kResource && !e.roles.empty()) {
    return InvalidArgumentError("a resource has no roles", field + ".roles");
  }
  if (e.roles.size() > kMaxDirectoryRoles) {
    return InvalidArgumentError("at most " + std::to_string(kMaxDirectoryRoles) + " roles", field + ".roles");
  }
  for (const std::string& r : e.roles) {
    if (r.empty() || r.size() > kMaxDirectoryNameBytes) return InvalidArgumentError("invalid role name", field + ".roles");
  }
  if (!e.properties.is_object()) return InvalidArgumentError("properties must be an object", field + ".properties");
  if (DumpJson(e.properties).size() > kMaxDirectoryPropertyBytes) {
    return InvalidArgumentError("properties are too large", field + ".properties");
  }
  return Status::Ok();
}


}  // namespace warden::store
