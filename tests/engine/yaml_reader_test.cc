// ScanYaml: anchors and aliases refused at their position, depth and node count bounded before
// a tree is built, on every path that reads YAML (trees, account policies, YamlToJson).
#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

#include "engine/engine.h"
#include "engine/yaml_json.h"
#include "engine/yaml_reader.h"
#include "tests/engine/test_util.h"

namespace warden::engine {
namespace {

constexpr const char* kHeader = "apiVersion: warden/v1\nkind: ServiceAccountPolicy\naccount: a\n";

// `levels` keys, each an anchored list of `width` aliases of the previous one: `width^levels`
// nodes once expanded. The first anchor is at line 4, column 4 (after kHeader).
std::string AliasBomb(int levels, int width) {
  std::string text = kHeader;
  for (int level = 0; level < levels; ++level) {
    const char name = static_cast<char>('a' + level);
    text += std::string(1, name) + ": &" + name + " [";
    for (int i = 0; i < width; ++i) {
      if (i > 0) text += ",";
      text += level == 0 ? std::string("x") : std::string("*") + static_cast<char>(name - 1);
    }
    text += "]\n";
  }
  return text;
}

std::string ScanResult(const std::string& text) {
  std::optional<YamlScanError> e = ScanYaml(text);
  if (!e) return "ok";
  return std::to_string(e->pos.line) + ":" + std::to_string(e->pos.column) + ": " + e->message;
}

TEST_CASE("ScanYaml refuses the first anchor or alias at its position", "[yaml]") {
  struct Case {
    const char* what;
    std::string text;
    std::string expect;
  };
  const std::string ok_flow = "a: " + std::string(kMaxYamlDepth - 1, '[') + std::string(kMaxYamlDepth - 1, ']') + "\n";
  const std::string over_flow = "a: " + std::string(kMaxYamlDepth, '[') + std::string(kMaxYamlDepth, ']') + "\n";
  std::string deep_block;
  for (int i = 0; i <= kMaxYamlDepth; ++i) deep_block += std::string(i, ' ') + "k:\n";
  const Case cases[] = {
      {"plain document", "a: [x, y]\nb: {c: d}\n", "ok"},
      {"several documents", "a: 1\n---\nb: 2\n", "ok"},
      {"anchor on a scalar", "a: &x 1\n", "1:4: anchors and aliases are not allowed"},
      {"anchor on a flow list", "a: b\nc: &l [1, 2]\n", "2:4: anchors and aliases are not allowed"},
      {"anchor on a block map", "a:\n  b: &m\n    c: d\n", "2:6: anchors and aliases are not allowed"},
      {"anchor on a key", "&k a: 1\n", "1:1: anchors and aliases are not allowed"},
      {"anchor on an empty value", "a: &n\nb: 1\n", "1:4: anchors and aliases are not allowed"},
      {"anchor in the second document", "a: 1\n---\nb: [&y 2]\n", "3:5: anchors and aliases are not allowed"},
      {"alias of an undefined anchor", "a: [1, *z]\n", "1:8: invalid YAML: the referenced anchor is not defined"},
      {"the 9x9 alias bomb, at its first anchor", AliasBomb(9, 9), "4:4: anchors and aliases are not allowed"},
      {"flow nesting at the limit", ok_flow, "ok"},
      // The root mapping is the first level: the 64th '[' (at column 4 + 63) is the 65th.
      {"flow nesting one over the limit", over_flow, "1:" + std::to_string(3 + kMaxYamlDepth) + ": nesting deeper than 64 levels"},
      {"block nesting over the limit", deep_block,
       std::to_string(kMaxYamlDepth + 1) + ":" + std::to_string(kMaxYamlDepth + 1) + ": nesting deeper than 64 levels"},
      {"syntax error", "a: [1, 2\n", "2:1: invalid YAML: end of sequence flow not found"},
  };
  for (const Case& c : cases) {
    SECTION(c.what) { CHECK(ScanResult(c.text) == c.expect); }
  }
}

TEST_CASE("ScanYaml bounds the number of nodes", "[yaml]") {
  // A flow list: the list is node 1, item i (1-based) node i + 1 at column 2 + 2 * (i - 1).
  auto list = [](size_t items) {
    std::string text = "[";
    for (size_t i = 0; i < items; ++i) text += i == 0 ? "a" : ",a";
    return text + "]\n";
  };
  CHECK(ScanResult(list(kMaxYamlNodes - 1)) == "ok");
  CHECK(ScanResult(list(kMaxYamlNodes)) ==
        "1:" + std::to_string(2 + 2 * (kMaxYamlNodes - 1)) + ": more than 262144 YAML nodes");
}

TEST_CASE("ScanYaml's node budget follows the input: a fuzzed document yaml-cpp turns into a flood of events", "[yaml]") {
  // Found by the policy_yaml fuzz target (a 10 s timeout under ASan): 2,738 bytes for which
  // yaml-cpp emitted over 262,144 events before the absolute bound stopped it (26 ms in a
  // release build). The budget is 2 nodes a byte + 64.
  std::ifstream in(testing::TestDataDir() + "/yaml_event_flood.yaml");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  REQUIRE(text.size() == 2738);
  CHECK(ScanResult(text) == "2:1: more than " + std::to_string(2 * text.size() + 64) + " YAML nodes");
  // Ordinary documents are far from it: a node or so every few bytes.
  std::string flow = "[";
  for (int i = 0; i < 1000; ++i) flow += i ? ",a" : "a";
  CHECK(ScanResult(flow + "]\n") == "ok");
}

TEST_CASE("The alias bomb is refused by every reader of YAML", "[yaml]") {
  const std::string bomb = AliasBomb(9, 9);
  REQUIRE(bomb.size() < 800);
  const std::string expected = "sa.yaml:4:4: anchors and aliases are not allowed";

  std::vector<CompileError> errors;
  StatusOr<PolicyDoc> doc = ParsePolicyDoc(bomb, "sa.yaml", &errors);
  CHECK_FALSE(doc.ok());
  CHECK(testing::ErrorStrings(errors) == std::vector<std::string>{expected});

  TreeResult tree = CompileSources({{"catalog.yaml", testing::kTestCatalog}}, "t");
  REQUIRE(tree.snapshot);
  PolicyResult account = CompileAccountPolicy(*tree.snapshot, bomb, "sa.yaml", "a");
  CHECK(account.policy == nullptr);
  CHECK(testing::ErrorStrings(account.errors) == std::vector<std::string>{expected});

  TreeResult with_bomb = CompileSources({{"catalog.yaml", testing::kTestCatalog}, {"sa.yaml", bomb}}, "t");
  CHECK(with_bomb.snapshot == nullptr);
  CHECK(testing::ErrorStrings(with_bomb.errors) == std::vector<std::string>{expected});

  StatusOr<nlohmann::json> json = YamlToJson(bomb, "sa.yaml");
  CHECK(json.status().message() == expected);
}

TEST_CASE("A tree file with an anchor reports file:line:col", "[yaml]") {
  TreeResult r = CompileSources({{"catalog.yaml", testing::kTestCatalog},
                                 {"roles/viewer.yaml",
                                  "apiVersion: warden/v1\nkind: Role\nname: viewer\npermissions:\n"
                                  "  company: &views [view]\n  enduser: *views\n"}},
                                "t");
  CHECK(r.snapshot == nullptr);
  CHECK(testing::ErrorStrings(r.errors) ==
        std::vector<std::string>{"roles/viewer.yaml:5:12: anchors and aliases are not allowed"});
}

}  // namespace
}  // namespace warden::engine
