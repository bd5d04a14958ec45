// The public API of warden's policy engine: compile a policy tree into an immutable
// snapshot, compile service-account policies against it, and evaluate decisions.
//
// Pure: no I/O other than reading policy files (and asking git for the folder's revision).
// Thread-safety: a PolicySnapshot and a CompiledPolicy are immutable once built and safe to
// share between threads (std::shared_ptr<const ...>); every function here is reentrant.
// Evaluation never allocates a regex, parses text, or takes a lock.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace warden::engine {

enum class PrincipalType { kUser, kServiceAccount, kTenant };
// "user", "service_account", "tenant" (the spelling of Guardrail.appliesTo and of the API).
std::string_view PrincipalTypeName(PrincipalType type);

// DESIGN.md 3.1 reason codes.
enum class Reason {
  kAllowRule,
  kNoMatchingAllow,
  kDenyRule,
  kGuardrailDeny,
  kUnknownModel,
  kUnknownAction,
  kAccountDisabled,
  kTokenInvalid,
  kUnknownRoute,  // forward-auth: no `kind: Routes` template matches the request
};
inline constexpr int kReasonCount = 9;
// "ALLOW_RULE", "NO_MATCHING_ALLOW", "DENY_RULE", "GUARDRAIL_DENY", "UNKNOWN_MODEL",
// "UNKNOWN_ACTION", "ACCOUNT_DISABLED", "TOKEN_INVALID", "UNKNOWN_ROUTE".
std::string_view ReasonName(Reason reason);

// A decision is not an error. `rule` is the stable rule id ("role:csm#own-portfolio",
// "sa:<account>#perm:company", "guardrail:<name>#<rule>") or empty when no rule decided;
// it points into the snapshot or compiled policy that produced it and stays valid while the
// caller holds that object.
struct Decision {
  bool allowed = false;
  Reason reason = Reason::kNoMatchingAllow;
  std::string_view rule;
  bool eval_error = false;  // a condition could not be evaluated (handled fail-closed)
};

// An attribute value of a resource, principal or context.
using Value = std::variant<std::monostate, bool, double, std::string, std::vector<std::string>>;

// Bounds of one attribute bag from outside (a check's resource or context, a user's or an
// account's stored attributes, a policy test's), so that lookups stay a short linear scan and
// no body can make building a bag expensive. Documented in docs/policies.md ("Attributes").
inline constexpr size_t kMaxAttributes = 64;
inline constexpr size_t kMaxAttributeKeyBytes = 128;
inline constexpr size_t kMaxAttributeStringBytes = 2048;  // a string, or one item of a list
inline constexpr size_t kMaxAttributeListItems = 256;

// A small attribute bag (linear lookup: a bag holds at most kMaxAttributes from Add).
class Attributes {
 public:
  // Adds or replaces `key`, unchecked (for values the code itself builds).
  void Set(std::string key, Value value);
  // Adds `key` from outside input, within the bounds above: InvalidArgument when the bag is
  // full or the key is too long (naming `field`, the bag), or when the value is too long or
  // `key` is already present (naming `field.key`). O(size()) <= O(kMaxAttributes).
  [[nodiscard]] Status Add(std::string_view key, Value value, std::string_view field);
  const Value* Find(std::string_view key) const;  // nullptr when absent
  bool empty() const { return items_.empty(); }
  size_t size() const { return items_.size(); }
  const std::vector<std::pair<std::string, Value>>& items() const { return items_; }
  // From a JSON object: strings, numbers, booleans, arrays of strings; null = absent.
  // Other shapes, and anything over the bounds (Add), are InvalidArgument naming the field
  // (`field_prefix` or `field_prefix.key`).
  static StatusOr<Attributes> FromJson(const nlohmann::json& object, std::string_view field_prefix);

 private:
  std::vector<std::pair<std::string, Value>> items_;
};

struct Principal {
  PrincipalType type = PrincipalType::kUser;
  std::string id;
  std::string name;
  std::vector<std::string> roles;  // users only; `principal.role` is the first
  Attributes attributes;           // any attributes stored on the user or account
};

// A compiled permission set (a role, a service-account policy, or the tenant grant):
// a [model][action] table of unconditional allow/deny plus the conditional rules of each cell.
class CompiledPolicy;

// Model and action ids interned when the snapshot is built.
using ModelId = int;
using ActionId = int;

struct AttributeDecl {
  std::string name;
  std::string type;  // "string", "number", "bool", "list"
};
struct ModelDecl {
  std::string name;
  std::vector<std::string> actions;
  std::vector<AttributeDecl> attributes;
};

class Catalog {
 public:
  virtual ~Catalog() = default;
  virtual std::optional<ModelId> FindModel(std::string_view name) const = 0;
  // Global action id (actions are interned across models); nullopt when `model` lacks it.
  virtual std::optional<ActionId> FindAction(ModelId model, std::string_view name) const = 0;
  virtual const std::vector<ModelDecl>& models() const = 0;  // in catalog order
  virtual const std::vector<std::string>& analytics() const = 0;
  // The AuthZEN subject types the directory holds (`subjects:`, DESIGN.md 6.1), in catalog
  // order; `service_account` is always a subject type and never listed here.
  virtual const std::vector<std::string>& subject_types() const = 0;
};

struct CompileError {
  std::string file;  // path as given to the compiler (relative to the tree root for trees)
  int line = 0;      // 1-based
  int column = 0;    // 1-based
  std::string message;
  std::string ToString() const;  // "file:line:col: message"
  nlohmann::json ToJson() const;  // {"file","line","column","message"}
};

// A gateway's request as a check, from the tree's `kind: Routes` files (engine/routes.h).
// `model`, `action` and `route` point into the snapshot.
struct RouteMatch {
  std::string_view model;
  std::string_view action;
  std::string_view route;  // "routes:<name>#GET /companies/{id}"
  std::string resource_id;
  Attributes resource;     // the attributes the route binds from the path
};

// A principal's permission set as the no-escalation rule sees it: its type (which guardrails
// apply) and its policies (a user's roles, or one account's policy).
struct Grant {
  PrincipalType type = PrincipalType::kUser;
  std::span<const CompiledPolicy* const> policies;
};

// A permission the target would hold and the caller cannot be shown to hold.
struct Escalation {
  std::string model;
  std::string action;
  bool undecidable = false;  // the caller holds it only under conditions that cannot be compared
  bool operator==(const Escalation&) const = default;
};

class PolicySnapshot {
 public:
  virtual ~PolicySnapshot() = default;
  virtual const Catalog& catalog() const = 0;
  virtual const std::string& revision() const = 0;
  virtual const CompiledPolicy* FindRole(std::string_view name) const = 0;
  virtual std::vector<std::string> RoleNames() const = 0;  // sorted
  // The role's source document as JSON ({"name","description","permissions","rules"}).
  virtual std::optional<nlohmann::json> RoleJson(std::string_view name) const = 0;
  // What a tenant token may do: create on the catalog's analytics models
  // (rule id "tenant#analytics").
  virtual const CompiledPolicy& TenantPolicy() const = 0;

  // DESIGN.md 3.1 steps 1 and 3-6 (step 2, account and token state, is the caller's):
  // unknown model/action, guardrail denies for principal.type, then deny rules and allow
  // rules of `policies` (the union of a user's roles, or one account's policy).
  virtual Decision Evaluate(const Principal& principal,
                            std::span<const CompiledPolicy* const> policies,
                            std::string_view model, std::string_view action,
                            const Attributes& resource, const Attributes& context) const = 0;
  // The same with interned ids (the hot path once the ids are known).
  virtual Decision Evaluate(const Principal& principal,
                            std::span<const CompiledPolicy* const> policies, ModelId model,
                            ActionId action, const Attributes& resource,
                            const Attributes& context) const = 0;

  // No escalation (DESIGN.md 6): the (model, action) cells where `target` may be allowed but
  // `caller` cannot be shown to be allowed too, for every resource, context and attribute
  // value. Each side is evaluated as Evaluate does: guardrails of its principal type first,
  // then deny-overrides over its policies. Conditions are compared by text: a target's
  // conditional allow is covered by a caller's unconditional allow or by the same condition
  // when it reads no principal attribute, and each conditional deny of the caller must be
  // among the target's. Anything else is reported `undecidable` (refused, fail closed).
  // Empty means the target's effective permissions are a subset of the caller's.
  virtual std::vector<Escalation> Escalations(const Grant& caller, const Grant& target) const = 0;

  // Forward-auth (DESIGN.md 6.2): the check a gateway's request is, by the tree's
  // `kind: Routes` files; nullopt when no route matches (deny UNKNOWN_ROUTE).
  virtual std::optional<RouteMatch> MatchRoute(std::string_view method, std::string_view path) const = 0;
  virtual size_t route_count() const = 0;
};

// Compiles every *.yaml / *.yml under `dir` (catalog, roles, guardrails, tests). On any
// error, `snapshot` is null and `errors` holds every error of the tree, sorted by
// file, line, column. The revision is computed by PolicyRevision(dir).
struct TreeResult {
  std::shared_ptr<const PolicySnapshot> snapshot;
  std::vector<CompileError> errors;
};
TreeResult CompileTree(const std::string& dir);

// The same from in-memory files (name, text), for tests and tools.
struct SourceFile {
  std::string name;
  std::string text;
};
TreeResult CompileSources(const std::vector<SourceFile>& files, std::string revision);

// The git commit of `dir` when it is inside a git work tree (suffixed "-dirty" when the tree
// has uncommitted changes under `dir`), else "sha256:<hex>" of the files' names and contents.
std::string PolicyRevision(const std::string& dir);

// ---- Service-account policies ----

enum class CopiedFromKind { kScratch, kRole, kServiceAccount };

struct RuleDoc {
  std::string name;
  std::string effect;  // "allow" | "deny"
  std::vector<std::string> models;
  std::vector<std::string> actions;
  std::string when;  // empty: unconditional
  bool operator==(const RuleDoc&) const = default;
};

// The source document of a kind: ServiceAccountPolicy, as edited over the API.
struct PolicyDoc {
  std::string account;
  std::string description;
  CopiedFromKind copied_from_kind = CopiedFromKind::kScratch;
  std::string copied_from_name;
  std::string copied_from_revision;
  std::vector<std::pair<std::string, std::vector<std::string>>> permissions;  // model -> actions
  std::vector<RuleDoc> rules;
  bool operator==(const PolicyDoc&) const = default;
};

// YAML text of the document (apiVersion, kind, account, description, copiedFrom,
// permissions, rules). ParsePolicyDoc(EmitPolicyYaml(d)) == d.
std::string EmitPolicyYaml(const PolicyDoc& doc);
nlohmann::json PolicyDocToJson(const PolicyDoc& doc);
// Structural parse only (apiVersion, kind, known keys, field types), errors with positions.
// `file` names the text in errors (e.g. "permissions.yaml").
// `has_copied_from`, when given, is set to whether the text has a copiedFrom key.
StatusOr<PolicyDoc> ParsePolicyDoc(std::string_view yaml_text, std::string_view file,
                                   std::vector<CompileError>* errors, bool* has_copied_from = nullptr);
// From the JSON shape PolicyDocToJson produces; InvalidArgument naming the field.
StatusOr<PolicyDoc> PolicyDocFromJson(const nlohmann::json& json);
// For errors in a document that came as JSON: the fields of `yaml_text` (what EmitPolicyYaml
// wrote for that JSON), read once, named as PolicyDocFromJson names them
// ("permissions.company[1]", "rules[0].when", "copied_from.kind").
class PolicyFieldIndex {
 public:
  explicit PolicyFieldIndex(std::string_view yaml_text);  // no fields when it does not parse
  // The field of the node at or just before 1-based line:column; "" when nothing on that line
  // is at or before the column. O(log fields).
  std::string At(int line, int column) const;

 private:
  struct Field {
    int line;    // 1-based
    int column;  // 1-based
    std::string path;
  };
  std::vector<Field> fields_;  // by (line, column); document order among equal positions
};

// New documents for `account`: empty (scratch), a copy of a role, or a copy of another
// account's document; copiedFrom records the source and `snapshot.revision()`.
PolicyDoc ScratchPolicy(const PolicySnapshot& snapshot, std::string_view account);
StatusOr<PolicyDoc> CopyRolePolicy(const PolicySnapshot& snapshot, std::string_view role,
                                   std::string_view account);
PolicyDoc CopyAccountPolicy(const PolicySnapshot& snapshot, const PolicyDoc& source,
                            std::string_view source_account, std::string_view account);

// Compiles a ServiceAccountPolicy document against the snapshot's catalog. Rule ids are
// "sa:<account_name>#perm:<model>" and "sa:<account_name>#<rule>". On error the pointer is
// null and `errors` holds every error with its position in `yaml_text`.
struct PolicyResult {
  std::shared_ptr<const CompiledPolicy> policy;
  std::vector<CompileError> errors;
};
PolicyResult CompileAccountPolicy(const PolicySnapshot& snapshot, std::string_view yaml_text,
                                  std::string_view file, std::string_view account_name);

}  // namespace warden::engine
