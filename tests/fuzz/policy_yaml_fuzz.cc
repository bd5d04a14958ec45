// The policy YAML compiler on arbitrary text: as a role file of a tree with a fixed catalog
// (engine::CompileSources) and as a service-account document (CompileAccountPolicy).
// Oracle beyond "no crash, no leak, no UB": a result has a snapshot/policy exactly when it has
// no errors, and every error is positioned (line and column >= 1) and named.
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>

#include "engine/engine.h"

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
  return 0;
}
