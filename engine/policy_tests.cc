#include "engine/policy_tests.h"

#include <set>

#include "engine/compiler.h"

namespace warden::engine {

PolicyTestReport RunPolicyTests(const PolicySnapshot& snapshot) {
  PolicyTestReport report;
  const auto* impl = dynamic_cast<const SnapshotImpl*>(&snapshot);
  if (impl == nullptr) return report;
  std::set<std::string> decided;
  for (const TestSuite& suite : impl->suites_) {
    for (const TestCase& tc : suite.cases) {
      const TestPrincipal* tp = nullptr;
      for (const TestPrincipal& p : suite.principals) {
        if (p.key == tc.principal) tp = &p;
      }
      std::vector<const CompiledPolicy*> policies;
      if (tp != nullptr) {
        for (const std::string& role : tp->principal.roles) policies.push_back(impl->FindRole(role));
        if (!tp->policy_file.empty()) {
          auto it = impl->fixtures_.find(tp->policy_file);
          if (it != impl->fixtures_.end()) policies.push_back(it->second.get());
        }
      }
      Principal principal = tp != nullptr ? tp->principal : Principal{};
      Decision d = impl->Evaluate(principal, policies, tc.model, tc.action, tc.resource, tc.context);
      PolicyTestCaseResult r;
      r.file = suite.file;
      r.line = tc.pos.line;
      r.column = tc.pos.column;
      r.suite = suite.name;
      r.name = tc.name;
      r.principal = tc.principal;
      r.model = tc.model;
      r.action = tc.action;
      r.expect_allow = tc.expect_allow;
      r.expect_rule = tc.rule;
      r.expect_reason = tc.reason;
      r.allowed = d.allowed;
      r.reason = std::string(ReasonName(d.reason));
      r.rule = std::string(d.rule);
      r.eval_error = d.eval_error;
      r.passed = tp != nullptr && d.allowed == tc.expect_allow && (tc.rule.empty() || tc.rule == r.rule) &&
                 (tc.reason.empty() || tc.reason == r.reason);
      if (!r.rule.empty()) decided.insert(r.rule);
      (r.passed ? report.passed : report.failed)++;
      report.results.push_back(std::move(r));
    }
  }
  std::set<std::string> all;
  for (const auto& [name, policy] : impl->roles_) {
    for (std::string_view id : policy->rule_ids) all.emplace(id);
  }
  for (const auto& g : impl->guardrails_) {
    for (std::string_view id : g->rule_ids) all.emplace(id);
  }
  for (const std::string& id : all) {
    if (!decided.count(id)) report.uncovered_rules.push_back(id);
  }
  return report;
}

}  // namespace warden::engine
