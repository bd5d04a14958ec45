// Compile errors with exact positions, wildcard expansion, and tree-level rules.
#include <catch2/catch.hpp>

#include "engine/engine.h"
#include "tests/engine/test_util.h"

namespace warden::engine {
namespace {

using testing::ErrorStrings;
using testing::kTestCatalog;

std::vector<std::string> Compile(std::vector<SourceFile> files, bool add_catalog = true) {
  if (add_catalog) files.push_back({"catalog.yaml", kTestCatalog});
  TreeResult r = CompileSources(files, "test");
  CHECK((r.snapshot == nullptr) == !r.errors.empty());
  return ErrorStrings(r.errors);
}

std::string Role(const std::string& body) { return "apiVersion: warden/v1\nkind: Role\nname: r\n" + body; }

struct ErrorCase {
  const char* what;
  std::vector<SourceFile> files;
  std::vector<std::string> errors;  // exact, in order
  bool add_catalog = true;
};

TEST_CASE("Every compile error kind is reported at its exact position", "[compiler]") {
  const ErrorCase cases[] = {
      {"unknown top-level key",
       {{"roles/r.yaml", Role("colour: red\n")}},
       {"roles/r.yaml:4:1: unknown key 'colour' in Role (expected one of: apiVersion, kind, name, description, permissions, rules)"}},
      {"unknown key in a rule",
       {{"roles/r.yaml", Role("rules:\n  - {name: a, effect: deny, models: [company], actions: [view], wen: x}\n")}},
       {"roles/r.yaml:5:65: unknown key 'wen' in a rule (expected one of: name, effect, models, actions, when)"}},
      {"unknown kind",
       {{"roles/r.yaml", "apiVersion: warden/v1\nkind: Rol\nname: r\n"}},
       {"roles/r.yaml:2:7: unknown kind 'Rol' (expected Catalog, Role, ServiceAccountPolicy, Guardrail, PolicyTest or Routes)"}},
      {"wrong apiVersion",
       {{"roles/r.yaml", "apiVersion: warden/v2\nkind: Role\nname: r\n"}},
       {"roles/r.yaml:1:13: apiVersion must be 'warden/v1', not 'warden/v2'"}},
      {"missing apiVersion",
       {{"roles/r.yaml", "kind: Role\nname: r\n"}},
       {"roles/r.yaml:1:1: missing apiVersion (expected 'warden/v1')"}},
      {"duplicate role across files",
       {{"roles/a.yaml", Role("")}, {"roles/b.yaml", Role("")}},
       {"roles/b.yaml:3:7: duplicate role name 'r' (also in roles/a.yaml)"}},
      {"duplicate rule name",
       {{"roles/r.yaml", Role("rules:\n  - {name: a, effect: deny, models: [company], actions: [view]}\n"
                              "  - {name: a, effect: deny, models: [company], actions: [update]}\n")}},
       {"roles/r.yaml:6:12: duplicate rule name 'a'"}},
      {"duplicate model in the catalog",
       {{"catalog.yaml", "apiVersion: warden/v1\nkind: Catalog\nmodels:\n  a: {actions: [view]}\n  a: {actions: [edit]}\n"}},
       {"catalog.yaml:5:3: duplicate key 'a' in models"}, false},
      {"duplicate permission key (yaml-cpp accepts it silently)",
       {{"roles/r.yaml", Role("permissions:\n  company: [view]\n  company: [update]\n")}},
       {"roles/r.yaml:6:3: duplicate key 'company' in permissions"}},
      {"unknown model in permissions",
       {{"roles/r.yaml", Role("permissions:\n  spaceship: [view]\n")}},
       {"roles/r.yaml:5:3: unknown model 'spaceship'"}},
      {"unknown action in permissions",
       {{"roles/r.yaml", Role("permissions:\n  enduser: [view, export]\n")}},
       {"roles/r.yaml:5:19: unknown action 'export' for model 'enduser'"}},
      {"wildcard model with an action no model has",
       {{"roles/r.yaml", Role("permissions:\n  \"*\": [launch]\n")}},
       {"roles/r.yaml:5:9: unknown action 'launch' (no model has it)"}},
      {"unknown model in a rule",
       {{"roles/r.yaml", Role("rules:\n  - {name: a, effect: deny, models: [company, ship], actions: [view]}\n")}},
       {"roles/r.yaml:5:47: unknown model 'ship'"}},
      {"unknown action in a rule",
       {{"roles/r.yaml", Role("rules:\n  - {name: a, effect: deny, models: [enduser], actions: [pay]}\n")}},
       {"roles/r.yaml:5:58: unknown action 'pay' for model 'enduser'"}},
      {"empty action list in permissions",
       {{"roles/r.yaml", Role("permissions:\n  company: []\n")}},
       {"roles/r.yaml:5:12: actions of 'company' must not be empty"}},
      {"empty action list in a rule",
       {{"roles/r.yaml", Role("rules:\n  - {name: a, effect: deny, models: [company], actions: []}\n")}},
       {"roles/r.yaml:5:57: actions must not be empty"}},
      {"invalid effect",
       {{"roles/r.yaml", Role("rules:\n  - {name: a, effect: maybe, models: [company], actions: [view]}\n")}},
       {"roles/r.yaml:5:23: effect must be 'allow' or 'deny', not 'maybe'"}},
      {"when: a single '='",
       {{"roles/r.yaml", Role("rules:\n  - name: a\n    effect: deny\n    models: [company]\n    actions: [update]\n"
                              "    when: resource.owner = principal.id\n")}},
       {"roles/r.yaml:9:26: invalid condition: unexpected '=' (use '==')"}},
      {"when: position inside a quoted scalar",
       {{"roles/r.yaml", Role("rules:\n  - name: a\n    effect: deny\n    models: [company]\n    actions: [update]\n"
                              "    when: \"resource.owner == principal.id &&\"\n")}},
       {"roles/r.yaml:9:45: invalid condition: expected a value, found end of expression"}},
      {"when: unknown name",
       {{"roles/r.yaml", Role("rules:\n  - {name: a, effect: deny, models: [company], actions: [view], when: user.id == 'x'}\n")}},
       {"roles/r.yaml:5:71: invalid condition: unknown name 'user' (expected principal., resource., context., a literal or has(...))"}},
      {"when: type error against the catalog",
       {{"roles/r.yaml", Role("rules:\n  - {name: a, effect: deny, models: [company], actions: [view], when: resource.arr == 'big'}\n")}},
       {"roles/r.yaml:5:84: invalid condition: type mismatch: number == string"}},
      {"when: principal.id is a string",
       {{"roles/r.yaml", Role("rules:\n  - {name: a, effect: deny, models: [company], actions: [view], when: principal.id > 3}\n")}},
       {"roles/r.yaml:5:84: invalid condition: type mismatch: string > number"}},
      {"when: unknown attribute of a model that declares attributes",
       {{"roles/r.yaml", Role("rules:\n  - {name: a, effect: deny, models: [company], actions: [view], when: resource.colour == 'red'}\n")}},
       {"roles/r.yaml:5:71: invalid condition: unknown attribute 'resource.colour' (not declared by the rule's models in the catalog)"}},
      {"when: not boolean",
       {{"roles/r.yaml", Role("rules:\n  - {name: a, effect: deny, models: [company], actions: [view], when: resource.owner}\n")}},
       {"roles/r.yaml:5:71: invalid condition: condition must be boolean, not string"}},
      {"when: invalid RE2 pattern",
       {{"roles/r.yaml", Role("rules:\n  - {name: a, effect: deny, models: [company], actions: [view], when: 'resource.owner matches \"a(b\"'}\n")}},
       {"roles/r.yaml:5:95: invalid condition: invalid regular expression: missing ): a(b"}},
      {"when: matches needs a literal",
       {{"roles/r.yaml", Role("rules:\n  - {name: a, effect: deny, models: [company], actions: [view], when: resource.owner matches resource.segment}\n")}},
       {"roles/r.yaml:5:94: invalid condition: right side of 'matches' must be a string literal"}},
      {"guardrail rule that allows",
       {{"guardrails/g.yaml", "apiVersion: warden/v1\nkind: Guardrail\nname: g\nappliesTo: [user]\nrules:\n"
                              "  - {name: a, effect: allow, models: [company], actions: [view]}\n"}},
       {"guardrails/g.yaml:6:23: guardrail rules must have effect: deny"}},
      {"guardrail with an unknown principal type",
       {{"guardrails/g.yaml", "apiVersion: warden/v1\nkind: Guardrail\nname: g\nappliesTo: [robot]\nrules: []\n"}},
       {"guardrails/g.yaml:4:13: appliesTo entries must be service_account, user or tenant, not 'robot'"}},
      {"no catalog",
       {{"roles/r.yaml", Role("")}},
       {"roles/r.yaml:1:1: no Catalog in the policy tree (a file with kind: Catalog is required)"}, false},
      {"two catalogs",
       {{"a.yaml", kTestCatalog}},
       {"catalog.yaml:2:7: more than one Catalog (the first is a.yaml)"}},
      {"yaml syntax error",
       {{"roles/r.yaml", Role("permissions: [company\n")}},
       {"roles/r.yaml:5:1: invalid YAML: end of sequence flow not found"}},
      {"an anchor",
       {{"roles/r.yaml", Role("description: &d text\n")}},
       {"roles/r.yaml:4:14: anchors and aliases are not allowed"}},
      {"an alias (its anchor is refused first)",
       {{"roles/r.yaml", Role("permissions:\n  company: &v [view]\n  enduser: *v\n")}},
       {"roles/r.yaml:5:12: anchors and aliases are not allowed"}},
      {"an alias without an anchor",
       {{"roles/r.yaml", Role("description: *d\n")}},
       {"roles/r.yaml:4:14: invalid YAML: the referenced anchor is not defined"}},
      {"not a mapping",
       {{"roles/r.yaml", "- a\n- b\n"}},
       {"roles/r.yaml:1:1: expected a mapping with apiVersion and kind"}},
      {"empty file",
       {{"roles/r.yaml", "# nothing\n"}},
       {"roles/r.yaml:1:1: empty file (expected a mapping with apiVersion and kind)"}},
      {"wrong type of a field",
       {{"roles/r.yaml", Role("permissions: [company]\n")}},
       {"roles/r.yaml:4:14: permissions must be a mapping"}},
      {"unknown attribute type in the catalog",
       {{"catalog.yaml", "apiVersion: warden/v1\nkind: Catalog\nmodels:\n  a: {actions: [view], attributes: {x: float}}\n"}},
       {"catalog.yaml:4:40: unknown attribute type 'float' (expected string, number, bool or list)"}, false},
      {"unknown analytics model",
       {{"catalog.yaml", "apiVersion: warden/v1\nkind: Catalog\nmodels:\n  a: {actions: [view]}\nanalytics: [b]\n"}},
       {"catalog.yaml:5:13: unknown model 'b' in analytics"}, false},
      {"invalid AuthZEN subject types",
       {{"catalog.yaml", "apiVersion: warden/v1\nkind: Catalog\nmodels:\n  a: {actions: [view]}\nsubjects: [user, service_account, \"*\"]\n"}},
       {"catalog.yaml:5:18: invalid subject type 'service_account'", "catalog.yaml:5:35: invalid subject type '*'"}, false},
      {"policy test: unknown role, principal and fixture",
       {{"tests/t.yaml", "apiVersion: warden/v1\nkind: PolicyTest\nname: t\nprincipals:\n  a: {role: nobody}\n"
                         "  b: {policyFile: missing.yaml}\ncases:\n"
                         "  - {principal: c, model: company, action: view, expect: allow}\n"}},
       {"tests/t.yaml:5:13: unknown role 'nobody'", "tests/t.yaml:6:19: policyFile 'missing.yaml' is not a ServiceAccountPolicy file of the tree",
        "tests/t.yaml:8:17: unknown principal 'c' (not in principals)"}},
      {"policy test: bad expect and reason",
       {{"roles/r.yaml", Role("")},
        {"tests/t.yaml", "apiVersion: warden/v1\nkind: PolicyTest\nname: t\nprincipals:\n  a: {role: r}\ncases:\n"
                         "  - {principal: a, model: company, action: view, expect: maybe, reason: NOPE}\n"}},
       {"tests/t.yaml:7:58: expect must be 'allow' or 'deny', not 'maybe'", "tests/t.yaml:7:73: unknown reason 'NOPE'"}},
  };
  for (const ErrorCase& c : cases) {
    SECTION(c.what) { CHECK(Compile(c.files, c.add_catalog) == c.errors); }
  }
}

TEST_CASE("All errors of a tree are reported at once, sorted by file, line, column", "[compiler]") {
  auto errors = Compile({
      {"roles/b.yaml", Role("permissions:\n  ship: [view]\n  company: [fly]\n")},
      {"roles/a.yaml", "apiVersion: warden/v1\nkind: Role\nname: a\nrules:\n  - {name: x, effect: deny, models: [company], actions: [view], when: 'resource.arr > \"1\"'}\nextra: 1\n"},
  });
  CHECK(errors == std::vector<std::string>{
                      "roles/a.yaml:5:85: invalid condition: type mismatch: number > string",
                      "roles/a.yaml:6:1: unknown key 'extra' in Role (expected one of: apiVersion, kind, name, description, permissions, rules)",
                      "roles/b.yaml:5:3: unknown model 'ship'",
                      "roles/b.yaml:6:13: unknown action 'fly' for model 'company'",
                  });
}

TEST_CASE("Wildcards expand from the catalog at compile time", "[compiler]") {
  TreeResult tree = CompileSources(
      {{"catalog.yaml", kTestCatalog},
       {"roles/r.yaml", Role("permissions:\n  \"*\": [view]\n  invoice: [\"*\"]\nrules:\n"
                             "  - {name: no-delete, effect: deny, models: [\"*\"], actions: [delete]}\n"
                             "  - {name: no-enduser, effect: deny, models: [enduser], actions: [\"*\"]}\n")}},
      "t");
  REQUIRE(tree.errors.empty());
  const CompiledPolicy* r = tree.snapshot->FindRole("r");
  std::vector<const CompiledPolicy*> policies{r};
  Principal p;
  auto decide = [&](const char* m, const char* a) {
    Decision d = tree.snapshot->Evaluate(p, policies, m, a, {}, {});
    return std::string(d.allowed ? "allow " : "deny ") + std::string(d.rule);
  };
  CHECK(decide("company", "view") == "allow role:r#perm:company");
  CHECK(decide("company", "update") == "deny ");
  CHECK(decide("invoice", "pay") == "allow role:r#perm:invoice");
  CHECK(decide("invoice", "view") == "allow role:r#perm:invoice");
  CHECK(decide("invoice", "delete") == "deny role:r#no-delete");
  CHECK(decide("company", "delete") == "deny role:r#no-delete");
  CHECK(decide("enduser", "view") == "deny role:r#no-enduser");
  CHECK(decide("enduser", "create") == "deny role:r#no-enduser");
}

TEST_CASE("A tree with errors produces no snapshot; RoleJson and RoleNames describe roles", "[compiler]") {
  TreeResult bad = CompileSources({{"catalog.yaml", kTestCatalog}, {"roles/r.yaml", Role("x: 1\n")}}, "t");
  CHECK(bad.snapshot == nullptr);
  CHECK(bad.errors.size() == 1);

  TreeResult tree = CompileTree(testing::TestDataDir() + "/tree");
  REQUIRE(tree.errors.empty());
  CHECK(tree.snapshot->RoleNames() == std::vector<std::string>{"admin", "auditor", "editor"});
  auto json = tree.snapshot->RoleJson("editor");
  REQUIRE(json.has_value());
  CHECK((*json)["name"] == "editor");
  CHECK((*json)["permissions"]["company"] == nlohmann::json{"view", "update"});
  CHECK((*json)["rules"][0]["when"] == "resource.owner != principal.id");
  CHECK_FALSE(tree.snapshot->RoleJson("nobody").has_value());
  CHECK(tree.snapshot->catalog().analytics() == std::vector<std::string>{"metric"});
}

TEST_CASE("The catalog lists the AuthZEN subject types once each, in order", "[compiler]") {
  TreeResult tree = CompileSources(
      {{"catalog.yaml", "apiVersion: warden/v1\nkind: Catalog\nmodels:\n  a: {actions: [view]}\n"
                        "subjects: [user, identity, user]\n"}},
      "t");
  REQUIRE(tree.errors.empty());
  CHECK(tree.snapshot->catalog().subject_types() == std::vector<std::string>{"user", "identity"});
  TreeResult none = CompileSources({{"catalog.yaml", kTestCatalog}}, "t");
  REQUIRE(none.errors.empty());
  CHECK(none.snapshot->catalog().subject_types().empty());
}

TEST_CASE("CompileTree reports a missing directory and oversized files", "[compiler]") {
  TreeResult missing = CompileTree("/nonexistent/warden/policies");
  REQUIRE(missing.errors.size() == 1);
  CHECK(missing.errors[0].ToString() == "/nonexistent/warden/policies:1:1: not a directory");
  CHECK(missing.snapshot == nullptr);
}

}  // namespace
}  // namespace warden::engine
