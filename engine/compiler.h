// The policy compiler's internals, shared by the tree compiler (compiler.cc), the
// service-account documents (policy_doc.cc) and the policy-test runner (policy_tests.cc).
//
// A CompiledPolicy is a [model][action] table built once (its non-empty cells, by key);
// Evaluate only looks up a cell and runs that cell's conditional rules. All types here are immutable once built and
// are shared between threads through std::shared_ptr<const ...>.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/condition.h"
#include "engine/engine.h"
#include "engine/routes.h"
#include "engine/yaml_reader.h"

namespace warden::engine {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using NameIndex = std::unordered_map<std::string, int, StringHash, std::equal_to<>>;

class CatalogImpl final : public Catalog {
 public:
  std::optional<ModelId> FindModel(std::string_view name) const override;
  std::optional<ActionId> FindAction(ModelId model, std::string_view name) const override;
  const std::vector<ModelDecl>& models() const override { return models_; }
  const std::vector<std::string>& analytics() const override { return analytics_; }
  const std::vector<std::string>& subject_types() const override { return subject_types_; }

  int num_models() const { return static_cast<int>(models_.size()); }
  int num_actions() const { return static_cast<int>(action_names_.size()); }
  bool Valid(ModelId m, ActionId a) const {
    return m >= 0 && m < num_models() && a >= 0 && a < num_actions() &&
           valid_[static_cast<size_t>(m) * action_names_.size() + a];
  }
  const std::string& ActionName(ActionId a) const { return action_names_[a]; }
  std::optional<ActionId> FindActionAnyModel(std::string_view name) const;
  const std::vector<std::pair<std::string, ValueType>>& Attributes(ModelId m) const { return attributes_[m]; }
  uint64_t fingerprint() const { return fingerprint_; }

  // Builds the indexes from models_/analytics_ (called once by the compiler).
  void Finish();

  std::vector<ModelDecl> models_;
  std::vector<std::string> analytics_;
  std::vector<std::string> subject_types_;

 private:
  NameIndex model_ids_;
  NameIndex action_ids_;
  std::vector<std::string> action_names_;
  std::vector<uint8_t> valid_;
  std::vector<std::vector<std::pair<std::string, ValueType>>> attributes_;
  uint64_t fingerprint_ = 0;
};

struct RuleRef {
  int rule = -1;  // index into CompiledPolicy::rule_ids
  const Condition* condition = nullptr;
};

// One (model, action) cell: 16 bytes. Conditional rules live in CompiledPolicy::conditional,
// n_allow allows then n_deny denies from cond_begin, so a policy is a few flat arrays
// (the memory budget counts 10,000 account policies).
struct Cell {
  int32_t allow = -1;  // unconditional allow rule, or -1
  int32_t deny = -1;   // unconditional deny rule, or -1
  uint32_t cond_begin = 0;
  uint16_t n_allow = 0;
  uint16_t n_deny = 0;
};

// What the compiler fills per cell before CompiledPolicy::Finish packs it.
struct CellBuilder {
  int allow = -1;
  int deny = -1;
  std::vector<RuleRef> allows;
  std::vector<RuleRef> denies;
};

class CompiledPolicy {
 public:
  // Pinned in memory: rule_ids point into rule_text_ (which may be small-string-stored).
  CompiledPolicy() = default;
  CompiledPolicy(const CompiledPolicy&) = delete;
  CompiledPolicy& operator=(const CompiledPolicy&) = delete;

  std::string name;  // "role:csm", "sa:sync", "guardrail:x", "tenant"
  uint64_t catalog_fingerprint = 0;
  int num_models = 0;
  int num_actions = 0;
  std::vector<std::string_view> rule_ids;  // every rule of the policy, in source order (into rule_text_)
  std::vector<std::unique_ptr<const Condition>> conditions;
  uint8_t applies_to = 0;  // guardrails: bit (1 << PrincipalType)

  // The cell of (m, a); an empty cell where the policy grants and denies nothing.
  const Cell& CellAt(ModelId m, ActionId a) const {
    static const Cell kEmpty;
    if (m < 0 || m >= num_models || a < 0 || a >= num_actions) return kEmpty;
    const uint32_t key = static_cast<uint32_t>(m) * static_cast<uint32_t>(num_actions) + static_cast<uint32_t>(a);
    const auto it = std::lower_bound(cells_.begin(), cells_.end(), key,
                                     [](const KeyedCell& c, uint32_t k) { return c.key < k; });
    return it != cells_.end() && it->key == key ? it->cell : kEmpty;
  }
  std::span<const RuleRef> Allows(const Cell& c) const {
    return {conditional_.data() + c.cond_begin, c.n_allow};
  }
  std::span<const RuleRef> Denies(const Cell& c) const {
    return {conditional_.data() + c.cond_begin + c.n_allow, c.n_deny};
  }
  // Packs the dense builders (num_models * num_actions, row-major) and the rule ids: only
  // the non-empty cells are kept.
  void Finish(const std::vector<CellBuilder>& builders, const std::vector<std::string>& ids);

 private:
  std::string rule_text_;
  struct KeyedCell {
    uint32_t key;  // m * num_actions + a
    Cell cell;
  };
  // The non-empty cells by key: a search of a few steps instead of a row of num_actions cells
  // per model named and an offset per model of the catalog, which were ~400 of the ~1,700
  // bytes an account took in the token cache (10,000 accounts, docs/benchmarks.md).
  std::vector<KeyedCell> cells_;
  std::vector<RuleRef> conditional_;
};

// Source forms, with positions for errors.
struct RuleSource {
  Pos pos;
  ScalarRef name;
  ScalarRef effect;
  std::vector<ScalarRef> models;
  std::vector<ScalarRef> actions;
  std::optional<ScalarRef> when;
};
struct PermissionSource {
  ScalarRef model;
  std::vector<ScalarRef> actions;
};
struct PolicySource {
  std::string file;
  Pos pos;
  ScalarRef name;  // role or guardrail name; account for ServiceAccountPolicy
  std::string description;
  std::vector<PermissionSource> permissions;
  std::vector<RuleSource> rules;
  // ServiceAccountPolicy
  CopiedFromKind copied_from_kind = CopiedFromKind::kScratch;
  std::string copied_from_name;
  std::string copied_from_revision;
  bool has_copied_from = false;  // the document has a copiedFrom key
  // Guardrail
  uint8_t applies_to = 0;
};

enum class SourceKind { kRole, kServiceAccount, kGuardrail };

// Reads the top-level fields of a Role / ServiceAccountPolicy / Guardrail document (apiVersion
// and kind already checked). Returns false when errors were reported.
bool ParsePolicySource(YamlFile& yf, const YAML::Node& root, SourceKind kind, PolicySource* out);

// Compiles a parsed source against `catalog`. `prefix` is "role:<name>", "sa:<account>" or
// "guardrail:<name>". When `check_catalog` is false (the tree has no valid catalog) only
// catalog-independent checks run. Returns null when errors were reported.
std::shared_ptr<CompiledPolicy> BuildPolicy(const CatalogImpl& catalog, const PolicySource& source,
                                            std::string prefix, SourceKind kind, bool check_catalog,
                                            YamlFile& yf);

// Checks apiVersion and kind of a loaded document; returns the kind or nullopt (error reported).
std::optional<std::string> ReadKind(YamlFile& yf, const YAML::Node& root);

PolicyDoc DocFromSource(const PolicySource& source);
std::string_view CopiedFromKindName(CopiedFromKind kind);  // Scratch|Role|ServiceAccount

// Values of test-case attributes: unquoted true/false are bools, unquoted numbers are
// numbers, quoted scalars are strings, sequences are lists of strings.
bool YamlToAttributes(YamlFile& yf, const YAML::Node& node, std::string_view what, Attributes* out);

struct TestPrincipal {
  std::string key;
  Principal principal;
  std::vector<ScalarRef> role_refs;
  std::optional<ScalarRef> policy_file_ref;
  std::string policy_file;  // resolved tree path, for service accounts
};
struct TestCase {
  Pos pos;
  std::string name;
  std::string principal;
  std::string model;
  std::string action;
  Attributes resource;
  Attributes context;
  bool expect_allow = false;
  std::string rule;    // empty: not checked
  std::string reason;  // empty: not checked
};
struct TestSuite {
  std::string file;
  std::string name;
  std::vector<TestPrincipal> principals;
  std::vector<TestCase> cases;
};

class SnapshotImpl final : public PolicySnapshot {
 public:
  const Catalog& catalog() const override { return *catalog_; }
  const std::string& revision() const override { return revision_; }
  const CompiledPolicy* FindRole(std::string_view name) const override;
  std::vector<std::string> RoleNames() const override;
  std::optional<nlohmann::json> RoleJson(std::string_view name) const override;
  const CompiledPolicy& TenantPolicy() const override { return *tenant_; }
  Decision Evaluate(const Principal& principal, std::span<const CompiledPolicy* const> policies,
                    std::string_view model, std::string_view action, const Attributes& resource,
                    const Attributes& context) const override;
  Decision Evaluate(const Principal& principal, std::span<const CompiledPolicy* const> policies,
                    ModelId model, ActionId action, const Attributes& resource,
                    const Attributes& context) const override;
  std::vector<Escalation> Escalations(const Grant& caller, const Grant& target) const override;
  std::optional<RouteMatch> MatchRoute(std::string_view method, std::string_view path) const override {
    return routes_.Match(method, path);
  }
  size_t route_count() const override { return routes_.size(); }

  const CatalogImpl& catalog_impl() const { return *catalog_; }
  const PolicySource* RoleSource(std::string_view name) const;

  std::shared_ptr<CatalogImpl> catalog_;
  std::string revision_;
  std::map<std::string, std::shared_ptr<const CompiledPolicy>, std::less<>> roles_;
  std::map<std::string, PolicySource, std::less<>> role_sources_;
  std::vector<std::shared_ptr<const CompiledPolicy>> guardrails_;
  std::vector<const CompiledPolicy*> guardrails_by_type_[3];
  std::shared_ptr<const CompiledPolicy> tenant_;
  // Policy-test data: service-account fixtures by tree path, and the suites.
  std::map<std::string, std::shared_ptr<const CompiledPolicy>, std::less<>> fixtures_;
  std::vector<TestSuite> suites_;
  RouteTable routes_;  // kind: Routes files
};

}  // namespace warden::engine
