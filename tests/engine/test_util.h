// Helpers shared by the engine tests.
#pragma once

#include <string>
#include <vector>

#include "engine/engine.h"

namespace warden::engine::testing {

inline std::string TestDataDir() { return std::string(WARDEN_SOURCE_DIR) + "/tests/testdata/engine"; }

inline std::vector<std::string> ErrorStrings(const std::vector<CompileError>& errors) {
  std::vector<std::string> out;
  for (const auto& e : errors) out.push_back(e.ToString());
  return out;
}

// The catalog most in-memory test trees compile against.
inline constexpr const char* kTestCatalog = R"(apiVersion: warden/v1
kind: Catalog
models:
  company: {actions: [view, create, update, delete, export], attributes: {owner: string, segment: string, arr: number, tags: list, active: bool}}
  enduser: {actions: [view, create, update]}
  invoice: {actions: [view, delete, pay]}
analytics: [enduser]
)";

}  // namespace warden::engine::testing
