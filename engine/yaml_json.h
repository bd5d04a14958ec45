// YAML text -> JSON value, for the callers that must read YAML without owning yaml-cpp
// (server/ config files, YAML request bodies). yaml-cpp stays inside engine/.
// Thread-safe (no shared state).
#pragma once

#include <string_view>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace warden::engine {

// Scalars become strings unless plainly numeric/boolean/null (unquoted `true`, `42`, `~`);
// quoted scalars stay strings. Anchors and aliases are refused, depth and size bounded, before
// a tree is built (ScanYaml). Errors are InvalidArgument "file:line:col: message".
StatusOr<nlohmann::json> YamlToJson(std::string_view text, std::string_view file);

}  // namespace warden::engine
