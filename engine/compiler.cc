// The policy compiler: YAML documents -> CatalogImpl, CompiledPolicy tables, SnapshotImpl.
#include "engine/compiler.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace warden::engine {

// ---------------------------------------------------------------------------------------
// Catalog

std::optional<ModelId> CatalogImpl::FindModel(std::string_view name) const {
  auto it = model_ids_.find(name);
  if (it == model_ids_.end()) return std::nullopt;
  return it->second;
}

std::optional<ActionId> CatalogImpl::FindAction(ModelId model, std::string_view name) const {
  auto it = action_ids_.find(name);
  if (it == action_ids_.end() || !Valid(model, it->second)) return std::nullopt;
  return it->second;
}

std::optional<ActionId> CatalogImpl::FindActionAnyModel(std::string_view name) const {
  auto it = action_ids_.find(name);
  if (it == action_ids_.end()) return std::nullopt;
  return it->second;
}

void CatalogImpl::Finish() {
  model_ids_.clear();
  action_ids_.clear();
  action_names_.clear();
  for (size_t m = 0; m < models_.size(); ++m) {
    model_ids_.emplace(models_[m].name, static_cast<int>(m));
    for (const std::string& a : models_[m].actions) {
      if (action_ids_.emplace(a, static_cast<int>(action_names_.size())).second) {
        action_names_.push_back(a);
      }
    }
  }
  valid_.assign(models_.size() * action_names_.size(), 0);
  attributes_.assign(models_.size(), {});
  std::string canonical;
  for (size_t m = 0; m < models_.size(); ++m) {
    canonical += models_[m].name + ":";
    for (const std::string& a : models_[m].actions) {
      valid_[m * action_names_.size() + action_ids_.at(a)] = 1;
      canonical += a + ",";
    }
    for (const AttributeDecl& attr : models_[m].attributes) {
      attributes_[m].emplace_back(attr.name, ParseValueType(attr.type).value_or(ValueType::kDynamic));
    }
    canonical += ";";
  }
  // FNV-1a of the model/action layout: a CompiledPolicy built against another layout is refused.
  uint64_t h = 1469598103934665603ull;
  for (char c : canonical) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  fingerprint_ = h;
}

namespace {

constexpr std::string_view kApiVersion = "warden/v1";

bool ParseCatalog(YamlFile& yf, const YAML::Node& root, CatalogImpl* out) {
  size_t before_errors = 0;  // errors are counted by the caller through the sink
  (void)before_errors;
  bool ok = true;
  auto fields = yf.Fields(root, "Catalog", {"apiVersion", "kind", "models", "analytics", "subjects"});
  if (!fields) return false;
  const YAML::Node* models = FindField(*fields, "models");
  if (models == nullptr) {
    yf.Error(root, "Catalog needs 'models'");
    return false;
  }
  auto entries = yf.Entries(*models, "models");
  if (!entries) return false;
  if (entries->empty()) {
    yf.Error(*models, "models must not be empty");
    ok = false;
  }
  for (const auto& e : *entries) {
    ModelDecl decl;
    decl.name = e.key;
    if (e.key.empty() || e.key == "*") {
      yf.Error(e.key_node, "invalid model name '" + e.key + "'");
      ok = false;
      continue;
    }
    auto mf = yf.Fields(e.value, "model '" + e.key + "'", {"actions", "attributes"});
    if (!mf) {
      ok = false;
      continue;
    }
    const YAML::Node* actions = FindField(*mf, "actions");
    if (actions == nullptr) {
      yf.Error(e.value, "model '" + e.key + "' needs 'actions'");
      ok = false;
      continue;
    }
    auto list = yf.ScalarList(*actions, "actions", /*allow_empty=*/false);
    if (!list) {
      ok = false;
      continue;
    }
    std::set<std::string> seen;
    for (const ScalarRef& a : *list) {
      if (a.value.empty() || a.value == "*") {
        yf.Error(a.pos, "invalid action name '" + a.value + "'");
        ok = false;
      } else if (!seen.insert(a.value).second) {
        yf.Error(a.pos, "duplicate action '" + a.value + "' in model '" + e.key + "'");
        ok = false;
      } else {
        decl.actions.push_back(a.value);
      }
    }
    if (const YAML::Node* attrs = FindField(*mf, "attributes")) {
      auto ae = yf.Entries(*attrs, "attributes");
      if (!ae) {
        ok = false;
      } else {
        for (const auto& a : *ae) {
          auto type = yf.Scalar(a.value, "attribute type");
          if (!type) {
            ok = false;
            continue;
          }
          if (!ParseValueType(type->value)) {
            yf.Error(type->pos, "unknown attribute type '" + type->value +
                                    "' (expected string, number, bool or list)");
            ok = false;
            continue;
          }
          decl.attributes.push_back(AttributeDecl{a.key, type->value});
        }
      }
    }
    out->models_.push_back(std::move(decl));
  }
  std::vector<ScalarRef> analytics;
  if (const YAML::Node* an = FindField(*fields, "analytics")) {
    auto list = yf.ScalarList(*an, "analytics", /*allow_empty=*/true);
    if (!list) {
      ok = false;
    } else {
      analytics = std::move(*list);
    }
  }
  // AuthZEN subject types the directory resolves (DESIGN.md 6.1); service_account is built in.
  if (const YAML::Node* sn = FindField(*fields, "subjects")) {
    if (auto list = yf.ScalarList(*sn, "subjects", /*allow_empty=*/true); !list) {
      ok = false;
    } else {
      std::set<std::string> seen_types;
      for (const ScalarRef& t : *list) {
        if (t.value.empty() || t.value == "*" || t.value == "service_account") {
          yf.Error(t.pos, "invalid subject type '" + t.value + "'");
          ok = false;
        } else if (seen_types.insert(t.value).second) {
          out->subject_types_.push_back(t.value);
        }
      }
    }
  }
  out->Finish();
  std::set<std::string> seen;
  for (const ScalarRef& a : analytics) {
    auto m = out->FindModel(a.value);
    if (!m) {
      yf.Error(a.pos, "unknown model '" + a.value + "' in analytics");
      ok = false;
    } else if (!out->FindAction(*m, "create")) {
      yf.Error(a.pos, "analytics model '" + a.value + "' has no 'create' action");
      ok = false;
    } else if (seen.insert(a.value).second) {
      out->analytics_.push_back(a.value);
    }
  }
  return ok;
}

bool ParseRule(YamlFile& yf, const YAML::Node& node, RuleSource* out) {
  auto fields = yf.Fields(node, "a rule", {"name", "effect", "models", "actions", "when"});
  if (!fields) return false;
  out->pos = yf.PosOf(node);
  bool ok = true;
  auto required = [&](std::string_view key) -> const YAML::Node* {
    const YAML::Node* n = FindField(*fields, key);
    if (n == nullptr) {
      yf.Error(node, "rule needs '" + std::string(key) + "'");
      ok = false;
    }
    return n;
  };
  if (const YAML::Node* n = required("name")) {
    if (auto s = yf.Scalar(*n, "name")) {
      out->name = *s;
      if (s->value.empty() || s->value.find('#') != std::string::npos ||
          s->value.rfind("perm:", 0) == 0) {
        yf.Error(s->pos, "invalid rule name '" + s->value + "' (must be non-empty, without '#', not starting with 'perm:')");
        ok = false;
      }
    } else {
      ok = false;
    }
  }
  if (const YAML::Node* n = required("effect")) {
    if (auto s = yf.Scalar(*n, "effect")) {
      out->effect = *s;
      if (s->value != "allow" && s->value != "deny") {
        yf.Error(s->pos, "effect must be 'allow' or 'deny', not '" + s->value + "'");
        ok = false;
      }
    } else {
      ok = false;
    }
  }
  if (const YAML::Node* n = required("models")) {
    if (auto l = yf.ScalarList(*n, "models", false)) out->models = std::move(*l); else ok = false;
  }
  if (const YAML::Node* n = required("actions")) {
    if (auto l = yf.ScalarList(*n, "actions", false)) out->actions = std::move(*l); else ok = false;
  }
  if (const YAML::Node* n = FindField(*fields, "when")) {
    if (auto s = yf.Scalar(*n, "when")) out->when = *s; else ok = false;
  }
  return ok;
}

bool ParsePermissions(YamlFile& yf, const YAML::Node& node, std::vector<PermissionSource>* out) {
  if (node.IsNull()) return true;
  auto entries = yf.Entries(node, "permissions");
  if (!entries) return false;
  bool ok = true;
  for (const auto& e : *entries) {
    PermissionSource p;
    auto model = yf.Scalar(e.key_node, "model");
    if (!model) {
      ok = false;
      continue;
    }
    p.model = *model;
    auto list = yf.ScalarList(e.value, "actions of '" + e.key + "'", /*allow_empty=*/false);
    if (!list) {
      ok = false;
      continue;
    }
    p.actions = std::move(*list);
    out->push_back(std::move(p));
  }
  return ok;
}

}  // namespace

std::optional<std::string> ReadKind(YamlFile& yf, const YAML::Node& root) {
  bool ok = true;
  const YAML::Node api = root["apiVersion"];
  if (!api) {
    yf.Error(root, "missing apiVersion (expected 'warden/v1')");
    ok = false;
  } else if (!api.IsScalar() || api.Scalar() != kApiVersion) {
    yf.Error(api, "apiVersion must be 'warden/v1'" +
                      (api.IsScalar() ? ", not '" + api.Scalar() + "'" : std::string()));
    ok = false;
  }
  const YAML::Node kind = root["kind"];
  if (!kind) {
    yf.Error(root, "missing kind");
    return std::nullopt;
  }
  if (!kind.IsScalar()) {
    yf.Error(kind, "kind must be a string");
    return std::nullopt;
  }
  std::string k = kind.Scalar();
  if (k != "Catalog" && k != "Role" && k != "ServiceAccountPolicy" && k != "Guardrail" &&
      k != "PolicyTest" && k != "Routes") {
    yf.Error(kind, "unknown kind '" + k +
                       "' (expected Catalog, Role, ServiceAccountPolicy, Guardrail, PolicyTest or Routes)");
    return std::nullopt;
  }
  (void)ok;  // a wrong apiVersion is reported; the document is still checked for other errors
  return k;
}

std::string_view CopiedFromKindName(CopiedFromKind kind) {
  switch (kind) {
    case CopiedFromKind::kScratch: return "Scratch";
    case CopiedFromKind::kRole: return "Role";
    case CopiedFromKind::kServiceAccount: return "ServiceAccount";
  }
  return "Scratch";
}

bool ParsePolicySource(YamlFile& yf, const YAML::Node& root, SourceKind kind, PolicySource* out) {
  out->file = yf.file();
  out->pos = yf.PosOf(root);
  std::optional<std::vector<YamlFile::Field>> fields;
  switch (kind) {
    case SourceKind::kRole:
      fields = yf.Fields(root, "Role", {"apiVersion", "kind", "name", "description", "permissions", "rules"});
      break;
    case SourceKind::kServiceAccount:
      fields = yf.Fields(root, "ServiceAccountPolicy",
                         {"apiVersion", "kind", "account", "description", "copiedFrom", "permissions", "rules"});
      break;
    case SourceKind::kGuardrail:
      fields = yf.Fields(root, "Guardrail", {"apiVersion", "kind", "name", "description", "appliesTo", "rules"});
      break;
  }
  if (!fields) return false;
  bool ok = true;
  const char* name_key = kind == SourceKind::kServiceAccount ? "account" : "name";
  if (const YAML::Node* n = FindField(*fields, name_key)) {
    if (auto s = yf.Scalar(*n, name_key)) {
      out->name = *s;
      if (s->value.empty() || s->value.find('#') != std::string::npos) {
        yf.Error(s->pos, std::string("invalid ") + name_key + " '" + s->value + "'");
        ok = false;
      }
    } else {
      ok = false;
    }
  } else if (kind != SourceKind::kServiceAccount) {
    yf.Error(root, std::string(kind == SourceKind::kRole ? "Role" : "Guardrail") + " needs 'name'");
    ok = false;
  }
  if (const YAML::Node* n = FindField(*fields, "description")) {
    if (auto s = yf.Scalar(*n, "description")) out->description = s->value; else ok = false;
  }
  if (const YAML::Node* n = FindField(*fields, "permissions")) {
    ok = ParsePermissions(yf, *n, &out->permissions) && ok;
  }
  if (const YAML::Node* n = FindField(*fields, "rules")) {
    if (!n->IsNull()) {
      if (!n->IsSequence()) {
        yf.Error(*n, "rules must be a list");
        ok = false;
      } else {
        for (const auto& item : *n) {
          RuleSource r;
          if (ParseRule(yf, item, &r)) out->rules.push_back(std::move(r)); else ok = false;
        }
      }
    }
  }
  if (const YAML::Node* n = FindField(*fields, "copiedFrom")) {
    out->has_copied_from = true;
    auto cf = yf.Fields(*n, "copiedFrom", {"kind", "name", "revision"});
    if (!cf) {
      ok = false;
    } else {
      if (const YAML::Node* k = FindField(*cf, "kind")) {
        if (auto s = yf.Scalar(*k, "copiedFrom.kind")) {
          if (s->value == "Scratch") out->copied_from_kind = CopiedFromKind::kScratch;
          else if (s->value == "Role") out->copied_from_kind = CopiedFromKind::kRole;
          else if (s->value == "ServiceAccount") out->copied_from_kind = CopiedFromKind::kServiceAccount;
          else {
            yf.Error(s->pos, "copiedFrom.kind must be Scratch, Role or ServiceAccount, not '" + s->value + "'");
            ok = false;
          }
        } else {
          ok = false;
        }
      }
      if (const YAML::Node* v = FindField(*cf, "name")) {
        if (auto s = yf.Scalar(*v, "copiedFrom.name")) out->copied_from_name = s->value; else ok = false;
      }
      if (const YAML::Node* v = FindField(*cf, "revision")) {
        if (auto s = yf.Scalar(*v, "copiedFrom.revision")) out->copied_from_revision = s->value; else ok = false;
      }
    }
  }
  if (kind == SourceKind::kGuardrail) {
    const YAML::Node* n = FindField(*fields, "appliesTo");
    if (n == nullptr) {
      yf.Error(root, "Guardrail needs 'appliesTo'");
      ok = false;
    } else if (auto list = yf.ScalarList(*n, "appliesTo", /*allow_empty=*/false)) {
      for (const ScalarRef& s : *list) {
        if (s.value == "user") out->applies_to |= 1 << static_cast<int>(PrincipalType::kUser);
        else if (s.value == "service_account") out->applies_to |= 1 << static_cast<int>(PrincipalType::kServiceAccount);
        else if (s.value == "tenant") out->applies_to |= 1 << static_cast<int>(PrincipalType::kTenant);
        else {
          yf.Error(s.pos, "appliesTo entries must be service_account, user or tenant, not '" + s.value + "'");
          ok = false;
        }
      }
    } else {
      ok = false;
    }
  }
  return ok;
}

void CompiledPolicy::Finish(const std::vector<CellBuilder>& builders, const std::vector<std::string>& ids) {
  size_t text = 0;
  for (const auto& id : ids) text += id.size();
  rule_text_.reserve(text);
  for (const auto& id : ids) rule_text_ += id;
  rule_ids.clear();
  rule_ids.reserve(ids.size());
  size_t at = 0;
  for (const auto& id : ids) {
    rule_ids.emplace_back(rule_text_.data() + at, id.size());
    at += id.size();
  }
  auto empty = [](const CellBuilder& b) { return b.allow < 0 && b.deny < 0 && b.allows.empty() && b.denies.empty(); };
  size_t used = 0, conditional = 0;
  for (const CellBuilder& b : builders) {
    used += empty(b) ? 0 : 1;
    conditional += b.allows.size() + b.denies.size();
  }
  cells_.reserve(used);
  conditional_.reserve(conditional);
  for (size_t key = 0; key < builders.size(); ++key) {
    const CellBuilder& b = builders[key];
    if (empty(b)) continue;
    Cell c;
    c.allow = b.allow;
    c.deny = b.deny;
    c.cond_begin = static_cast<uint32_t>(conditional_.size());
    c.n_allow = static_cast<uint16_t>(b.allows.size());
    c.n_deny = static_cast<uint16_t>(b.denies.size());
    conditional_.insert(conditional_.end(), b.allows.begin(), b.allows.end());
    conditional_.insert(conditional_.end(), b.denies.begin(), b.denies.end());
    cells_.push_back({static_cast<uint32_t>(key), c});
  }
}

std::shared_ptr<CompiledPolicy> BuildPolicy(const CatalogImpl& catalog, const PolicySource& source,
                                            std::string prefix, SourceKind kind, bool check_catalog,
                                            YamlFile& yf) {
  auto p = std::make_shared<CompiledPolicy>();
  p->name = prefix;
  p->catalog_fingerprint = catalog.fingerprint();
  p->num_models = catalog.num_models();
  p->num_actions = catalog.num_actions();
  std::vector<CellBuilder> cells(static_cast<size_t>(p->num_models) * p->num_actions);
  std::vector<std::string> ids;
  p->applies_to = source.applies_to;
  bool ok = true;
  std::map<std::string, int> rule_index;
  auto rule_id = [&](const std::string& id) {
    auto [it, inserted] = rule_index.emplace(id, static_cast<int>(ids.size()));
    if (inserted) ids.push_back(id);
    return it->second;
  };
  auto cell = [&](ModelId m, ActionId a) -> CellBuilder& {
    return cells[static_cast<size_t>(m) * p->num_actions + a];
  };
  const int num_models = catalog.num_models();

  // permissions: each entry is the allow rule "perm:<model>"
  for (const PermissionSource& perm : source.permissions) {
    std::vector<ModelId> models;
    bool wildcard_model = perm.model.value == "*";
    if (!check_catalog) continue;
    if (wildcard_model) {
      for (int m = 0; m < num_models; ++m) models.push_back(m);
    } else if (auto m = catalog.FindModel(perm.model.value)) {
      models.push_back(*m);
    } else {
      yf.Error(perm.model.pos, "unknown model '" + perm.model.value + "'");
      ok = false;
      continue;
    }
    for (const ScalarRef& a : perm.actions) {
      bool any = false;
      for (ModelId m : models) {
        const ModelDecl& decl = catalog.models()[m];
        int r = rule_id(prefix + "#perm:" + decl.name);
        if (a.value == "*") {
          for (const std::string& name : decl.actions) {
            CellBuilder& c = cell(m, *catalog.FindAction(m, name));
            if (c.allow < 0) c.allow = r;
          }
          any = true;
        } else if (auto id = catalog.FindAction(m, a.value)) {
          CellBuilder& c = cell(m, *id);
          if (c.allow < 0) c.allow = r;
          any = true;
        }
      }
      if (!any) {
        yf.Error(a.pos, wildcard_model ? "unknown action '" + a.value + "' (no model has it)"
                                       : "unknown action '" + a.value + "' for model '" + perm.model.value + "'");
        ok = false;
      }
    }
  }

  std::set<std::string> names;
  for (const RuleSource& rule : source.rules) {
    if (!names.insert(rule.name.value).second) {
      yf.Error(rule.name.pos, "duplicate rule name '" + rule.name.value + "'");
      ok = false;
      continue;
    }
    bool deny = rule.effect.value == "deny";
    if (kind == SourceKind::kGuardrail && !deny) {
      yf.Error(rule.effect.pos, "guardrail rules must have effect: deny");
      ok = false;
      continue;
    }
    std::vector<ModelId> models;
    bool rule_ok = true;
    if (check_catalog) {
      for (const ScalarRef& m : rule.models) {
        if (m.value == "*") {
          for (int i = 0; i < num_models; ++i) models.push_back(i);
        } else if (auto id = catalog.FindModel(m.value)) {
          models.push_back(*id);
        } else {
          yf.Error(m.pos, "unknown model '" + m.value + "'");
          rule_ok = false;
        }
      }
      std::sort(models.begin(), models.end());
      models.erase(std::unique(models.begin(), models.end()), models.end());
    }
    // The (model, action) cells of the rule: "*" = every action of each model; a named
    // action applies to the rule's models that have it, and must exist in at least one.
    std::vector<std::pair<ModelId, ActionId>> targets;
    if (check_catalog && rule_ok) {
      for (const ScalarRef& a : rule.actions) {
        bool any = false;
        for (ModelId m : models) {
          if (a.value == "*") {
            for (const std::string& name : catalog.models()[m].actions) {
              targets.emplace_back(m, *catalog.FindAction(m, name));
            }
            any = true;
          } else if (auto id = catalog.FindAction(m, a.value)) {
            targets.emplace_back(m, *id);
            any = true;
          }
        }
        if (!any) {
          std::string where = models.size() == 1 ? "for model '" + catalog.models()[models[0]].name + "'"
                                                 : "(none of the rule's models has it)";
          yf.Error(a.pos, "unknown action '" + a.value + "' " + where);
          rule_ok = false;
        }
      }
      std::sort(targets.begin(), targets.end());
      targets.erase(std::unique(targets.begin(), targets.end()), targets.end());
    }
    const Condition* condition = nullptr;
    if (rule.when) {
      ConditionScope scope;
      scope.resource_closed = check_catalog && !models.empty();
      for (ModelId m : models) {
        const auto& attrs = catalog.Attributes(m);
        if (attrs.empty()) scope.resource_closed = false;
        for (const auto& [name, type] : attrs) {
          auto it = std::find_if(scope.resource_attributes.begin(), scope.resource_attributes.end(),
                                 [&key = name](const auto& e) { return e.first == key; });
          if (it == scope.resource_attributes.end()) {
            scope.resource_attributes.emplace_back(name, type);
          } else if (it->second != type) {
            it->second = ValueType::kDynamic;
          }
        }
      }
      ConditionError err;
      auto c = Condition::Compile(rule.when->value, scope, &err);
      if (!c) {
        yf.Error(yf.PosIn(*rule.when, err.offset), "invalid condition: " + err.message);
        rule_ok = false;
      } else {
        condition = c.get();
        p->conditions.push_back(std::move(c));
      }
    }
    if (!rule_ok) {
      ok = false;
      continue;
    }
    int r = rule_id(prefix + "#" + rule.name.value);
    for (auto [m, a] : targets) {
      CellBuilder& c = cell(m, a);
      if (condition == nullptr) {
        int& slot = deny ? c.deny : c.allow;
        if (slot < 0) slot = r;
      } else {
        (deny ? c.denies : c.allows).push_back(RuleRef{r, condition});
      }
    }
  }
  if (!ok || !check_catalog) return nullptr;
  p->Finish(cells, ids);
  return p;
}

PolicyDoc DocFromSource(const PolicySource& source) {
  PolicyDoc doc;
  doc.account = source.name.value;
  doc.description = source.description;
  doc.copied_from_kind = source.copied_from_kind;
  doc.copied_from_name = source.copied_from_name;
  doc.copied_from_revision = source.copied_from_revision;
  for (const PermissionSource& p : source.permissions) {
    std::vector<std::string> actions;
    for (const ScalarRef& a : p.actions) actions.push_back(a.value);
    doc.permissions.emplace_back(p.model.value, std::move(actions));
  }
  for (const RuleSource& r : source.rules) {
    RuleDoc rd;
    rd.name = r.name.value;
    rd.effect = r.effect.value;
    for (const ScalarRef& m : r.models) rd.models.push_back(m.value);
    for (const ScalarRef& a : r.actions) rd.actions.push_back(a.value);
    if (r.when) rd.when = r.when->value;
    doc.rules.push_back(std::move(rd));
  }
  return doc;
}

bool YamlToAttributes(YamlFile& yf, const YAML::Node& node, std::string_view what, Attributes* out) {
  if (node.IsNull()) return true;
  auto entries = yf.Entries(node, what);
  if (!entries) return false;
  bool ok = true;
  for (const auto& e : *entries) {
    const YAML::Node& v = e.value;
    auto add = [&](Value value) {  // the bounds of attributes from outside (engine.h)
      Status added = out->Add(e.key, std::move(value), what);
      if (!added.ok()) {
        yf.Error(e.key_node, added.message());
        ok = false;
      }
      return added.ok() || out->size() < kMaxAttributes;  // a full bag: one error, not one per key
    };
    if (v.IsNull()) continue;
    if (v.IsScalar()) {
      const std::string& s = v.Scalar();
      bool quoted = v.Tag() == "!";
      double num = 0;
      auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), num);
      if (!quoted && (s == "true" || s == "false")) {
        if (!add(s == "true")) return false;
      } else if (!quoted && !s.empty() && ec == std::errc() && ptr == s.data() + s.size()) {
        if (!add(num)) return false;
      } else {
        if (!add(s)) return false;
      }
    } else if (v.IsSequence()) {
      std::vector<std::string> list;
      for (const auto& item : v) {
        if (!item.IsScalar()) {
          yf.Error(item, "list attributes hold strings only");
          ok = false;
          continue;
        }
        list.push_back(item.Scalar());
      }
      if (!add(std::move(list))) return false;
    } else {
      yf.Error(v, "attribute '" + e.key + "' must be a string, number, bool or list of strings");
      ok = false;
    }
  }
  return ok;
}

// ---------------------------------------------------------------------------------------
// Snapshot

const CompiledPolicy* SnapshotImpl::FindRole(std::string_view name) const {
  auto it = roles_.find(name);
  return it == roles_.end() ? nullptr : it->second.get();
}

std::vector<std::string> SnapshotImpl::RoleNames() const {
  std::vector<std::string> names;
  for (const auto& [name, _] : roles_) names.push_back(name);
  return names;
}

const PolicySource* SnapshotImpl::RoleSource(std::string_view name) const {
  auto it = role_sources_.find(name);
  return it == role_sources_.end() ? nullptr : &it->second;
}

std::optional<nlohmann::json> SnapshotImpl::RoleJson(std::string_view name) const {
  const PolicySource* src = RoleSource(name);
  if (src == nullptr) return std::nullopt;
  PolicyDoc doc = DocFromSource(*src);
  nlohmann::json j = PolicyDocToJson(doc);
  nlohmann::json out;
  out["name"] = src->name.value;
  out["description"] = src->description;
  out["permissions"] = j["permissions"];
  out["rules"] = j["rules"];
  return out;
}

namespace {

// The deciding deny rule of `c`, or -1. A condition that cannot be evaluated matches.
inline int MatchDeny(const CompiledPolicy& p, const Cell& c, const Principal& principal,
                     const Attributes& resource, const Attributes& context, bool* eval_error) {
  if (c.deny >= 0) return c.deny;
  for (const RuleRef& r : p.Denies(c)) {
    EvalResult v = r.condition->Evaluate(principal, resource, context);
    if (v == EvalResult::kTrue) return r.rule;
    if (v == EvalResult::kError) {
      *eval_error = true;
      return r.rule;
    }
  }
  return -1;
}

// The deciding allow rule of `c`, or -1. A condition that cannot be evaluated does not match.
inline int MatchAllow(const CompiledPolicy& p, const Cell& c, const Principal& principal,
                      const Attributes& resource, const Attributes& context, bool* eval_error) {
  if (c.allow >= 0) return c.allow;
  for (const RuleRef& r : p.Allows(c)) {
    EvalResult v = r.condition->Evaluate(principal, resource, context);
    if (v == EvalResult::kTrue) return r.rule;
    if (v == EvalResult::kError) *eval_error = true;
  }
  return -1;
}

}  // namespace

Decision SnapshotImpl::Evaluate(const Principal& principal,
                                std::span<const CompiledPolicy* const> policies,
                                std::string_view model, std::string_view action,
                                const Attributes& resource, const Attributes& context) const {
  std::optional<ModelId> m = catalog_->FindModel(model);
  if (!m) return Decision{false, Reason::kUnknownModel, {}, false};
  std::optional<ActionId> a = catalog_->FindAction(*m, action);
  if (!a) return Decision{false, Reason::kUnknownAction, {}, false};
  return Evaluate(principal, policies, *m, *a, resource, context);
}

Decision SnapshotImpl::Evaluate(const Principal& principal,
                                std::span<const CompiledPolicy* const> policies, ModelId model,
                                ActionId action, const Attributes& resource,
                                const Attributes& context) const {
  Decision d;
  if (model < 0 || model >= catalog_->num_models()) {
    d.reason = Reason::kUnknownModel;
    return d;
  }
  if (!catalog_->Valid(model, action)) {
    d.reason = Reason::kUnknownAction;
    return d;
  }
  const uint64_t fingerprint = catalog_->fingerprint();
  bool eval_error = false;
  const int type = static_cast<int>(principal.type);
  if (type >= 0 && type < 3) {
    for (const CompiledPolicy* g : guardrails_by_type_[type]) {
      int r = MatchDeny(*g, g->CellAt(model, action), principal, resource, context, &eval_error);
      if (r >= 0) return Decision{false, Reason::kGuardrailDeny, g->rule_ids[r], eval_error};
    }
  }
  for (const CompiledPolicy* p : policies) {
    if (p == nullptr) continue;
    if (p->catalog_fingerprint != fingerprint) {
      // Compiled against another catalog layout: its ids mean nothing here. Fail closed.
      eval_error = true;
      continue;
    }
    int r = MatchDeny(*p, p->CellAt(model, action), principal, resource, context, &eval_error);
    if (r >= 0) return Decision{false, Reason::kDenyRule, p->rule_ids[r], eval_error};
  }
  for (const CompiledPolicy* p : policies) {
    if (p == nullptr || p->catalog_fingerprint != fingerprint) continue;
    int r = MatchAllow(*p, p->CellAt(model, action), principal, resource, context, &eval_error);
    if (r >= 0) return Decision{true, Reason::kAllowRule, p->rule_ids[r], eval_error};
  }
  d.reason = Reason::kNoMatchingAllow;
  d.eval_error = eval_error;
  return d;
}

namespace {

// Everything that decides one (model, action) cell for one principal: guardrail denies of its
// type, then its policies' rules (foreign-catalog policies grant nothing, as in Evaluate).
struct CellRules {
  bool allow = false;  // an unconditional allow
  bool deny = false;   // an unconditional deny (guardrail or policy)
  std::vector<const Condition*> allows;
  std::vector<const Condition*> denies;
};

// True when some condition of `pool` has the text of `c` and neither reads the principal:
// then both match exactly the same requests, whoever asks.
bool SameCondition(const Condition* c, const std::vector<const Condition*>& pool) {
  if (c->reads_principal()) return false;
  return std::any_of(pool.begin(), pool.end(), [c](const Condition* o) { return o->text() == c->text(); });
}

}  // namespace

std::vector<Escalation> SnapshotImpl::Escalations(const Grant& caller, const Grant& target) const {
  const uint64_t fingerprint = catalog_->fingerprint();
  auto rules_of = [&](const Grant& g, ModelId m, ActionId a) {
    CellRules out;
    const int type = static_cast<int>(g.type);
    if (type >= 0 && type < 3) {
      for (const CompiledPolicy* p : guardrails_by_type_[type]) {
        const Cell& c = p->CellAt(m, a);
        if (c.deny >= 0) out.deny = true;
        for (const RuleRef& r : p->Denies(c)) out.denies.push_back(r.condition);
      }
    }
    for (const CompiledPolicy* p : g.policies) {
      if (p == nullptr || p->catalog_fingerprint != fingerprint) continue;
      const Cell& c = p->CellAt(m, a);
      if (c.allow >= 0) out.allow = true;
      if (c.deny >= 0) out.deny = true;
      for (const RuleRef& r : p->Allows(c)) out.allows.push_back(r.condition);
      for (const RuleRef& r : p->Denies(c)) out.denies.push_back(r.condition);
    }
    return out;
  };
  std::vector<Escalation> out;
  for (ModelId m = 0; m < catalog_->num_models(); ++m) {
    for (ActionId a = 0; a < catalog_->num_actions(); ++a) {
      if (!catalog_->Valid(m, a)) continue;
      const CellRules t = rules_of(target, m, a);
      if (t.deny || (!t.allow && t.allows.empty())) continue;  // the target is never allowed
      const CellRules c = rules_of(caller, m, a);
      Escalation e{catalog_->models()[m].name, catalog_->ActionName(a), false};
      if (c.deny || (!c.allow && c.allows.empty())) {  // the caller is never allowed
        out.push_back(std::move(e));
        continue;
      }
      // Target allowed => caller allowed holds when every way the target is allowed is a way
      // the caller is allowed, and every way the caller is denied denies the target too.
      bool covered = c.allow || (!t.allow && std::all_of(t.allows.begin(), t.allows.end(), [&](const Condition* x) {
                                   return SameCondition(x, c.allows);
                                 }));
      covered = covered && std::all_of(c.denies.begin(), c.denies.end(), [&](const Condition* x) {
                  return SameCondition(x, t.denies);
                });
      if (!covered) {
        e.undecidable = true;
        out.push_back(std::move(e));
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Tree compilation

namespace {

// "a/b/../c/./d" -> "a/c/d"; nullopt when it climbs above the root.
std::optional<std::string> NormalizePath(std::string_view path) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    std::string_view seg = path.substr(i, j - i);
    if (seg == "..") {
      if (parts.empty()) return std::nullopt;
      parts.pop_back();
    } else if (!seg.empty() && seg != ".") {
      parts.emplace_back(seg);
    }
    i = j + 1;
  }
  std::string out;
  for (const std::string& p : parts) {
    if (!out.empty()) out += '/';
    out += p;
  }
  return out;
}

bool ParseTestSuite(YamlFile& yf, const YAML::Node& root, TestSuite* out) {
  auto fields = yf.Fields(root, "PolicyTest", {"apiVersion", "kind", "name", "description", "principals", "cases"});
  if (!fields) return false;
  bool ok = true;
  out->file = yf.file();
  if (const YAML::Node* n = FindField(*fields, "name")) {
    if (auto s = yf.Scalar(*n, "name")) out->name = s->value; else ok = false;
  } else {
    yf.Error(root, "PolicyTest needs 'name'");
    ok = false;
  }
  if (const YAML::Node* n = FindField(*fields, "description")) {
    if (!yf.Scalar(*n, "description")) ok = false;
  }
  const YAML::Node* principals = FindField(*fields, "principals");
  if (principals == nullptr) {
    yf.Error(root, "PolicyTest needs 'principals'");
    return false;
  }
  auto entries = yf.Entries(*principals, "principals");
  if (!entries) return false;
  for (const auto& e : *entries) {
    TestPrincipal tp;
    tp.key = e.key;
    tp.principal.id = e.key;
    tp.principal.name = e.key;
    auto pf = yf.Fields(e.value, "principal '" + e.key + "'", {"role", "roles", "id", "name", "attributes", "policyFile"});
    if (!pf) {
      ok = false;
      continue;
    }
    const YAML::Node* role = FindField(*pf, "role");
    const YAML::Node* roles = FindField(*pf, "roles");
    const YAML::Node* file = FindField(*pf, "policyFile");
    int given = (role != nullptr) + (roles != nullptr) + (file != nullptr);
    if (given != 1) {
      yf.Error(e.value, "principal '" + e.key + "' needs exactly one of role, roles or policyFile");
      ok = false;
      continue;
    }
    if (role != nullptr) {
      if (auto s = yf.Scalar(*role, "role")) tp.role_refs.push_back(*s); else ok = false;
    }
    if (roles != nullptr) {
      if (auto l = yf.ScalarList(*roles, "roles", false)) tp.role_refs = std::move(*l); else ok = false;
    }
    for (const ScalarRef& r : tp.role_refs) tp.principal.roles.push_back(r.value);
    if (file != nullptr) {
      if (auto s = yf.Scalar(*file, "policyFile")) {
        tp.policy_file_ref = *s;
        tp.principal.type = PrincipalType::kServiceAccount;
      } else {
        ok = false;
      }
    }
    if (const YAML::Node* n = FindField(*pf, "id")) {
      if (auto s = yf.Scalar(*n, "id")) tp.principal.id = s->value; else ok = false;
    }
    if (const YAML::Node* n = FindField(*pf, "name")) {
      if (auto s = yf.Scalar(*n, "name")) tp.principal.name = s->value; else ok = false;
    }
    if (const YAML::Node* n = FindField(*pf, "attributes")) {
      ok = YamlToAttributes(yf, *n, "attributes", &tp.principal.attributes) && ok;
    }
    out->principals.push_back(std::move(tp));
  }
  const YAML::Node* cases = FindField(*fields, "cases");
  if (cases == nullptr) {
    yf.Error(root, "PolicyTest needs 'cases'");
    return false;
  }
  if (!cases->IsSequence()) {
    yf.Error(*cases, "cases must be a list");
    return false;
  }
  for (const auto& item : *cases) {
    TestCase tc;
    tc.pos = yf.PosOf(item);
    auto cf = yf.Fields(item, "a test case",
                        {"name", "principal", "model", "action", "resource", "context", "expect", "rule", "reason"});
    if (!cf) {
      ok = false;
      continue;
    }
    bool case_ok = true;
    auto str = [&](std::string_view key, std::string* dst, bool required) {
      const YAML::Node* n = FindField(*cf, key);
      if (n == nullptr) {
        if (required) {
          yf.Error(item, "test case needs '" + std::string(key) + "'");
          case_ok = false;
        }
        return std::optional<ScalarRef>();
      }
      auto s = yf.Scalar(*n, key);
      if (!s) {
        case_ok = false;
        return s;
      }
      *dst = s->value;
      return s;
    };
    str("name", &tc.name, false);
    auto principal = str("principal", &tc.principal, true);
    str("model", &tc.model, true);
    str("action", &tc.action, true);
    std::string expect;
    auto ex = str("expect", &expect, true);
    if (ex) {
      if (expect == "allow") tc.expect_allow = true;
      else if (expect != "deny") {
        yf.Error(ex->pos, "expect must be 'allow' or 'deny', not '" + expect + "'");
        case_ok = false;
      }
    }
    str("rule", &tc.rule, false);
    auto reason = str("reason", &tc.reason, false);
    if (reason) {
      static constexpr Reason kAll[] = {Reason::kAllowRule, Reason::kNoMatchingAllow, Reason::kDenyRule,
                                        Reason::kGuardrailDeny, Reason::kUnknownModel, Reason::kUnknownAction,
                                        Reason::kAccountDisabled, Reason::kTokenInvalid,
                                        Reason::kUnknownRoute};
      bool known = false;
      for (Reason r : kAll) known = known || ReasonName(r) == tc.reason;
      if (!known) {
        yf.Error(reason->pos, "unknown reason '" + tc.reason + "'");
        case_ok = false;
      }
    }
    if (principal) {
      bool found = false;
      for (const TestPrincipal& tp : out->principals) found = found || tp.key == tc.principal;
      if (!found) {
        yf.Error(principal->pos, "unknown principal '" + tc.principal + "' (not in principals)");
        case_ok = false;
      }
    }
    if (const YAML::Node* n = FindField(*cf, "resource")) {
      case_ok = YamlToAttributes(yf, *n, "resource", &tc.resource) && case_ok;
    }
    if (const YAML::Node* n = FindField(*cf, "context")) {
      case_ok = YamlToAttributes(yf, *n, "context", &tc.context) && case_ok;
    }
    if (case_ok) out->cases.push_back(std::move(tc)); else ok = false;
  }
  return ok;
}

struct LoadedFile {
  std::unique_ptr<YamlFile> yf;
  YAML::Node root;
  std::string kind;
  Pos kind_pos;
};

void SortErrors(std::vector<CompileError>* errors) {
  std::stable_sort(errors->begin(), errors->end(), [](const CompileError& a, const CompileError& b) {
    return std::tie(a.file, a.line, a.column) < std::tie(b.file, b.line, b.column);
  });
  errors->erase(std::unique(errors->begin(), errors->end(),
                            [](const CompileError& a, const CompileError& b) {
                              return a.file == b.file && a.line == b.line && a.column == b.column &&
                                     a.message == b.message;
                            }),
                errors->end());
}

}  // namespace

TreeResult CompileSources(const std::vector<SourceFile>& input, std::string revision) {
  TreeResult result;
  std::vector<CompileError>& errors = result.errors;
  std::vector<const SourceFile*> files;
  for (const SourceFile& f : input) files.push_back(&f);
  std::sort(files.begin(), files.end(), [](const SourceFile* a, const SourceFile* b) { return a->name < b->name; });

  std::vector<LoadedFile> loaded;
  for (const SourceFile* f : files) {
    LoadedFile lf;
    lf.yf = std::make_unique<YamlFile>(f->name, f->text, &errors);
    auto root = lf.yf->Load();
    if (!root) continue;
    auto kind = ReadKind(*lf.yf, *root);
    if (!kind) continue;
    lf.root = *root;
    lf.kind = *kind;
    lf.kind_pos = lf.yf->PosOf((*root)["kind"]);
    loaded.push_back(std::move(lf));
  }

  auto snapshot = std::make_shared<SnapshotImpl>();
  snapshot->revision_ = std::move(revision);
  snapshot->catalog_ = std::make_shared<CatalogImpl>();
  bool catalog_ok = false;
  const LoadedFile* catalog_file = nullptr;
  for (const LoadedFile& lf : loaded) {
    if (lf.kind != "Catalog") continue;
    if (catalog_file != nullptr) {
      lf.yf->Error(lf.kind_pos, "more than one Catalog (the first is " + catalog_file->yf->file() + ")");
      continue;
    }
    catalog_file = &lf;
    catalog_ok = ParseCatalog(*lf.yf, lf.root, snapshot->catalog_.get());
  }
  if (catalog_file == nullptr) {
    errors.push_back(CompileError{files.empty() ? "." : files.front()->name, 1, 1,
                                  "no Catalog in the policy tree (a file with kind: Catalog is required)"});
  }
  if (!catalog_ok) snapshot->catalog_ = std::make_shared<CatalogImpl>();
  const CatalogImpl& catalog = *snapshot->catalog_;

  std::map<std::string, std::string> guardrail_files;
  std::map<std::string, const LoadedFile*> sa_files;
  std::vector<TestSuite> suites;
  for (const LoadedFile& lf : loaded) {
    YamlFile& yf = *lf.yf;
    if (lf.kind == "Role" || lf.kind == "Guardrail" || lf.kind == "ServiceAccountPolicy") {
      SourceKind kind = lf.kind == "Role" ? SourceKind::kRole
                        : lf.kind == "Guardrail" ? SourceKind::kGuardrail
                                                 : SourceKind::kServiceAccount;
      PolicySource src;
      // On parse errors, still compile what did parse: a load reports all errors at once.
      const bool parsed = ParsePolicySource(yf, lf.root, kind, &src);
      if (!parsed && src.name.value.empty() && kind != SourceKind::kServiceAccount) continue;
      std::string name = src.name.value;
      if (kind == SourceKind::kServiceAccount && name.empty()) {
        name = std::filesystem::path(lf.yf->file()).stem().string();
      }
      if (kind == SourceKind::kRole) {
        if (auto it = snapshot->role_sources_.find(name); it != snapshot->role_sources_.end()) {
          yf.Error(src.name.pos, "duplicate role name '" + name + "' (also in " + it->second.file + ")");
          continue;
        }
      } else if (kind == SourceKind::kGuardrail) {
        if (auto it = guardrail_files.find(name); it != guardrail_files.end()) {
          yf.Error(src.name.pos, "duplicate guardrail name '" + name + "' (also in " + it->second + ")");
          continue;
        }
        guardrail_files[name] = yf.file();
      }
      std::string prefix = kind == SourceKind::kRole ? "role:" + name
                           : kind == SourceKind::kGuardrail ? "guardrail:" + name
                                                            : "sa:" + name;
      auto policy = BuildPolicy(catalog, src, prefix, kind, catalog_ok, yf);
      if (kind == SourceKind::kRole) snapshot->role_sources_.emplace(name, src);
      if (!policy) continue;
      switch (kind) {
        case SourceKind::kRole: snapshot->roles_.emplace(name, std::move(policy)); break;
        case SourceKind::kGuardrail: snapshot->guardrails_.push_back(std::move(policy)); break;
        case SourceKind::kServiceAccount: snapshot->fixtures_.emplace(yf.file(), std::move(policy)); break;
      }
      if (kind == SourceKind::kServiceAccount) sa_files[yf.file()] = &lf;
    } else if (lf.kind == "Routes") {
      snapshot->routes_.AddFile(yf, lf.root, catalog, catalog_ok);
    } else if (lf.kind == "PolicyTest") {
      TestSuite suite;
      ParseTestSuite(yf, lf.root, &suite);  // errors reported; principals still resolved below
      suites.push_back(std::move(suite));
    }
  }

  // Test principals refer to roles and service-account fixtures of the tree.
  std::set<std::string> sa_paths;
  for (const LoadedFile& lf : loaded) {
    if (lf.kind == "ServiceAccountPolicy") sa_paths.insert(lf.yf->file());
  }
  for (TestSuite& suite : suites) {
    YamlFile yf(suite.file, {}, &errors);
    std::string dir;
    if (size_t slash = suite.file.rfind('/'); slash != std::string::npos) dir = suite.file.substr(0, slash + 1);
    for (TestPrincipal& tp : suite.principals) {
      for (const ScalarRef& r : tp.role_refs) {
        if (!snapshot->role_sources_.count(r.value)) {
          yf.Error(r.pos, "unknown role '" + r.value + "'");
        }
      }
      if (tp.policy_file_ref) {
        auto path = NormalizePath(dir + tp.policy_file_ref->value);
        if (!path || !sa_paths.count(*path)) {
          yf.Error(tp.policy_file_ref->pos, "policyFile '" + tp.policy_file_ref->value +
                                                "' is not a ServiceAccountPolicy file of the tree");
        } else {
          tp.policy_file = *path;
        }
      }
    }
  }
  snapshot->suites_ = std::move(suites);

  if (!errors.empty()) {
    SortErrors(&errors);
    return result;
  }

  for (const auto& g : snapshot->guardrails_) {
    for (int t = 0; t < 3; ++t) {
      if (g->applies_to & (1 << t)) snapshot->guardrails_by_type_[t].push_back(g.get());
    }
  }
  auto tenant = std::make_shared<CompiledPolicy>();
  tenant->name = "tenant";
  tenant->catalog_fingerprint = catalog.fingerprint();
  tenant->num_models = catalog.num_models();
  tenant->num_actions = catalog.num_actions();
  std::vector<CellBuilder> tenant_cells(static_cast<size_t>(tenant->num_models) * tenant->num_actions);
  for (const std::string& model : catalog.analytics()) {
    ModelId m = *catalog.FindModel(model);
    tenant_cells[static_cast<size_t>(m) * tenant->num_actions + *catalog.FindAction(m, "create")].allow = 0;
  }
  tenant->Finish(tenant_cells, {"tenant#analytics"});
  snapshot->tenant_ = std::move(tenant);
  result.snapshot = std::move(snapshot);
  return result;
}

TreeResult CompileTree(const std::string& dir) {
  namespace fs = std::filesystem;
  TreeResult result;
  std::vector<SourceFile> files;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    result.errors.push_back(CompileError{dir, 1, 1, "not a directory"});
    return result;
  }
  fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    const fs::path& p = it->path();
    std::string name = p.filename().string();
    if (!name.empty() && name[0] == '.') {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file(ec)) continue;
    std::string ext = p.extension().string();
    if (ext != ".yaml" && ext != ".yml") continue;
    std::string rel = fs::relative(p, dir, ec).generic_string();
    auto size = fs::file_size(p, ec);
    if (ec || size > kMaxPolicyFileBytes) {
      result.errors.push_back(CompileError{rel, 1, 1, ec ? "cannot read file" : "file larger than " + std::to_string(kMaxPolicyFileBytes) + " bytes"});
      ec.clear();
      continue;
    }
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    if (!in) {
      result.errors.push_back(CompileError{rel, 1, 1, "cannot read file"});
      continue;
    }
    files.push_back(SourceFile{rel, ss.str()});
  }
  if (ec) result.errors.push_back(CompileError{dir, 1, 1, "cannot list directory: " + ec.message()});
  TreeResult compiled = CompileSources(files, PolicyRevision(dir));
  if (!result.errors.empty()) {
    result.errors.insert(result.errors.end(), compiled.errors.begin(), compiled.errors.end());
    SortErrors(&result.errors);
    return result;
  }
  return compiled;
}

}  // namespace warden::engine
