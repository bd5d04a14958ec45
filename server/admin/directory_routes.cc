// The directory's admin routes (DESIGN.md 6.1): AuthZEN subjects and resources of the protected
// application, one at a time or imported from a JSON or YAML document. Authorized as
// (caller, directory, view|create|update|delete); giving a subject roles goes through the
// no-escalation rule like giving them to a user.
//
//   GET    /v1/directory/{subjects|resources}/{type}?limit=&cursor=   a type's entries, by id
//   GET    /v1/directory/{subjects|resources}/{type}/{id}
//   PUT    /v1/directory/{subjects|resources}/{type}/{id}   {"roles": [...], "properties": {...}}
//   DELETE /v1/directory/{subjects|resources}/{type}/{id}
//   POST   /v1/directory/import   {"subjects": [{type, id, roles, properties}], "resources": [...]}
#include <set>

#include "engine/yaml_json.h"
#include "server/admin/admin_api.h"
#include "server/admin/json_views.h"
#include "server/http/json_io.h"

namespace warden::server {

namespace {

using nlohmann::json;

constexpr size_t kMaxImportEntries = 100'000;

json EntryJson(const store::DirectoryEntry& e) {
  json out = {{"type", e.type}, {"id", e.id}, {"properties", e.properties}, {"updated_at", TimeJson(e.updated_at)}};
  if (e.kind == store::DirectoryKind::kSubject) out["roles"] = e.roles;
  return out;
}

// A type or id segment: anything but '/' the router can name (ids holding '/', such as routes,
// are managed by import). Bytes 0x80-0xff let UTF-8 through.
const std::string kName = "([A-Za-z0-9_.:@~!$&'*+,;= %\\-\x80-\xff]+)";

// One entry from its JSON (an import item, or a PUT body with type and id from the path).
StatusOr<store::DirectoryEntry> EntryFromJson(const json& v, store::DirectoryKind kind, const std::string& field) {
  if (!v.is_object()) return InvalidArgumentError("must be an object", field);
  store::DirectoryEntry e;
  e.kind = kind;
  for (auto [key, target] : {std::pair<const char*, std::string*>{"type", &e.type}, {"id", &e.id}}) {
    auto it = v.find(key);
    if (it == v.end()) continue;
    if (it->is_number_integer()) *target = std::to_string(it->get<int64_t>());  // ids of YAML files: 101
    else if (it->is_string()) *target = it->get<std::string>();
    else return InvalidArgumentError(std::string(key) + " must be a string", field + "." + key);
  }
  if (auto roles = v.find("roles"); roles != v.end() && !roles->is_null()) {
    if (kind == store::DirectoryKind::kResource) return InvalidArgumentError("a resource has no roles", field + ".roles");
    if (!roles->is_array()) return InvalidArgumentError("roles must be an array of role names", field + ".roles");
    for (const json& r : *roles) {
      if (!r.is_string()) return InvalidArgumentError("roles must be an array of role names", field + ".roles");
      e.roles.push_back(r.get<std::string>());
    }
  }
  if (auto p = v.find("properties"); p != v.end() && !p->is_null()) {
    if (!p->is_object()) return InvalidArgumentError("properties must be an object", field + ".properties");
    e.properties = *p;
  }
  return e;
}

StatusOr<json> JsonOrYamlBody(const Request& req) {
  if (IsYamlContentType(req.Header("Content-Type"))) {
    ASSIGN_OR_RETURN(json doc, engine::YamlToJson(req.body, "directory.yaml"));
    if (!doc.is_object()) return InvalidArgumentError("the document must be a mapping");
    return doc;
  }
  return ParseJsonObject(req);
}

}  // namespace

void AdminApi::RegisterDirectoryRoutes() {
  // Roles handed to directory subjects are permissions: the caller must hold them all.
  auto check_roles = [this](Caller& caller, const std::vector<store::DirectoryEntry>& entries) -> Status {
    std::set<std::string> roles;
    for (const auto& e : entries) roles.insert(e.roles.begin(), e.roles.end());
    if (roles.empty()) return Status();
    const std::vector<std::string> list(roles.begin(), roles.end());
    for (const std::string& r : list) {
      if (!caller.snapshot->FindRole(r)) return InvalidArgumentError("unknown role '" + r + "'", "roles");
    }
    const std::vector<const engine::CompiledPolicy*> policies = RolePolicies(*caller.snapshot, list);
    return RequireNoEscalation(caller, {engine::PrincipalType::kUser, policies}, "directory subjects' roles");
  };
  for (auto [segment, each_kind] : {std::pair<const char*, store::DirectoryKind>{"subjects", store::DirectoryKind::kSubject},
                                     {"resources", store::DirectoryKind::kResource}}) {
  const store::DirectoryKind kind = each_kind;
  const std::string base = std::string("/v1/directory/") + segment + "/" + kName;

  Admin("GET", base, [this, kind](const Request& req, Response& res, Caller& caller) -> Status {
    RETURN_IF_ERROR(Authorize(caller, "directory", "view"));
    ASSIGN_OR_RETURN(store::ListOptions page, PageOptions(req));
    store::DirectoryQuery q{caller.tenant_id, kind, caller.params[1], page.cursor, page.limit};
    ASSIGN_OR_RETURN(std::vector<store::DirectoryEntry> entries, store_->ListDirectoryEntries(q));
    json items = json::array();
    for (const auto& e : entries) items.push_back(EntryJson(e));
    const size_t wanted = static_cast<size_t>(page.limit <= 0 ? store::kDefaultPageLimit : page.limit);
    // The cursor is the last id: an opaque string to callers, as the store's paging is by id.
    json next = entries.size() >= wanted && !entries.empty() ? json(entries.back().id) : json(nullptr);
    WriteJson(res, 200, {{"items", items}, {"next_cursor", next}});
    return Status();
  });

  Admin("GET", base + "/" + kName, [this, kind](const Request&, Response& res, Caller& caller) -> Status {
    RETURN_IF_ERROR(Authorize(caller, "directory", "view"));
    ASSIGN_OR_RETURN(store::DirectoryEntry e, store_->GetDirectoryEntry(caller.tenant_id, kind,
                                                                        caller.params[1], caller.params[2]));
    WriteJson(res, 200, EntryJson(e));
    return Status();
  });

  Admin("PUT", base + "/" + kName, [this, kind, check_roles](const Request& req, Response& res, Caller& caller) -> Status {
    RETURN_IF_ERROR(Authorize(caller, "directory", "update"));
    ASSIGN_OR_RETURN(json body, ParseJsonObject(req));
    ASSIGN_OR_RETURN(store::DirectoryEntry e, EntryFromJson(body, kind, ""));
    e.tenant_id = caller.tenant_id;
    e.type = caller.params[1];
    e.id = caller.params[2];
    RETURN_IF_ERROR(check_roles(caller, {e}));
    store::AuditEntry audit = Audit(caller, "directory.entry_put", std::string(store::DirectoryKindName(e.kind)),
                                    e.type + "/" + e.id, e.id);
    RETURN_IF_ERROR(store_->PutDirectoryEntries({e}, &audit));
    ASSIGN_OR_RETURN(store::DirectoryEntry stored, store_->GetDirectoryEntry(e.tenant_id, e.kind, e.type, e.id));
    WriteJson(res, 200, EntryJson(stored));
    return Status();
  });

  Admin("DELETE", base + "/" + kName, [this, kind](const Request&, Response& res, Caller& caller) -> Status {
    RETURN_IF_ERROR(Authorize(caller, "directory", "delete"));
    store::AuditEntry audit = Audit(caller, "directory.entry_deleted", std::string(store::DirectoryKindName(kind)),
                                    caller.params[1] + "/" + caller.params[2], caller.params[2]);
    RETURN_IF_ERROR(store_->DeleteDirectoryEntry(caller.tenant_id, kind, caller.params[1], caller.params[2], &audit));
    res.status = 204;
    return Status();
  });

  }

  Admin("POST", "/v1/directory/import", [this, check_roles](const Request& req, Response& res, Caller& caller) -> Status {
    RETURN_IF_ERROR(Authorize(caller, "directory", "create"));
    RETURN_IF_ERROR(Authorize(caller, "directory", "update"));
    ASSIGN_OR_RETURN(json doc, JsonOrYamlBody(req));
    std::vector<store::DirectoryEntry> entries;
    size_t counts[2] = {0, 0};
    for (auto [key, kind] : {std::pair<const char*, store::DirectoryKind>{"subjects", store::DirectoryKind::kSubject},
                             {"resources", store::DirectoryKind::kResource}}) {
      auto list = doc.find(key);
      if (list == doc.end() || list->is_null()) continue;
      if (!list->is_array()) return InvalidArgumentError(std::string(key) + " must be a list", key);
      if (entries.size() + list->size() > kMaxImportEntries) {
        return InvalidArgumentError("at most " + std::to_string(kMaxImportEntries) + " entries per import", key);
      }
      for (size_t i = 0; i < list->size(); ++i) {
        const std::string field = std::string(key) + "[" + std::to_string(i) + "]";
        ASSIGN_OR_RETURN(store::DirectoryEntry e, EntryFromJson((*list)[i], kind, field));
        if (e.type.empty()) return InvalidArgumentError("type is required", field + ".type");
        if (e.id.empty()) return InvalidArgumentError("id is required", field + ".id");
        e.tenant_id = caller.tenant_id;
        entries.push_back(std::move(e));
        ++counts[kind == store::DirectoryKind::kSubject ? 0 : 1];
      }
    }
    RETURN_IF_ERROR(check_roles(caller, entries));
    store::AuditEntry audit = Audit(caller, "directory.imported", "directory", "", "",
                                    {{"subjects", counts[0]}, {"resources", counts[1]}});
    RETURN_IF_ERROR(store_->PutDirectoryEntries(entries, &audit));
    WriteJson(res, 200, {{"subjects", counts[0]}, {"resources", counts[1]}});
    return Status();
  });
}

}  // namespace warden::server
