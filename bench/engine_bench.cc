// Policy engine benchmarks (DESIGN.md 7: <= 50 ns median without conditions, <= 300 ns with one).
// Run: ./build/bench/engine_bench
#include <benchmark/benchmark.h>

#include <string>

#include "engine/engine.h"

namespace {

using namespace warden::engine;

const char* kCatalog = R"(apiVersion: warden/v1
kind: Catalog
models:
  company: {actions: [view, create, update, delete, export], attributes: {owner: string, segment: string, arr: number}}
  enduser: {actions: [view, create, update, delete, export]}
  invoice: {actions: [view, create, update, delete, export]}
)";

std::shared_ptr<const PolicySnapshot> Snapshot(const std::string& role_body) {
  TreeResult t = CompileSources({{"catalog.yaml", kCatalog},
                                 {"roles/r.yaml", "apiVersion: warden/v1\nkind: Role\nname: r\n" + role_body},
                                 {"guardrails/g.yaml",
                                  "apiVersion: warden/v1\nkind: Guardrail\nname: g\nappliesTo: [service_account]\n"
                                  "rules:\n  - {name: no-delete, effect: deny, models: [invoice], actions: [delete]}\n"}},
                                "bench");
  if (!t.errors.empty()) {
    fprintf(stderr, "%s\n", t.errors[0].ToString().c_str());
    abort();
  }
  return t.snapshot;
}

void RunEval(benchmark::State& state, const std::string& role_body, const char* model, const char* action,
             const Attributes& resource, bool expect_allowed) {
  auto snapshot = Snapshot(role_body);
  const CompiledPolicy* role = snapshot->FindRole("r");
  const CompiledPolicy* policies[] = {role};
  Principal p;
  p.type = PrincipalType::kServiceAccount;
  p.id = "u1";
  ModelId m = *snapshot->catalog().FindModel(model);
  ActionId a = *snapshot->catalog().FindAction(m, action);
  Attributes context;
  if (snapshot->Evaluate(p, policies, m, a, resource, context).allowed != expect_allowed) abort();
  for (auto _ : state) {
    Decision d = snapshot->Evaluate(p, policies, m, a, resource, context);
    benchmark::DoNotOptimize(d);
  }
}

void BM_EvaluateNoCondition(benchmark::State& state) {
  RunEval(state, "permissions:\n  company: [view, update]\n", "company", "update", {}, true);
}
BENCHMARK(BM_EvaluateNoCondition);

void BM_EvaluateNoConditionByName(benchmark::State& state) {
  auto snapshot = Snapshot("permissions:\n  company: [view, update]\n");
  const CompiledPolicy* policies[] = {snapshot->FindRole("r")};
  Principal p;
  p.type = PrincipalType::kServiceAccount;
  Attributes none;
  for (auto _ : state) {
    Decision d = snapshot->Evaluate(p, policies, "company", "update", none, none);
    benchmark::DoNotOptimize(d);
  }
}
BENCHMARK(BM_EvaluateNoConditionByName);

void BM_EvaluateOneCondition(benchmark::State& state) {
  Attributes resource;
  resource.Set("owner", std::string("u1"));
  resource.Set("segment", std::string("enterprise"));
  RunEval(state,
          "permissions:\n  company: [view, update]\nrules:\n"
          "  - {name: own, effect: deny, models: [company], actions: [update], when: resource.owner != principal.id}\n",
          "company", "update", resource, true);
}
BENCHMARK(BM_EvaluateOneCondition);

void BM_EvaluateMatchesCondition(benchmark::State& state) {
  Attributes resource;
  resource.Set("owner", std::string("u1"));
  resource.Set("segment", std::string("enterprise-emea"));
  RunEval(state,
          "rules:\n  - {name: seg, effect: allow, models: [company], actions: [update], "
          "when: 'resource.segment matches \"^(enterprise|mid)-[a-z]+$\"'}\n",
          "company", "update", resource, true);
}
BENCHMARK(BM_EvaluateMatchesCondition);

void BM_Evaluate200RulePolicy(benchmark::State& state) {
  // 200 rules spread over the cells (the deny rules conditional, false here): the evaluated
  // cell runs its 7 conditional denies, then finds the unconditional allow.
  std::string body = "permissions:\n  company: [view]\nrules:\n";
  const char* models[] = {"company", "enduser", "invoice"};
  const char* actions[] = {"view", "create", "update", "delete", "export"};
  for (int i = 0; i < 200; ++i) {
    body += "  - {name: r" + std::to_string(i) + ", effect: " + (i % 2 ? "deny" : "allow") + ", models: [" +
            models[i % 3] + "], actions: [" + actions[(i / 3) % 5] + "]" +
            (i % 2 ? ", when: 'resource.arr > " + std::to_string(1000 + i) + "'" : std::string()) + "}\n";
  }
  Attributes resource;
  resource.Set("arr", 10.0);
  RunEval(state, body, "company", "view", resource, true);
}
BENCHMARK(BM_Evaluate200RulePolicy);

void BM_CompileDefaultTree(benchmark::State& state) {
  std::string dir = std::string(WARDEN_SOURCE_DIR) + "/policies";
  for (auto _ : state) {
    TreeResult t = CompileTree(dir);
    if (!t.errors.empty()) {
      state.SkipWithError(t.errors[0].ToString().c_str());
      break;
    }
    benchmark::DoNotOptimize(t);
  }
}
BENCHMARK(BM_CompileDefaultTree)->Unit(benchmark::kMillisecond);

void BM_CompileSourcesOnly(benchmark::State& state) {
  // Compilation without the git/filesystem work of CompileTree.
  std::string body = "permissions:\n  company: [view, update]\nrules:\n";
  for (int i = 0; i < 50; ++i) {
    body += "  - {name: r" + std::to_string(i) + ", effect: deny, models: [company], actions: [update], when: 'resource.arr > " +
            std::to_string(i) + " && resource.owner != principal.id'}\n";
  }
  for (auto _ : state) {
    auto s = Snapshot(body);
    benchmark::DoNotOptimize(s);
  }
}
BENCHMARK(BM_CompileSourcesOnly)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
