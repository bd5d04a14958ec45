// The JSON permissions body (PUT /v1/service-accounts/{id}/permissions): nlohmann parse,
// engine::PolicyDocFromJson, then the YAML the server stores (EmitPolicyYaml) read back by
// ParsePolicyDoc. PolicyDocFromJson checks shapes only; values (an empty effect, say) are
// judged by the YAML reader, whose errors the server names by JSON field (PolicyFieldIndex).
// Oracle: a document the YAML reader accepts comes back unchanged (engine.h:
// ParsePolicyDoc(EmitPolicyYaml(d)) == d); one it refuses is refused for its values, never
// because the emitted text is not valid YAML, and every error names a JSON field.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/engine.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace warden;
  using namespace warden::engine;
  nlohmann::json json = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return 0;
  StatusOr<PolicyDoc> doc = PolicyDocFromJson(json);
  if (!doc.ok()) return 0;
  const std::string yaml = EmitPolicyYaml(*doc);
  std::vector<CompileError> errors;
  StatusOr<PolicyDoc> back = ParsePolicyDoc(yaml, "permissions.yaml", &errors);
  if (back.ok()) {
    if (*back == *doc) return 0;
    std::fprintf(stderr, "round trip changed the document:\n%s\n", yaml.c_str());
    std::abort();
  }
  const PolicyFieldIndex index(yaml);
  for (const CompileError& e : errors) {
    if (e.message.rfind("invalid YAML", 0) == 0 || index.At(e.line, e.column).empty()) {
      std::fprintf(stderr, "error without a JSON field: %s\n%s\n", e.ToString().c_str(), yaml.c_str());
      std::abort();
    }
  }
  return 0;
}
