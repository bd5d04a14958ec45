// Service-account policy documents: YAML/JSON round trips, copies, compilation.
#include <catch2/catch.hpp>

#include "engine/engine.h"
#include "tests/engine/test_util.h"

namespace warden::engine {
namespace {

std::shared_ptr<const PolicySnapshot> Tree() {
  TreeResult tree = CompileTree(testing::TestDataDir() + "/tree");
  REQUIRE(tree.errors.empty());
  return tree.snapshot;
}

PolicyDoc TrickyDoc() {
  PolicyDoc doc;
  doc.account = "crm-sync";
  doc.description = "Syncs: companies # and 'quotes' \"double\"\nsecond line";
  doc.copied_from_kind = CopiedFromKind::kServiceAccount;
  doc.copied_from_name = "yes";
  doc.copied_from_revision = "123";
  doc.permissions = {{"company", {"view", "*"}}, {"*", {"view"}}, {"invoice", {"true", "null"}}};
  doc.rules = {
      RuleDoc{"own", "deny", {"company"}, {"update"}, "resource.owner != principal.id"},
      RuleDoc{"quoted", "allow", {"*"}, {"view"}, "context.ip startsWith \"10.\" && 'x' in ['a: b', \"#c\"]"},
      RuleDoc{"plain", "allow", {"enduser"}, {"view", "create"}, ""},
  };
  return doc;
}

TEST_CASE("ParsePolicyDoc(EmitPolicyYaml(doc)) == doc", "[policy_doc]") {
  PolicyDoc scratch;
  PolicyDoc tricky = TrickyDoc();
  PolicyDoc empty_account = tricky;
  empty_account.account.clear();
  empty_account.copied_from_kind = CopiedFromKind::kRole;
  for (const PolicyDoc* doc : {&scratch, &tricky, &empty_account}) {
    std::string yaml = EmitPolicyYaml(*doc);
    INFO(yaml);
    std::vector<CompileError> errors;
    auto parsed = ParsePolicyDoc(yaml, "p.yaml", &errors);
    REQUIRE(parsed.ok());
    CHECK(errors.empty());
    CHECK(*parsed == *doc);
  }
}

TEST_CASE("PolicyDocFromJson(PolicyDocToJson(doc)) == doc", "[policy_doc]") {
  PolicyDoc doc = TrickyDoc();
  // JSON objects are key-sorted: the permissions come back in model order.
  std::sort(doc.permissions.begin(), doc.permissions.end());
  nlohmann::json j = PolicyDocToJson(doc);
  CHECK(j["copied_from"]["kind"] == "service_account");
  auto back = PolicyDocFromJson(j);
  REQUIRE(back.ok());
  CHECK(*back == doc);

  struct Bad {
    nlohmann::json json;
    const char* field;
  };
  const Bad bad[] = {
      {nlohmann::json::array(), "permissions"},
      {{{"account", 3}}, "account"},
      {{{"permissions", {{"company", "view"}}}}, "permissions.company"},
      {{{"rules", {{{"name", "a"}, {"models", {1}}}}}}, "rules[0].models"},
      {{{"rules", {{{"name", "a"}, {"color", "red"}}}}}, "rules[0].color"},
      {{{"copied_from", {{"kind", "robot"}}}}, "copied_from.kind"},
      {{{"extra", 1}}, "extra"},
  };
  for (const Bad& b : bad) {
    auto r = PolicyDocFromJson(b.json);
    CHECK_FALSE(r.ok());
    CHECK(r.status().field() == b.field);
  }
}

TEST_CASE("ParsePolicyDoc reports structural errors with positions", "[policy_doc]") {
  std::vector<CompileError> errors;
  auto r = ParsePolicyDoc("apiVersion: warden/v1\nkind: ServiceAccountPolicy\naccount: a\npermisions: {}\ncopiedFrom: {kind: Clone}\n",
                          "sa.yaml", &errors);
  CHECK_FALSE(r.ok());
  CHECK(testing::ErrorStrings(errors) ==
        std::vector<std::string>{
            "sa.yaml:4:1: unknown key 'permisions' in ServiceAccountPolicy (expected one of: apiVersion, kind, account, description, copiedFrom, permissions, rules)",
            "sa.yaml:5:20: copiedFrom.kind must be Scratch, Role or ServiceAccount, not 'Clone'"});
  errors.clear();
  CHECK_FALSE(ParsePolicyDoc("apiVersion: warden/v1\nkind: Role\nname: x\n", "sa.yaml", &errors).ok());
  CHECK(testing::ErrorStrings(errors) == std::vector<std::string>{"sa.yaml:2:7: expected kind ServiceAccountPolicy, not Role"});
}

TEST_CASE("Scratch, copy from a role and copy from an account fill copiedFrom", "[policy_doc]") {
  auto snapshot = Tree();
  PolicyDoc scratch = ScratchPolicy(*snapshot, "new");
  CHECK(scratch.account == "new");
  CHECK(scratch.copied_from_kind == CopiedFromKind::kScratch);
  CHECK(scratch.copied_from_revision == snapshot->revision());
  CHECK(scratch.permissions.empty());
  PolicyResult compiled_scratch = CompileAccountPolicy(*snapshot, EmitPolicyYaml(scratch), "new.yaml", "new");
  REQUIRE(compiled_scratch.policy);
  std::vector<const CompiledPolicy*> none{compiled_scratch.policy.get()};
  Principal sa;
  sa.type = PrincipalType::kServiceAccount;
  CHECK_FALSE(snapshot->Evaluate(sa, none, "company", "view", {}, {}).allowed);

  auto copy = CopyRolePolicy(*snapshot, "editor", "crm");
  REQUIRE(copy.ok());
  CHECK(copy->account == "crm");
  CHECK(copy->copied_from_kind == CopiedFromKind::kRole);
  CHECK(copy->copied_from_name == "editor");
  CHECK(copy->copied_from_revision == snapshot->revision());
  // invoice: ["*"] is expanded: a copy does not grow when the catalog does.
  CHECK(copy->permissions == std::vector<std::pair<std::string, std::vector<std::string>>>{
                                 {"company", {"view", "update"}}, {"invoice", {"view", "create", "delete", "pay"}}});
  REQUIRE(copy->rules.size() == 2);
  CHECK(copy->rules[0].when == "resource.owner != principal.id");
  CHECK_FALSE(CopyRolePolicy(*snapshot, "nobody", "crm").ok());

  // The copy compiles and decides like the role, with sa: rule ids.
  PolicyResult compiled = CompileAccountPolicy(*snapshot, EmitPolicyYaml(*copy), "crm.yaml", "crm");
  REQUIRE(compiled.errors.empty());
  std::vector<const CompiledPolicy*> crm{compiled.policy.get()};
  sa.id = "u1";
  Attributes mine;
  mine.Set("owner", std::string("u1"));
  Attributes theirs;
  theirs.Set("owner", std::string("u2"));
  Decision d1 = snapshot->Evaluate(sa, crm, "company", "update", mine, {});
  CHECK(d1.allowed);
  CHECK(d1.rule == "sa:crm#perm:company");
  Decision d2 = snapshot->Evaluate(sa, crm, "company", "update", theirs, {});
  CHECK_FALSE(d2.allowed);
  CHECK(d2.rule == "sa:crm#own-company");

  PolicyDoc copy2 = CopyAccountPolicy(*snapshot, *copy, "crm", "crm2");
  CHECK(copy2.account == "crm2");
  CHECK(copy2.copied_from_kind == CopiedFromKind::kServiceAccount);
  CHECK(copy2.copied_from_name == "crm");
  CHECK(copy2.permissions == copy->permissions);
  CHECK(copy2.rules == copy->rules);

  // Round trip of a real copy.
  auto parsed = ParsePolicyDoc(EmitPolicyYaml(copy2), "x.yaml", nullptr);
  REQUIRE(parsed.ok());
  CHECK(*parsed == copy2);
}

TEST_CASE("CompileAccountPolicy reports every error with its position", "[policy_doc]") {
  auto snapshot = Tree();
  PolicyResult r = CompileAccountPolicy(*snapshot,
                                        "apiVersion: warden/v1\nkind: ServiceAccountPolicy\naccount: a\npermissions:\n"
                                        "  company: [view, fly]\n  boat: [view]\nrules:\n"
                                        "  - {name: r, effect: allow, models: [company], actions: [view], when: 'resource.arr == true'}\n",
                                        "a.yaml", "a");
  CHECK(r.policy == nullptr);
  CHECK(testing::ErrorStrings(r.errors) ==
        std::vector<std::string>{"a.yaml:5:19: unknown action 'fly' for model 'company'",
                                 "a.yaml:6:3: unknown model 'boat'",
                                 "a.yaml:8:86: invalid condition: type mismatch: number == bool"});
}

TEST_CASE("PolicyFieldIndex names the JSON field of each error in an emitted document", "[policy_doc]") {
  auto snapshot = Tree();
  PolicyDoc doc;
  doc.account = "a";
  doc.copied_from_kind = CopiedFromKind::kScratch;
  doc.permissions = {{"company", {"view", "fly"}}, {"boat", {"view"}}};
  doc.rules = {RuleDoc{"ok", "allow", {"company"}, {"view"}, ""},
               RuleDoc{"r", "allow", {"company"}, {"view"}, "resource.arr == true"},
               RuleDoc{"e", "maybe", {"company"}, {"view"}, ""}};
  const std::string yaml = EmitPolicyYaml(doc);
  INFO(yaml);
  PolicyResult r = CompileAccountPolicy(*snapshot, yaml, "a.yaml", "a");
  REQUIRE(r.policy == nullptr);
  const PolicyFieldIndex index(yaml);
  std::vector<std::string> fields;
  for (const CompileError& e : r.errors) fields.push_back(index.At(e.line, e.column) + ": " + e.message);
  CHECK(fields == std::vector<std::string>{"permissions.company[1]: unknown action 'fly' for model 'company'",
                                           "permissions.boat: unknown model 'boat'",
                                           "rules[1].when: invalid condition: type mismatch: number == bool",
                                           "rules[2].effect: effect must be 'allow' or 'deny', not 'maybe'"});

  // Every key and list item of the document, at its own position.
  CHECK(index.At(1, 1) == "apiVersion");
  CHECK(index.At(4, 1) == "copied_from");
  CHECK(index.At(4, 14) == "copied_from.kind");
  CHECK(index.At(6, 3) == "permissions.company");
  CHECK(index.At(6, 15) == "permissions.company[0]");
  // Before anything on the line, past the end of the text, or text that does not parse.
  CHECK(index.At(6, 1) == "");
  CHECK(index.At(999, 1) == "");
  CHECK(PolicyFieldIndex("a: [").At(1, 1) == "");
}

TEST_CASE("PolicyFieldIndex names each of a thousand errors on one line", "[policy_doc]") {
  auto snapshot = Tree();
  PolicyDoc doc;
  doc.account = "a";
  std::vector<std::string> actions;
  for (int i = 0; i < 1000; ++i) actions.push_back("x" + std::to_string(i));
  doc.permissions = {{"company", actions}};
  const std::string yaml = EmitPolicyYaml(doc);
  PolicyResult r = CompileAccountPolicy(*snapshot, yaml, "a.yaml", "a");
  REQUIRE(r.errors.size() == actions.size());
  const PolicyFieldIndex index(yaml);
  for (size_t i = 0; i < r.errors.size(); ++i) {
    INFO(r.errors[i].ToString());
    CHECK(index.At(r.errors[i].line, r.errors[i].column) == "permissions.company[" + std::to_string(i) + "]");
  }
}

TEST_CASE("PolicyDocFromJson refuses characters YAML cannot carry, so the stored document is what was sent", "[policy_doc]") {
  // Found by the policy_json fuzz target: U+FFFF in a condition did not survive
  // EmitPolicyYaml + ParsePolicyDoc.
  struct Case {
    const char* json;
    const char* field;
  };
  const Case refused[] = {
      {R"({"rules": [{"name": "r", "effect": "allow", "models": ["company"], "actions": ["view"], "when": "context.ip startsWith \"\uffff\""}]})", "rules[0].when"},
      {R"({"description": "line\u0001"})", "description"},
      {R"({"permissions": {"company": ["vi\u007few"]}})", "permissions.company"},
      {R"({"permissions": {"comp\u0090any": ["view"]}})", "permissions.comp\u0090any"},
      {R"({"rules": [{"name": "\ufffe", "effect": "allow"}]})", "rules[0].name"},
  };
  for (const Case& c : refused) {
    INFO(c.json);
    auto doc = PolicyDocFromJson(nlohmann::json::parse(c.json));
    REQUIRE_FALSE(doc.ok());
    CHECK(doc.status().code() == StatusCode::kInvalidArgument);
    CHECK(doc.status().field() == nlohmann::json::parse(std::string("\"") + c.field + "\"").get<std::string>());
  }
  // Text in any language, tabs and new lines are fine and come back exactly.
  auto doc = PolicyDocFromJson(nlohmann::json::parse(R"({"description": "Synchronise \u00e9l\u00e8ves\tet\n\u4e2d\u6587 \ud83d\ude00"})"));
  REQUIRE(doc.ok());
  std::vector<CompileError> errors;
  auto back = ParsePolicyDoc(EmitPolicyYaml(*doc), "p.yaml", &errors);
  REQUIRE(back.ok());
  CHECK(*back == *doc);
}

}  // namespace
}  // namespace warden::engine
