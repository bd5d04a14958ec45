// The policy YAML compiler on arbitrary text: as a role file of a tree with a fixed catalog
// (engine::CompileSources), as a service-account document (CompileAccountPolicy), and as
// YAML read for the server (YamlToJson: config files).
// Oracle beyond "no crash, no leak, no UB": a result has a snapshot/policy exactly when it has
// no errors, and every error is positioned (line and column >= 1) and named. An account
// document that compiles also parses (ParsePolicyDoc), and its re-emitted text (what a copy
// of the account stores, EmitPolicyYaml) compiles too.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>

#include "engine/engine.h"
#include "engine/yaml_json.h"

namespace {

constexpr const char* kCatalog = R"(apiVersion: warden/v1
kind: Catalog
models:
  company: {actions: [view, create, update, delete, export], attributes: {owner: string, segment: string, arr: number, tags: list, active: bool}}
  enduser: {actions: [view, create, update]}
analytics: [enduser]
)";

void CheckErrors(const std::vector<warden::engine::CompileError>& errors) {
  for (const auto& e : errors) {
    if (e.line < 1 || e.column < 1 || e.message.empty() || e.file.empty()) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace warden;
  using namespace warden::engine;
  static const TreeResult base = CompileSources({{"catalog.yaml", kCatalog}}, "fuzz");
  if (!base.snapshot) std::abort();
  const std::string text(reinterpret_cast<const char*>(data), size);

  TreeResult tree = CompileSources({{"catalog.yaml", kCatalog}, {"roles/r.yaml", text}}, "fuzz");
  if ((tree.snapshot == nullptr) == tree.errors.empty()) std::abort();
  CheckErrors(tree.errors);
  if (tree.snapshot) {
    Principal p;
    for (const std::string& role : tree.snapshot->RoleNames()) {
      const CompiledPolicy* policy = tree.snapshot->FindRole(role);
      (void)tree.snapshot->Evaluate(p, std::span<const CompiledPolicy* const>(&policy, 1), "company", "update", {}, {});
    }
  }

  PolicyResult account = CompileAccountPolicy(*base.snapshot, text, "sa.yaml", "fuzz");
  if ((account.policy == nullptr) == account.errors.empty()) std::abort();
  CheckErrors(account.errors);
  if (account.policy) {
    std::vector<CompileError> errors;
    StatusOr<PolicyDoc> doc = ParsePolicyDoc(text, "sa.yaml", &errors);
    if (!doc.ok()) {
      std::fprintf(stderr, "compiles but does not parse: %s\n", doc.status().message().c_str());
      std::abort();
    }
    const std::string emitted = EmitPolicyYaml(*doc);
    PolicyResult again = CompileAccountPolicy(*base.snapshot, emitted, "copy.yaml", "fuzz");
    if (!again.policy) {
      std::fprintf(stderr, "the re-emitted document does not compile: %s\n%s\n", again.errors[0].ToString().c_str(),
                   emitted.c_str());
      std::abort();
    }
  }

  if (auto json = YamlToJson(text, "c.yaml"); !json.ok() && json.status().message().rfind("c.yaml:", 0) != 0) std::abort();
  return 0;
}
