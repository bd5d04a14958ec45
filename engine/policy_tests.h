// The PolicyTest runner (DESIGN.md 3.3): runs every `kind: PolicyTest` case of a compiled
// tree against its snapshot and reports failures and rule coverage. Used by
// `warden policy test`. Reentrant; reads only the immutable snapshot.
#pragma once

#include <string>
#include <vector>

#include "engine/engine.h"

namespace warden::engine {

struct PolicyTestCaseResult {
  std::string file;   // the PolicyTest file
  int line = 0;       // position of the case
  int column = 0;
  std::string suite;
  std::string name;   // the case's optional name
  std::string principal;
  std::string model;
  std::string action;
  bool expect_allow = false;
  std::string expect_rule;    // empty when the case does not check it
  std::string expect_reason;  // empty when the case does not check it
  bool allowed = false;
  std::string reason;  // ReasonName of the decision
  std::string rule;    // deciding rule id, empty when none
  bool eval_error = false;
  bool passed = false;
};

struct PolicyTestReport {
  std::vector<PolicyTestCaseResult> results;  // in file, then case order
  int passed = 0;
  int failed = 0;
  // Rule ids of the tree's roles and guardrails that decided no case, sorted.
  std::vector<std::string> uncovered_rules;
};

// Runs the suites of a snapshot built by CompileTree/CompileSources.
PolicyTestReport RunPolicyTests(const PolicySnapshot& snapshot);

}  // namespace warden::engine
