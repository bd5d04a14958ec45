// DESIGN.md 3.1 evaluation, case by case, over tests/testdata/engine/tree.
#include <atomic>
#include <thread>

#include <catch2/catch.hpp>

#include "engine/engine.h"
#include "tests/engine/test_util.h"

namespace warden::engine {
namespace {

std::shared_ptr<const PolicySnapshot> LoadTree() {
  TreeResult tree = CompileTree(testing::TestDataDir() + "/tree");
  INFO(Catch::Detail::stringify(testing::ErrorStrings(tree.errors)));
  REQUIRE(tree.errors.empty());
  REQUIRE(tree.snapshot != nullptr);
  return tree.snapshot;
}

struct EvalCase {
  const char* name;
  PrincipalType type;
  std::vector<std::string> roles;  // roles of a user
  bool sync_account;               // evaluate with the service-account fixture policy instead
  const char* model;
  const char* action;
  std::vector<std::pair<std::string, Value>> resource;
  std::vector<std::pair<std::string, Value>> context;
  bool allowed;
  Reason reason;
  const char* rule;
  bool eval_error;
};

PolicyResult CompileSync(const PolicySnapshot& snapshot) {
  return CompileAccountPolicy(snapshot, R"(apiVersion: warden/v1
kind: ServiceAccountPolicy
account: sync
permissions:
  invoice: [view, delete]
  company: ["*"]
rules:
  - name: segment-only
    effect: allow
    models: [enduser]
    actions: [view]
    when: context.segment == "smb"
)", "sync.yaml", "sync");
}

TEST_CASE("Evaluate follows DESIGN 3.1 step by step", "[evaluate]") {
  auto snapshot = LoadTree();
  PolicyResult sync = CompileSync(*snapshot);
  REQUIRE(sync.errors.empty());
  using P = PrincipalType;
  using R = Reason;
  const EvalCase cases[] = {
      // 1. unknown model / action
      {"unknown model", P::kUser, {"admin"}, false, "spaceship", "view", {}, {}, false, R::kUnknownModel, "", false},
      {"unknown action", P::kUser, {"admin"}, false, "company", "launch", {}, {}, false, R::kUnknownAction, "", false},
      {"action of another model", P::kUser, {"admin"}, false, "enduser", "export", {}, {}, false, R::kUnknownAction, "", false},
      // 3. guardrails by principal type
      {"sa guardrail beats the account's allow", P::kServiceAccount, {}, true, "invoice", "delete", {}, {}, false, R::kGuardrailDeny, "guardrail:sa-limits#no-invoice-delete", false},
      {"sa guardrail does not apply to users", P::kUser, {"admin"}, false, "invoice", "delete", {}, {}, true, R::kAllowRule, "role:admin#perm:invoice", false},
      {"user guardrail condition true", P::kUser, {"admin"}, false, "company", "delete", {}, {{"mfa", false}}, false, R::kGuardrailDeny, "guardrail:user-limits#mfa-for-delete", false},
      {"user guardrail condition false", P::kUser, {"admin"}, false, "company", "delete", {}, {{"mfa", true}}, true, R::kAllowRule, "role:admin#perm:company", false},
      {"user guardrail cannot evaluate: deny matches", P::kUser, {"admin"}, false, "company", "delete", {}, {}, false, R::kGuardrailDeny, "guardrail:user-limits#mfa-for-delete", true},
      {"user guardrail wrong type: deny matches", P::kUser, {"admin"}, false, "company", "delete", {}, {{"mfa", std::string("yes")}}, false, R::kGuardrailDeny, "guardrail:user-limits#mfa-for-delete", true},
      {"user guardrail not for accounts", P::kServiceAccount, {}, true, "company", "delete", {}, {}, true, R::kAllowRule, "sa:sync#perm:company", false},
      // 4. deny rules of the principal's policy
      {"conditional deny matches", P::kUser, {"editor"}, false, "company", "update", {{"owner", std::string("u2")}}, {}, false, R::kDenyRule, "role:editor#own-company", false},
      {"conditional deny does not match", P::kUser, {"editor"}, false, "company", "update", {{"owner", std::string("u1")}}, {}, true, R::kAllowRule, "role:editor#perm:company", false},
      {"deny fail-closed on missing attribute", P::kUser, {"editor"}, false, "company", "update", {}, {}, false, R::kDenyRule, "role:editor#own-company", true},
      {"deny fail-closed on wrong type", P::kUser, {"editor"}, false, "company", "update", {{"owner", 7.0}}, {}, false, R::kDenyRule, "role:editor#own-company", true},
      {"unconditional deny over allow", P::kUser, {"auditor"}, false, "invoice", "pay", {}, {}, false, R::kDenyRule, "role:auditor#no-pay", false},
      {"deny of one role beats allow of another", P::kUser, {"admin", "auditor"}, false, "invoice", "pay", {}, {}, false, R::kDenyRule, "role:auditor#no-pay", false},
      {"deny of one role beats allow of another (order)", P::kUser, {"auditor", "admin"}, false, "invoice", "pay", {}, {}, false, R::kDenyRule, "role:auditor#no-pay", false},
      {"conditional deny across roles", P::kUser, {"admin", "editor"}, false, "company", "update", {{"owner", std::string("u9")}}, {}, false, R::kDenyRule, "role:editor#own-company", false},
      // 5. allow rules
      {"permission allow", P::kUser, {"editor"}, false, "company", "view", {}, {}, true, R::kAllowRule, "role:editor#perm:company", false},
      {"wildcard action allow", P::kUser, {"editor"}, false, "invoice", "pay", {}, {}, true, R::kAllowRule, "role:editor#perm:invoice", false},
      {"wildcard model allow", P::kUser, {"auditor"}, false, "enduser", "view", {}, {}, true, R::kAllowRule, "role:auditor#perm:enduser", false},
      {"conditional allow matches", P::kUser, {"editor"}, false, "company", "export", {{"arr", 1000.0}, {"segment", std::string("mid")}}, {}, true, R::kAllowRule, "role:editor#big-accounts", false},
      {"conditional allow regex does not match", P::kUser, {"editor"}, false, "company", "export", {{"arr", 1000.0}, {"segment", std::string("midsize")}}, {}, false, R::kNoMatchingAllow, "", false},
      {"conditional allow number too small", P::kUser, {"editor"}, false, "company", "export", {{"arr", 999.0}, {"segment", std::string("mid")}}, {}, false, R::kNoMatchingAllow, "", false},
      {"allow fail-closed on missing attribute", P::kUser, {"editor"}, false, "company", "export", {{"segment", std::string("mid")}}, {}, false, R::kNoMatchingAllow, "", true},
      {"allow fail-closed on wrong type", P::kUser, {"editor"}, false, "company", "export", {{"arr", std::string("big")}, {"segment", std::string("mid")}}, {}, false, R::kNoMatchingAllow, "", true},
      {"list membership allow", P::kUser, {"auditor"}, false, "company", "export", {{"tags", std::vector<std::string>{"x", "audit"}}}, {}, true, R::kAllowRule, "role:auditor#tagged", false},
      {"list membership no", P::kUser, {"auditor"}, false, "company", "export", {{"tags", std::vector<std::string>{"x"}}}, {}, false, R::kNoMatchingAllow, "", false},
      {"first role's allow decides", P::kUser, {"auditor", "admin"}, false, "company", "view", {}, {}, true, R::kAllowRule, "role:auditor#perm:company", false},
      {"account permission", P::kServiceAccount, {}, true, "invoice", "view", {}, {}, true, R::kAllowRule, "sa:sync#perm:invoice", false},
      {"account conditional allow", P::kServiceAccount, {}, true, "enduser", "view", {}, {{"segment", std::string("smb")}}, true, R::kAllowRule, "sa:sync#segment-only", false},
      // 6. nothing allows
      {"no matching allow", P::kUser, {"editor"}, false, "enduser", "view", {}, {}, false, R::kNoMatchingAllow, "", false},
      {"no policies at all", P::kUser, {}, false, "company", "view", {}, {}, false, R::kNoMatchingAllow, "", false},
      {"account without the permission", P::kServiceAccount, {}, true, "invoice", "pay", {}, {}, false, R::kNoMatchingAllow, "", false},
  };
  for (const EvalCase& c : cases) {
    SECTION(c.name) {
      Principal principal;
      principal.type = c.type;
      principal.id = "u1";
      principal.roles = c.roles;
      std::vector<const CompiledPolicy*> policies;
      for (const std::string& r : c.roles) {
        policies.push_back(snapshot->FindRole(r));
        REQUIRE(policies.back() != nullptr);
      }
      if (c.sync_account) policies.push_back(sync.policy.get());
      Attributes resource;
      for (const auto& [k, v] : c.resource) resource.Set(k, v);
      Attributes context;
      for (const auto& [k, v] : c.context) context.Set(k, v);
      Decision d = snapshot->Evaluate(principal, policies, c.model, c.action, resource, context);
      CHECK(d.allowed == c.allowed);
      CHECK(ReasonName(d.reason) == ReasonName(c.reason));
      CHECK(d.rule == c.rule);
      CHECK(d.eval_error == c.eval_error);

      // The interned-id path decides the same.
      if (auto m = snapshot->catalog().FindModel(c.model)) {
        if (auto a = snapshot->catalog().FindAction(*m, c.action)) {
          Decision by_id = snapshot->Evaluate(principal, policies, *m, *a, resource, context);
          CHECK(by_id.allowed == d.allowed);
          CHECK(by_id.reason == d.reason);
          CHECK(by_id.rule == d.rule);
          CHECK(by_id.eval_error == d.eval_error);
        }
      }
    }
  }
}

TEST_CASE("Evaluate with bad interned ids is unknown, never out of bounds", "[evaluate]") {
  auto snapshot = LoadTree();
  const CompiledPolicy* admin = snapshot->FindRole("admin");
  std::vector<const CompiledPolicy*> policies{admin};
  Principal p;
  CHECK(snapshot->Evaluate(p, policies, ModelId{-1}, ActionId{0}, {}, {}).reason == Reason::kUnknownModel);
  CHECK(snapshot->Evaluate(p, policies, ModelId{99}, ActionId{0}, {}, {}).reason == Reason::kUnknownModel);
  CHECK(snapshot->Evaluate(p, policies, ModelId{0}, ActionId{99}, {}, {}).reason == Reason::kUnknownAction);
  CHECK(snapshot->Evaluate(p, policies, ModelId{0}, ActionId{-3}, {}, {}).reason == Reason::kUnknownAction);
}

TEST_CASE("The tenant policy allows create on analytics models only", "[evaluate]") {
  auto snapshot = LoadTree();
  Principal tenant;
  tenant.type = PrincipalType::kTenant;
  const CompiledPolicy* policy = &snapshot->TenantPolicy();
  std::span<const CompiledPolicy* const> policies(&policy, 1);
  Decision create = snapshot->Evaluate(tenant, policies, "metric", "create", {}, {});
  CHECK(create.allowed);
  CHECK(create.rule == "tenant#analytics");
  Decision view = snapshot->Evaluate(tenant, policies, "metric", "view", {}, {});
  CHECK_FALSE(view.allowed);
  CHECK(view.reason == Reason::kNoMatchingAllow);
  CHECK_FALSE(snapshot->Evaluate(tenant, policies, "company", "create", {}, {}).allowed);
}

TEST_CASE("A policy compiled against another catalog is refused fail-closed", "[evaluate]") {
  auto snapshot = LoadTree();
  TreeResult other = CompileSources({{"catalog.yaml", testing::kTestCatalog},
                                     {"roles/a.yaml", "apiVersion: warden/v1\nkind: Role\nname: a\npermissions:\n  company: [view]\n"}},
                                    "r");
  REQUIRE(other.errors.empty());
  const CompiledPolicy* foreign = other.snapshot->FindRole("a");
  std::vector<const CompiledPolicy*> policies{foreign};
  Principal p;
  Decision d = snapshot->Evaluate(p, policies, "company", "view", {}, {});
  CHECK_FALSE(d.allowed);
  CHECK(d.eval_error);
}

TEST_CASE("Escalations: the target's effective permissions must be a subset of the caller's", "[evaluate]") {
  auto snapshot = LoadTree();
  PolicyResult sync = CompileSync(*snapshot);
  REQUIRE(sync.errors.empty());
  using P = PrincipalType;
  using E = std::vector<Escalation>;
  auto roles = [&](std::vector<std::string> names) {
    std::vector<const CompiledPolicy*> out;
    for (const auto& n : names) out.push_back(snapshot->FindRole(n));
    return out;
  };
  const std::vector<const CompiledPolicy*> admin = roles({"admin"}), editor = roles({"editor"}),
                                           auditor = roles({"auditor"}), none;
  const std::vector<const CompiledPolicy*> sync_policy{sync.policy.get()};
  struct Case {
    const char* name;
    P caller_type;
    const std::vector<const CompiledPolicy*>* caller;
    P target_type;
    const std::vector<const CompiledPolicy*>* target;
    E expected;
  };
  const Case cases[] = {
      // The sync account's conditional enduser/view is covered by admin's unconditional
      // allow; its invoice/delete is denied by the service-account guardrail, so not granted.
      // The user guardrail makes admin's own company/delete conditional: the account's
      // unconditional company/delete cannot be shown to be within it.
      {"admin user -> sync account", P::kUser, &admin, P::kServiceAccount, &sync_policy,
       E{{"company", "delete", true}}},
      {"editor user -> sync account", P::kUser, &editor, P::kServiceAccount, &sync_policy,
       E{{"company", "create", false}, {"company", "update", true}, {"company", "delete", false},
         {"company", "export", true}, {"enduser", "view", false}}},
      // A service account holding admin's rules cannot delete invoices (its guardrail), so it
      // cannot make an admin user, who can.
      {"admin-policy account -> admin user", P::kServiceAccount, &admin, P::kUser, &admin,
       E{{"invoice", "delete", false}}},
      {"admin user -> auditor user", P::kUser, &admin, P::kUser, &auditor, E{}},
      // Same role: the conditional export reads only the resource, the same text on both
      // sides matches the same requests.
      {"auditor -> auditor", P::kUser, &auditor, P::kUser, &auditor, E{}},
      // editor's own-company deny reads principal.id: the new editor may update the
      // companies it owns, which the caller may not. Fail closed.
      {"editor -> editor", P::kUser, &editor, P::kUser, &editor, E{{"company", "update", true}}},
      {"nothing -> nothing", P::kUser, &none, P::kServiceAccount, &none, E{}},
      {"nothing -> tenant", P::kUser, &none, P::kTenant, &none, E{}},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    CHECK(snapshot->Escalations({c.caller_type, *c.caller}, {c.target_type, *c.target}) == c.expected);
  }
  const CompiledPolicy* tenant = &snapshot->TenantPolicy();
  CHECK(snapshot->Escalations({P::kUser, editor}, {P::kTenant, std::span(&tenant, 1)}) ==
        E{{"metric", "create", false}});
  CHECK(snapshot->Escalations({P::kUser, admin}, {P::kTenant, std::span(&tenant, 1)}).empty());
}

TEST_CASE("Snapshots swap atomically while threads evaluate", "[evaluate][concurrency]") {
  // Two snapshots that disagree on company/view; every reader checks that the decision
  // matches the snapshot it loaded.
  auto make = [](const char* actions) {
    TreeResult t = CompileSources({{"catalog.yaml", testing::kTestCatalog},
                                   {"roles/r.yaml", std::string("apiVersion: warden/v1\nkind: Role\nname: r\npermissions:\n  company: ") + actions +
                                                        "\nrules:\n  - {name: c, effect: deny, models: [company], actions: [update], when: 'resource.owner != principal.id'}\n"}},
                                  actions);
    REQUIRE(t.errors.empty());
    return t.snapshot;
  };
  std::shared_ptr<const PolicySnapshot> a = make("[view, update]");
  std::shared_ptr<const PolicySnapshot> b = make("[update]");
  std::shared_ptr<const PolicySnapshot> current = a;
  std::atomic<bool> stop{false};
  std::atomic<int> wrong{0};
  std::atomic<long> evaluations{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&] {
      Principal p;
      p.id = "u1";
      Attributes resource;
      resource.Set("owner", std::string("u1"));
      while (!stop.load(std::memory_order_relaxed)) {
        std::shared_ptr<const PolicySnapshot> s = std::atomic_load(&current);
        const CompiledPolicy* role = s->FindRole("r");
        std::span<const CompiledPolicy* const> policies(&role, 1);
        bool expect_view = s->revision() == "[view, update]";
        if (s->Evaluate(p, policies, "company", "view", resource, {}).allowed != expect_view) ++wrong;
        if (!s->Evaluate(p, policies, "company", "update", resource, {}).allowed) ++wrong;
        ++evaluations;
      }
    });
  }
  for (int i = 0; i < 300; ++i) {
    std::shared_ptr<const PolicySnapshot> next = i % 2 == 0 ? make("[update]") : a;
    std::atomic_store(&current, next);
    std::this_thread::yield();
  }
  stop = true;
  for (auto& t : readers) t.join();
  CHECK(wrong == 0);
  CHECK(evaluations > 0);
  (void)b;
}

}  // namespace
}  // namespace warden::engine
