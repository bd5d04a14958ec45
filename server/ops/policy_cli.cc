// `warden policy check|test|explain` over engine/ (DESIGN.md 3.3).
#include "server/ops/policy_cli.h"

#include <charconv>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/engine.h"
#include "engine/policy_tests.h"

namespace warden::server {

namespace {

constexpr int kExitOk = 0;
constexpr int kExitUsage = 2;
constexpr int kExitCompileErrors = 3;
constexpr int kExitFailedCases = 4;

struct PolicyOptions {
  std::string dir;
  std::string format = "text";
  std::vector<std::string> roles;
  std::string principal_id = "cli";
  std::string model;
  std::string action;
  std::vector<std::string> resource;
  std::vector<std::string> context;
};

void PrintErrors(const std::vector<engine::CompileError>& errors) {
  for (const auto& e : errors) std::cout << e.ToString() << "\n";
}

int RunCheck(const PolicyOptions& o) {
  engine::TreeResult tree = engine::CompileTree(o.dir);
  if (o.format == "json") {
    nlohmann::json errors = nlohmann::json::array();
    for (const auto& e : tree.errors) errors.push_back(e.ToJson());
    std::cout << nlohmann::json{{"errors", errors}}.dump(2) << "\n";
  } else if (!tree.errors.empty()) {
    PrintErrors(tree.errors);
    std::cout << tree.errors.size() << (tree.errors.size() == 1 ? " error" : " errors") << "\n";
  } else {
    std::cout << "ok: " << tree.snapshot->RoleNames().size() << " roles, "
              << tree.snapshot->catalog().models().size() << " models\n";
  }
  return tree.errors.empty() ? kExitOk : kExitCompileErrors;
}

std::string Expectation(const engine::PolicyTestCaseResult& r) {
  std::string s = r.expect_allow ? "allow" : "deny";
  if (!r.expect_reason.empty()) s += " " + r.expect_reason;
  if (!r.expect_rule.empty()) s += " rule " + r.expect_rule;
  return s;
}

int RunTest(const PolicyOptions& o) {
  engine::TreeResult tree = engine::CompileTree(o.dir);
  if (!tree.errors.empty()) {
    PrintErrors(tree.errors);
    std::cout << tree.errors.size() << (tree.errors.size() == 1 ? " error" : " errors") << "\n";
    return kExitCompileErrors;
  }
  engine::PolicyTestReport report = engine::RunPolicyTests(*tree.snapshot);
  for (const auto& r : report.results) {
    if (r.passed) continue;
    std::cout << "FAIL " << r.file << ":" << r.line << ":" << r.column << ": " << r.principal << " "
              << r.model << " " << r.action << ": expected " << Expectation(r) << ", got "
              << (r.allowed ? "allow" : "deny") << " " << r.reason << " rule "
              << (r.rule.empty() ? "(none)" : r.rule) << (r.eval_error ? " (eval_error)" : "") << "\n";
  }
  std::cout << report.passed << " passed, " << report.failed << " failed\n";
  if (report.uncovered_rules.empty()) {
    std::cout << "coverage: every rule decided at least one case\n";
  } else {
    std::cout << "coverage: " << report.uncovered_rules.size() << " rules never decided a case:\n";
    for (const std::string& id : report.uncovered_rules) std::cout << "  " << id << "\n";
  }
  return report.failed > 0 ? kExitFailedCases : kExitOk;
}

// "k=v": true/false are booleans, numbers are numbers, [a,b] is a list of strings.
bool ParseAssignments(const std::vector<std::string>& items, const char* what, engine::Attributes* out) {
  for (const std::string& item : items) {
    size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::cerr << "invalid " << what << " '" << item << "' (expected key=value)\n";
      return false;
    }
    std::string key = item.substr(0, eq);
    std::string value = item.substr(eq + 1);
    double num = 0;
    auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), num);
    if (value == "true" || value == "false") {
      out->Set(key, value == "true");
    } else if (!value.empty() && ec == std::errc() && ptr == value.data() + value.size()) {
      out->Set(key, num);
    } else if (value.size() >= 2 && value.front() == '[' && value.back() == ']') {
      std::vector<std::string> list;
      std::string inner = value.substr(1, value.size() - 2);
      size_t start = 0;
      while (!inner.empty() && start <= inner.size()) {
        size_t comma = inner.find(',', start);
        if (comma == std::string::npos) comma = inner.size();
        list.push_back(inner.substr(start, comma - start));
        start = comma + 1;
      }
      out->Set(key, std::move(list));
    } else {
      out->Set(key, value);
    }
  }
  return true;
}

int RunExplain(const PolicyOptions& o) {
  engine::TreeResult tree = engine::CompileTree(o.dir);
  if (!tree.errors.empty()) {
    PrintErrors(tree.errors);
    return kExitCompileErrors;
  }
  engine::Principal principal;
  principal.type = engine::PrincipalType::kUser;
  principal.id = o.principal_id;
  principal.name = o.principal_id;
  std::vector<const engine::CompiledPolicy*> policies;
  for (const std::string& role : o.roles) {
    const engine::CompiledPolicy* p = tree.snapshot->FindRole(role);
    if (p == nullptr) {
      std::cerr << "unknown role '" << role << "'\n";
      return kExitUsage;
    }
    principal.roles.push_back(role);
    policies.push_back(p);
  }
  engine::Attributes resource;
  engine::Attributes context;
  if (!ParseAssignments(o.resource, "--resource", &resource) ||
      !ParseAssignments(o.context, "--context", &context)) {
    return kExitUsage;
  }
  engine::Decision d = tree.snapshot->Evaluate(principal, policies, o.model, o.action, resource, context);
  std::cout << "decision: " << (d.allowed ? "allow" : "deny") << "\n";
  std::cout << "reason: " << engine::ReasonName(d.reason) << "\n";
  std::cout << "rule: " << (d.rule.empty() ? "(none)" : std::string(d.rule)) << "\n";
  if (d.eval_error) std::cout << "eval_error: true (a condition could not be evaluated; handled fail-closed)\n";
  return kExitOk;
}

}  // namespace

void AddPolicyCommands(CLI::App& app, int* exit_code) {
  auto opts = std::make_shared<PolicyOptions>();
  CLI::App* policy = app.add_subcommand("policy", "Check, test and explain a policy tree");
  policy->require_subcommand(1);

  CLI::App* check = policy->add_subcommand("check", "Compile a policy tree and print every error (exit 3 on errors)");
  check->add_option("DIR", opts->dir, "Policy tree (catalog.yaml, roles/, guardrails/, tests/)")->required();
  check->add_option("--format", opts->format, "Output format: text or json")
      ->check(CLI::IsMember({"text", "json"}));
  check->callback([opts, exit_code] { *exit_code = RunCheck(*opts); });

  CLI::App* test = policy->add_subcommand(
      "test", "Compile a policy tree and run its PolicyTest cases (exit 3 on errors, 4 on failed cases)");
  test->add_option("DIR", opts->dir, "Policy tree")->required();
  test->callback([opts, exit_code] { *exit_code = RunTest(*opts); });

  CLI::App* explain = policy->add_subcommand("explain", "Evaluate one decision for a user with the given roles");
  explain->add_option("DIR", opts->dir, "Policy tree")->required();
  explain->add_option("MODEL", opts->model, "Model, e.g. company")->required();
  explain->add_option("ACTION", opts->action, "Action, e.g. update")->required();
  explain->add_option("--role", opts->roles, "Role of the user (repeatable)")->required()->allow_extra_args(false);
  explain->add_option("--id", opts->principal_id, "principal.id of the user (default: cli)");
  explain->add_option("--resource", opts->resource, "Resource attribute key=value (repeatable)")->allow_extra_args(false);
  explain->add_option("--context", opts->context, "Context attribute key=value (repeatable)")->allow_extra_args(false);
  explain->callback([opts, exit_code] { *exit_code = RunExplain(*opts); });
}

}  // namespace warden::server
