// Service-account policy documents: YAML/JSON forms, copies, and compilation against a snapshot.
#include <algorithm>
#include <iterator>
#include <tuple>

#include <yaml-cpp/yaml.h>

#include "engine/compiler.h"
#include "engine/engine.h"

namespace warden::engine {

namespace {

std::string_view CopiedFromJsonName(CopiedFromKind kind) {
  switch (kind) {
    case CopiedFromKind::kScratch: return "scratch";
    case CopiedFromKind::kRole: return "role";
    case CopiedFromKind::kServiceAccount: return "service_account";
  }
  return "scratch";
}

void EmitFlowList(YAML::Emitter& out, const std::vector<std::string>& items) {
  out << YAML::Flow << YAML::BeginSeq;
  for (const std::string& s : items) out << s;
  out << YAML::EndSeq;
}

// "*" entries expanded from the catalog, so that a copy stays what it was when copied even
// if the catalog later gains models or actions.
std::vector<std::pair<std::string, std::vector<std::string>>> ExpandPermissions(
    const Catalog& catalog, const std::vector<std::pair<std::string, std::vector<std::string>>>& in) {
  std::vector<std::pair<std::string, std::vector<std::string>>> out;
  auto add = [&](const ModelDecl& model, const std::string& action) {
    auto it = std::find_if(out.begin(), out.end(), [&](const auto& e) { return e.first == model.name; });
    if (it == out.end()) {
      out.emplace_back(model.name, std::vector<std::string>{});
      it = out.end() - 1;
    }
    auto add_one = [&](const std::string& a) {
      if (std::find(it->second.begin(), it->second.end(), a) == it->second.end()) it->second.push_back(a);
    };
    if (action == "*") {
      for (const std::string& a : model.actions) add_one(a);
    } else if (std::find(model.actions.begin(), model.actions.end(), action) != model.actions.end()) {
      add_one(action);
    }
  };
  for (const auto& [model, actions] : in) {
    for (const ModelDecl& decl : catalog.models()) {
      if (model != "*" && model != decl.name) continue;
      for (const std::string& a : actions) add(decl, a);
    }
  }
  std::erase_if(out, [](const auto& e) { return e.second.empty(); });
  return out;
}

}  // namespace

std::string EmitPolicyYaml(const PolicyDoc& doc) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "apiVersion" << YAML::Value << "warden/v1";
  out << YAML::Key << "kind" << YAML::Value << "ServiceAccountPolicy";
  if (!doc.account.empty()) out << YAML::Key << "account" << YAML::Value << doc.account;
  if (!doc.description.empty()) out << YAML::Key << "description" << YAML::Value << doc.description;
  out << YAML::Key << "copiedFrom" << YAML::Value << YAML::Flow << YAML::BeginMap;
  out << YAML::Key << "kind" << YAML::Value << std::string(CopiedFromKindName(doc.copied_from_kind));
  if (!doc.copied_from_name.empty()) out << YAML::Key << "name" << YAML::Value << doc.copied_from_name;
  if (!doc.copied_from_revision.empty()) {
    out << YAML::Key << "revision" << YAML::Value << doc.copied_from_revision;
  }
  out << YAML::EndMap;
  out << YAML::Key << "permissions" << YAML::Value;
  if (doc.permissions.empty()) {
    out << YAML::Flow << YAML::BeginMap << YAML::EndMap;
  } else {
    out << YAML::BeginMap;
    for (const auto& [model, actions] : doc.permissions) {
      out << YAML::Key << model << YAML::Value;
      EmitFlowList(out, actions);
    }
    out << YAML::EndMap;
  }
  if (!doc.rules.empty()) {
    out << YAML::Key << "rules" << YAML::Value << YAML::BeginSeq;
    for (const RuleDoc& r : doc.rules) {
      out << YAML::BeginMap;
      out << YAML::Key << "name" << YAML::Value << r.name;
      out << YAML::Key << "effect" << YAML::Value << r.effect;
      out << YAML::Key << "models" << YAML::Value;
      EmitFlowList(out, r.models);
      out << YAML::Key << "actions" << YAML::Value;
      EmitFlowList(out, r.actions);
      if (!r.when.empty()) out << YAML::Key << "when" << YAML::Value << YAML::DoubleQuoted << r.when;
      out << YAML::EndMap;
    }
    out << YAML::EndSeq;
  }
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

namespace {

// Every node of the document with the field path it stands for, in document order.
void CollectFields(const YAML::Node& node, const std::string& path, int depth,
                   std::vector<std::pair<YAML::Mark, std::string>>* out) {
  if (depth > 16) return;  // emitted documents are four levels deep
  out->emplace_back(node.Mark(), path);
  if (node.IsMap()) {
    for (const auto& kv : node) {
      std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "?";
      if (depth == 0 && key == "copiedFrom") key = "copied_from";  // the JSON name
      const std::string child = path.empty() ? key : path + "." + key;
      out->emplace_back(kv.first.Mark(), child);
      CollectFields(kv.second, child, depth + 1, out);
    }
  } else if (node.IsSequence()) {
    for (size_t i = 0; i < node.size(); ++i) {
      CollectFields(node[i], path + "[" + std::to_string(i) + "]", depth + 1, out);
    }
  }
}

}  // namespace

PolicyFieldIndex::PolicyFieldIndex(std::string_view yaml_text) {
  std::vector<std::pair<YAML::Mark, std::string>> marks;
  try {
    CollectFields(YAML::Load(std::string(yaml_text)), "", 0, &marks);
  } catch (const YAML::Exception&) {
    return;
  }
  fields_.reserve(marks.size());
  for (auto& [mark, path] : marks) fields_.push_back(Field{mark.line + 1, mark.column + 1, std::move(path)});
  // Sorted by position, so that At is a binary search: the server asks once per error, and a
  // body with many bad entries has as many errors as fields. Stable: of two fields at one
  // position (a mapping and its first key), the later in document order wins.
  std::stable_sort(fields_.begin(), fields_.end(),
                   [](const Field& a, const Field& b) { return std::tie(a.line, a.column) < std::tie(b.line, b.column); });
}

std::string PolicyFieldIndex::At(int line, int column) const {
  // The last field at or before (line, column), if it is on that line.
  auto after = std::upper_bound(fields_.begin(), fields_.end(), std::pair{line, column},
                                [](const std::pair<int, int>& pos, const Field& f) {
                                  return pos < std::pair{f.line, f.column};
                                });
  if (after == fields_.begin() || std::prev(after)->line != line) return "";
  return std::prev(after)->path;
}

nlohmann::json PolicyDocToJson(const PolicyDoc& doc) {
  nlohmann::json permissions = nlohmann::json::object();
  for (const auto& [model, actions] : doc.permissions) permissions[model] = actions;
  nlohmann::json rules = nlohmann::json::array();
  for (const RuleDoc& r : doc.rules) {
    nlohmann::json jr{{"name", r.name}, {"effect", r.effect}, {"models", r.models}, {"actions", r.actions}};
    if (!r.when.empty()) jr["when"] = r.when;
    rules.push_back(std::move(jr));
  }
  return nlohmann::json{
      {"account", doc.account},
      {"description", doc.description},
      {"copied_from",
       {{"kind", CopiedFromJsonName(doc.copied_from_kind)},
        {"name", doc.copied_from_name},
        {"revision", doc.copied_from_revision}}},
      {"permissions", std::move(permissions)},
      {"rules", std::move(rules)},
  };
}

StatusOr<PolicyDoc> ParsePolicyDoc(std::string_view yaml_text, std::string_view file,
                                   std::vector<CompileError>* errors, bool* has_copied_from) {
  std::vector<CompileError> local;
  std::vector<CompileError>* sink = errors != nullptr ? errors : &local;
  const size_t before = sink->size();
  YamlFile yf(std::string(file), yaml_text, sink);
  PolicySource src;
  if (auto root = yf.Load()) {
    if (auto kind = ReadKind(yf, *root)) {
      if (*kind != "ServiceAccountPolicy") {
        yf.Error((*root)["kind"], "expected kind ServiceAccountPolicy, not " + *kind);
      } else {
        ParsePolicySource(yf, *root, SourceKind::kServiceAccount, &src);
      }
    }
  }
  if (sink->size() > before) {
    std::stable_sort(sink->begin() + before, sink->end(), [](const CompileError& a, const CompileError& b) {
      return std::tie(a.line, a.column) < std::tie(b.line, b.column);
    });
    return InvalidArgumentError((*sink)[before].ToString(), "permissions");
  }
  if (has_copied_from != nullptr) *has_copied_from = src.has_copied_from;
  return DocFromSource(src);
}

namespace {

// YAML carries only printable characters (YAML 1.2 c-printable: tab, LF, CR, 0x20-0x7E, NEL,
// U+00A0-U+D7FF, U+E000-U+FFFD, U+10000 and up). A JSON string with anything else (C0 and C1
// controls, DEL, U+FFFE, U+FFFF) would not come back from the stored YAML as it was sent (the
// policy_json fuzz target's round trip found U+FFFF in a condition). `s` is valid UTF-8
// (nlohmann::json checked it).
Status CheckPrintable(std::string_view s, const std::string& field) {
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    const auto next = [&](size_t k) { return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0; };
    const bool bad = (c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f ||
                     (c == 0xc2 && next(1) >= 0x80 && next(1) <= 0x9f && next(1) != 0x85) ||
                     (c == 0xef && next(1) == 0xbf && (next(2) == 0xbe || next(2) == 0xbf));
    if (bad) return InvalidArgumentError(field + " contains a control or non-character code point", field);
  }
  return Status::Ok();
}

}  // namespace

StatusOr<PolicyDoc> PolicyDocFromJson(const nlohmann::json& json) {
  PolicyDoc doc;
  if (!json.is_object()) return InvalidArgumentError("policy must be a JSON object", "permissions");
  auto string_list = [](const nlohmann::json& j, const std::string& field,
                        std::vector<std::string>* out) -> Status {
    if (!j.is_array()) return InvalidArgumentError(field + " must be an array of strings", field);
    for (const auto& item : j) {
      if (!item.is_string()) return InvalidArgumentError(field + " must be an array of strings", field);
      RETURN_IF_ERROR(CheckPrintable(item.get_ref<const std::string&>(), field));
      out->push_back(item.get<std::string>());
    }
    return Status::Ok();
  };
  auto string_field = [](const nlohmann::json& j, const std::string& field, std::string* out) -> Status {
    if (j.is_null()) return Status::Ok();
    if (!j.is_string()) return InvalidArgumentError(field + " must be a string", field);
    RETURN_IF_ERROR(CheckPrintable(j.get_ref<const std::string&>(), field));
    *out = j.get<std::string>();
    return Status::Ok();
  };
  for (const auto& [key, value] : json.items()) {
    if (key == "account") {
      RETURN_IF_ERROR(string_field(value, "account", &doc.account));
    } else if (key == "description") {
      RETURN_IF_ERROR(string_field(value, "description", &doc.description));
    } else if (key == "copied_from") {
      if (value.is_null()) continue;
      if (!value.is_object()) return InvalidArgumentError("copied_from must be an object", "copied_from");
      for (const auto& [k, v] : value.items()) {
        std::string field = "copied_from." + k;
        if (k == "kind") {
          std::string kind;
          RETURN_IF_ERROR(string_field(v, field, &kind));
          if (kind == "scratch") doc.copied_from_kind = CopiedFromKind::kScratch;
          else if (kind == "role") doc.copied_from_kind = CopiedFromKind::kRole;
          else if (kind == "service_account") doc.copied_from_kind = CopiedFromKind::kServiceAccount;
          else return InvalidArgumentError(field + " must be scratch, role or service_account", field);
        } else if (k == "name") {
          RETURN_IF_ERROR(string_field(v, field, &doc.copied_from_name));
        } else if (k == "revision") {
          RETURN_IF_ERROR(string_field(v, field, &doc.copied_from_revision));
        } else {
          return InvalidArgumentError("unknown field " + field, field);
        }
      }
    } else if (key == "permissions") {
      if (value.is_null()) continue;
      if (!value.is_object()) return InvalidArgumentError("permissions must be an object", "permissions");
      for (const auto& [model, actions] : value.items()) {
        RETURN_IF_ERROR(CheckPrintable(model, "permissions." + model));
        std::vector<std::string> list;
        RETURN_IF_ERROR(string_list(actions, "permissions." + model, &list));
        doc.permissions.emplace_back(model, std::move(list));
      }
    } else if (key == "rules") {
      if (value.is_null()) continue;
      if (!value.is_array()) return InvalidArgumentError("rules must be an array", "rules");
      for (size_t i = 0; i < value.size(); ++i) {
        const auto& jr = value[i];
        std::string prefix = "rules[" + std::to_string(i) + "]";
        if (!jr.is_object()) return InvalidArgumentError(prefix + " must be an object", prefix);
        RuleDoc r;
        for (const auto& [k, v] : jr.items()) {
          std::string field = prefix + "." + k;
          if (k == "name") RETURN_IF_ERROR(string_field(v, field, &r.name));
          else if (k == "effect") RETURN_IF_ERROR(string_field(v, field, &r.effect));
          else if (k == "when") RETURN_IF_ERROR(string_field(v, field, &r.when));
          else if (k == "models") RETURN_IF_ERROR(string_list(v, field, &r.models));
          else if (k == "actions") RETURN_IF_ERROR(string_list(v, field, &r.actions));
          else return InvalidArgumentError("unknown field " + field, field);
        }
        doc.rules.push_back(std::move(r));
      }
    } else {
      return InvalidArgumentError("unknown field " + key, key);
    }
  }
  return doc;
}

PolicyDoc ScratchPolicy(const PolicySnapshot& snapshot, std::string_view account) {
  PolicyDoc doc;
  doc.account = std::string(account);
  doc.copied_from_kind = CopiedFromKind::kScratch;
  doc.copied_from_revision = snapshot.revision();
  return doc;
}

StatusOr<PolicyDoc> CopyRolePolicy(const PolicySnapshot& snapshot, std::string_view role,
                                   std::string_view account) {
  const auto* impl = dynamic_cast<const SnapshotImpl*>(&snapshot);
  const PolicySource* src = impl != nullptr ? impl->RoleSource(role) : nullptr;
  if (src == nullptr) return NotFoundError("no role named '" + std::string(role) + "'");
  PolicyDoc doc = DocFromSource(*src);
  doc.account = std::string(account);
  doc.permissions = ExpandPermissions(snapshot.catalog(), doc.permissions);
  doc.copied_from_kind = CopiedFromKind::kRole;
  doc.copied_from_name = std::string(role);
  doc.copied_from_revision = snapshot.revision();
  return doc;
}

PolicyDoc CopyAccountPolicy(const PolicySnapshot& snapshot, const PolicyDoc& source,
                            std::string_view source_account, std::string_view account) {
  PolicyDoc doc = source;
  doc.account = std::string(account);
  doc.permissions = ExpandPermissions(snapshot.catalog(), doc.permissions);
  doc.copied_from_kind = CopiedFromKind::kServiceAccount;
  doc.copied_from_name = std::string(source_account);
  doc.copied_from_revision = snapshot.revision();
  return doc;
}

PolicyResult CompileAccountPolicy(const PolicySnapshot& snapshot, std::string_view yaml_text,
                                  std::string_view file, std::string_view account_name) {
  PolicyResult result;
  const auto* impl = dynamic_cast<const SnapshotImpl*>(&snapshot);
  if (impl == nullptr) {
    result.errors.push_back(CompileError{std::string(file), 1, 1, "snapshot was not built by this engine"});
    return result;
  }
  YamlFile yf(std::string(file), yaml_text, &result.errors);
  PolicySource src;
  std::shared_ptr<CompiledPolicy> policy;
  if (auto root = yf.Load()) {
    if (auto kind = ReadKind(yf, *root)) {
      if (*kind != "ServiceAccountPolicy") {
        yf.Error((*root)["kind"], "expected kind ServiceAccountPolicy, not " + *kind);
      } else {
        ParsePolicySource(yf, *root, SourceKind::kServiceAccount, &src);  // errors collected
        policy = BuildPolicy(impl->catalog_impl(), src, "sa:" + std::string(account_name),
                             SourceKind::kServiceAccount, /*check_catalog=*/true, yf);
      }
    }
  }
  if (!result.errors.empty()) {
    std::stable_sort(result.errors.begin(), result.errors.end(), [](const CompileError& a, const CompileError& b) {
      return std::tie(a.line, a.column) < std::tie(b.line, b.column);
    });
    return result;
  }
  result.policy = std::move(policy);
  return result;
}

}  // namespace warden::engine
