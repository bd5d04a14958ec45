// The condition language: parse errors with offsets, and three-valued evaluation.
#include <catch2/catch.hpp>

#include "engine/condition.h"

namespace warden::engine {
namespace {

ConditionScope CompanyScope() {
  ConditionScope s;
  s.resource_attributes = {{"owner", ValueType::kString}, {"arr", ValueType::kNumber},
                           {"tags", ValueType::kList}, {"active", ValueType::kBool}};
  s.resource_closed = true;
  return s;
}

TEST_CASE("Condition parse and type errors carry the offending token's offset", "[condition]") {
  struct Case {
    const char* text;
    int offset;
    const char* message;
  };
  const Case cases[] = {
      {"", 0, "empty condition"},
      {"resource.owner ==", 17, "expected a value, found end of expression"},
      {"resource.owner == 'x' resource.arr", 22, "unexpected 'resource'"},
      {"(resource.active", 16, "expected ')', found end of expression"},
      {"resource.owner == 'abc", 18, "unterminated string literal"},
      {"resource.owner & 'x'", 15, "unexpected '&' (use '&&')"},
      {"resource.owner # 'x'", 15, "unexpected character '#'"},
      {"resource.", 9, "expected an attribute name after '.', found end of expression"},
      {"resource", 8, "expected '.' and an attribute name after 'resource'"},
      {"resource.arr in 'x'", 16, "right side of 'in' must be a list"},
      {"resource.arr in ['a', 'b']", 16, "type mismatch: number in a list holding a string"},
      {"['a'] == resource.owner", 0, "a list literal is only allowed on the right of 'in'"},
      {"resource.owner matches '['", 23, "invalid regular expression: missing ]: ["},
      {"resource.owner startsWith 3", 15, "type mismatch: string startsWith number"},
      {"resource.active && resource.arr", 19, "operand of '&&' must be boolean"},
      {"!resource.owner", 1, "operand of '!' must be boolean"},
      {"resource.tags == 'a'", 14, "type mismatch: list == string"},
      {"has(resource.nope)", 4, "unknown attribute 'resource.nope' (not declared by the rule's models in the catalog)"},
      {"resource.arr < 1.2.3", 15, "invalid number"},
  };
  for (const Case& c : cases) {
    SECTION(c.text) {
      ConditionError err;
      auto cond = Condition::Compile(c.text, CompanyScope(), &err);
      CHECK(cond == nullptr);
      CHECK(err.offset == c.offset);
      CHECK(err.message == c.message);
    }
  }
  SECTION("nesting is bounded") {
    ConditionError err;
    std::string deep(200, '(');
    deep += "resource.active";
    deep += std::string(200, ')');
    CHECK(Condition::Compile(deep, CompanyScope(), &err) == nullptr);
    CHECK(err.message == "expression nested too deeply");
    std::string nots(500, '!');
    CHECK(Condition::Compile(nots + "resource.active", CompanyScope(), &err) == nullptr);
  }
}

TEST_CASE("Conditions evaluate to true, false or cannot-evaluate", "[condition]") {
  Principal principal;
  principal.id = "u1";
  principal.name = "Alice";
  principal.roles = {"csm", "viewer"};
  principal.type = PrincipalType::kUser;
  principal.attributes.Set("team", std::string("emea"));
  Attributes resource;
  resource.Set("owner", std::string("u1"));
  resource.Set("arr", 1500.0);
  resource.Set("tags", std::vector<std::string>{"vip", "audit"});
  resource.Set("active", true);
  resource.Set("email", std::string("bob@example.com"));
  Attributes context;
  context.Set("ip", std::string("10.1.2.3"));
  context.Set("hour", 9.0);

  struct Case {
    const char* text;
    EvalResult expected;
  };
  using E = EvalResult;
  const Case cases[] = {
      {"resource.owner == principal.id", E::kTrue},
      {"resource.owner != principal.id", E::kFalse},
      {"resource.arr > 1000", E::kTrue},
      {"resource.arr <= 1000", E::kFalse},
      {"resource.arr >= 1500 && resource.arr < 1500.5", E::kTrue},
      {"resource.active", E::kTrue},
      {"!resource.active", E::kFalse},
      {"resource.active == true", E::kTrue},
      {"'vip' in resource.tags", E::kTrue},
      {"'gold' in resource.tags", E::kFalse},
      {"principal.role == 'csm'", E::kTrue},
      {"'viewer' in principal.roles", E::kTrue},
      {"principal.type == 'user'", E::kTrue},
      {"principal.name startsWith 'Al'", E::kTrue},
      {"principal.team in ['emea', 'apac']", E::kTrue},
      {"context.hour in [8, 9, 10]", E::kTrue},
      {"context.ip startsWith '10.'", E::kTrue},
      {"resource.email endsWith '@example.com'", E::kTrue},
      {"resource.email matches '^[a-z]+@example\\\\.com$'", E::kTrue},
      {"resource.email matches 'EXAMPLE'", E::kFalse},
      {"has(resource.owner)", E::kTrue},
      {"has(resource.segment)", E::kFalse},
      {"has(context.missing) && context.missing == 1", E::kFalse},
      {"!has(context.missing) || context.missing == 1", E::kTrue},
      // cannot evaluate: missing attributes, runtime type mismatches
      {"resource.segment == 'smb'", E::kError},
      {"context.missing == 1", E::kError},
      {"!(context.missing == 1)", E::kError},
      {"context.ip > 3", E::kError},
      {"context.hour == 'nine'", E::kError},
      {"context.ip", E::kError},
      {"context.missing == 1 && resource.active", E::kError},
      {"context.missing == 1 && !resource.active", E::kFalse},
      {"context.missing == 1 || resource.active", E::kTrue},
      {"context.missing == 1 || !resource.active", E::kError},
      {"context.hour in resource.tags", E::kError},
  };
  for (const Case& c : cases) {
    SECTION(c.text) {
      ConditionError err;
      ConditionScope scope;  // open: resource attributes untyped
      auto cond = Condition::Compile(c.text, scope, &err);
      INFO(err.message);
      REQUIRE(cond != nullptr);
      CHECK(static_cast<int>(cond->Evaluate(principal, resource, context)) == static_cast<int>(c.expected));
    }
  }
}

TEST_CASE("A service account has no principal.role: cannot evaluate", "[condition]") {
  Principal sa;
  sa.type = PrincipalType::kServiceAccount;
  ConditionError err;
  auto cond = Condition::Compile("principal.role == 'x'", ConditionScope{}, &err);
  REQUIRE(cond);
  CHECK(cond->Evaluate(sa, {}, {}) == EvalResult::kError);
  auto type = Condition::Compile("principal.type == 'service_account'", ConditionScope{}, &err);
  REQUIRE(type);
  CHECK(type->Evaluate(sa, {}, {}) == EvalResult::kTrue);
}

}  // namespace
}  // namespace warden::engine
