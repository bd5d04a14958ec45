// Attribute bags from outside input: the bounds of Attributes::Add, through Add, FromJson and
// policy test files, each refusal naming its field.
#include <catch2/catch.hpp>

#include "engine/engine.h"
#include "tests/engine/test_util.h"

namespace warden::engine {
namespace {

nlohmann::json ManyAttributes(size_t n) {
  nlohmann::json j = nlohmann::json::object();
  for (size_t i = 0; i < n; ++i) j["k" + std::to_string(i)] = "v";
  return j;
}

TEST_CASE("Attributes::FromJson enforces the bounds, naming the field", "[attributes]") {
  struct Case {
    const char* what;
    nlohmann::json json;
    std::string message;  // "" = accepted
    std::string field;
  };
  const std::string long_string(kMaxAttributeStringBytes + 1, 's');
  const std::string long_key(kMaxAttributeKeyBytes + 1, 'k');
  const Case cases[] = {
      {"64 attributes", ManyAttributes(kMaxAttributes), "", ""},
      {"65 attributes", ManyAttributes(kMaxAttributes + 1), "resource has more than 64 attributes", "resource"},
      {"90,000 attributes", ManyAttributes(90000), "resource has more than 64 attributes", "resource"},
      {"a 128-byte name", {{std::string(kMaxAttributeKeyBytes, 'k'), 1}}, "", ""},
      {"a 129-byte name", {{long_key, 1}}, "resource: attribute names must be 1-128 bytes", "resource"},
      {"an empty name", {{"", 1}}, "resource: attribute names must be 1-128 bytes", "resource"},
      {"a 2048-byte string", {{"s", std::string(kMaxAttributeStringBytes, 's')}}, "", ""},
      {"a 2049-byte string", {{"s", long_string}}, "resource.s is longer than 2048 bytes", "resource.s"},
      {"a list of 256", {{"l", std::vector<std::string>(kMaxAttributeListItems, "x")}}, "", ""},
      {"a list of 257", {{"l", std::vector<std::string>(kMaxAttributeListItems + 1, "x")}},
       "resource.l has more than 256 items", "resource.l"},
      {"a list with a long item", {{"l", nlohmann::json::array({"x", long_string})}}, "resource.l has an item longer than 2048 bytes", "resource.l"},
      {"a nested list", {{"l", nlohmann::json::array({nlohmann::json::array({"x"})})}}, "resource.l must be an array of strings", "resource.l"},
      {"an object value", {{"o", {{"a", 1}}}}, "resource.o must be a string, number, boolean or array of strings", "resource.o"},
  };
  for (const Case& c : cases) {
    SECTION(c.what) {
      StatusOr<Attributes> a = Attributes::FromJson(c.json, "resource");
      if (c.message.empty()) {
        REQUIRE(a.ok());
        CHECK(a->size() == c.json.size());
      } else {
        REQUIRE_FALSE(a.ok());
        CHECK(a.status().code() == StatusCode::kInvalidArgument);
        CHECK(a.status().message() == c.message);
        CHECK(a.status().field() == c.field);
      }
    }
  }
}

TEST_CASE("Attributes::Add refuses a duplicate name and keeps the first value", "[attributes]") {
  Attributes a;
  REQUIRE(a.Add("owner", std::string("u1"), "context").ok());
  Status again = a.Add("owner", std::string("u2"), "context");
  CHECK(again.message() == "duplicate attribute context.owner");
  CHECK(again.field() == "context.owner");
  REQUIRE(a.Find("owner") != nullptr);
  CHECK(std::get<std::string>(*a.Find("owner")) == "u1");
  CHECK(a.size() == 1);
}

TEST_CASE("Policy test attributes have the same bounds, one error per bag", "[attributes]") {
  std::string resource = "{";
  for (size_t i = 0; i <= kMaxAttributes + 3; ++i) resource += (i ? ", k" : "k") + std::to_string(i) + ": v";
  resource += "}";
  const std::string test = "apiVersion: warden/v1\nkind: PolicyTest\nname: t\nprincipals:\n  a: {role: r}\ncases:\n"
                           "  - {principal: a, model: company, action: view, expect: deny, resource: " + resource + "}\n";
  TreeResult r = CompileSources({{"catalog.yaml", testing::kTestCatalog},
                                 {"roles/r.yaml", "apiVersion: warden/v1\nkind: Role\nname: r\n"},
                                 {"tests/t.yaml", test}},
                                "t");
  // At the 65th key, k64.
  const size_t at = test.find("k64:");
  const size_t column = at - test.rfind('\n', at);
  CHECK(testing::ErrorStrings(r.errors) ==
        std::vector<std::string>{"tests/t.yaml:7:" + std::to_string(column) + ": resource has more than 64 attributes"});
}

}  // namespace
}  // namespace warden::engine
