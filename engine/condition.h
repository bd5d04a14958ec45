// Conditions (`when:`, DESIGN.md 3.2): a hand-written lexer and recursive-descent parser that
// turn the expression text into a flat AST once, at compile time, type-checked against the
// catalog's attribute types. `matches` patterns are compiled to RE2 here, never per request.
//
// Evaluation is three-valued (true, false, cannot evaluate) so that callers can fail closed:
// a missing attribute or a runtime type mismatch yields kError. `a && b` is false as soon as
// one side is false, `a || b` true as soon as one side is true, even when the other side is
// kError (so `has(resource.x) && resource.x == ...` never errors).
//
// Thread-safety: a Condition is immutable after Compile; Evaluate is const, lock-free and
// does not allocate.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/engine.h"

namespace re2 {
class RE2;
}

namespace warden::engine {

enum class ValueType : uint8_t { kDynamic, kBool, kNumber, kString, kList, kLiteralList };

// "string", "number", "bool", "list" (catalog spelling); kDynamic for anything else.
std::optional<ValueType> ParseValueType(std::string_view name);
std::string_view ValueTypeName(ValueType type);

// What a condition may refer to: the resource attributes declared by the models of its rule.
struct ConditionScope {
  std::vector<std::pair<std::string, ValueType>> resource_attributes;  // kDynamic when models disagree
  // True when every model of the rule declares attributes: an undeclared resource attribute
  // is then a compile error. Otherwise undeclared attributes are untyped (checked at eval).
  bool resource_closed = false;
};

struct ConditionError {
  int offset = 0;  // byte offset of the offending token in the expression text
  std::string message;
};

enum class EvalResult : uint8_t { kFalse, kTrue, kError };

class Condition {
 public:
  // Returns null and fills *error when `text` does not parse or does not type-check.
  static std::unique_ptr<const Condition> Compile(std::string_view text,
                                                  const ConditionScope& scope,
                                                  ConditionError* error);
  ~Condition();

  EvalResult Evaluate(const Principal& principal, const Attributes& resource,
                      const Attributes& context) const;
  const std::string& text() const { return text_; }
  // True when the expression reads any principal.* attribute: its outcome then depends on who
  // asks, so two principals' rules with the same text need not agree (no-escalation analysis).
  bool reads_principal() const { return reads_principal_; }

  struct Node;

 private:
  Condition();
  std::string text_;
  std::vector<Node> nodes_;
  int root_ = -1;
  bool reads_principal_ = false;
};

}  // namespace warden::engine
