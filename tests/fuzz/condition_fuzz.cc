// The condition language: engine::Condition::Compile on arbitrary text against a scope with
// typed and untyped attributes, then Evaluate against a fixed principal, resource and context.
// Oracle: a refusal has a message and an offset inside the text (or at its end).
#include <cstdint>
#include <cstdlib>
#include <string>

#include "engine/condition.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace warden::engine;
  static const ConditionScope scope = [] {
    ConditionScope s;
    s.resource_attributes = {{"owner", ValueType::kString}, {"arr", ValueType::kNumber},
                             {"tags", ValueType::kList}, {"active", ValueType::kBool}, {"any", ValueType::kDynamic}};
    return s;
  }();
  static const Principal principal = [] {
    Principal p;
    p.id = "u1";
    p.name = "alice@example.com";
    p.roles = {"csm", "manager"};
    p.attributes.Set("team", std::string("emea"));
    p.attributes.Set("level", 3.0);
    return p;
  }();
  static const Attributes resource = [] {
    Attributes a;
    a.Set("owner", std::string("u1"));
    a.Set("arr", 1500.0);
    a.Set("tags", std::vector<std::string>{"vip", "audit"});
    a.Set("active", true);
    a.Set("any", std::string("x"));
    return a;
  }();
  static const Attributes context = [] {
    Attributes a;
    a.Set("ip", std::string("10.1.2.3"));
    a.Set("hour", 9.0);
    return a;
  }();

  const std::string_view text(reinterpret_cast<const char*>(data), size);
  ConditionError error;
  std::unique_ptr<const Condition> condition = Condition::Compile(text, scope, &error);
  if (!condition) {
    if (error.message.empty() || error.offset < 0 || static_cast<size_t>(error.offset) > size) std::abort();
    return 0;
  }
  (void)condition->Evaluate(principal, resource, context);
  (void)condition->Evaluate(principal, Attributes{}, Attributes{});
  return 0;
}
