// Keeps docs/policies.md and examples/ honest: every ```yaml block of the policy reference
// must be accepted by the real `warden policy check`, the default tree must check and test
// clean, and the sample service-account policies must compile against the default catalog.
//
// How a block is checked (documented at the end of docs/policies.md):
//   - kind: Catalog        checked alone, as the whole tree;
//   - any other kind       checked in a copy of the default catalog.yaml, roles/, guardrails/
//                          routes/ and tests/fixtures/; a Role, Guardrail or Routes replaces the default of
//                          the same name; a PolicyTest is also run with `warden policy test`;
//                          a ServiceAccountPolicy is also compiled with CompileAccountPolicy.
// A ```yaml-invalid block must make `warden policy check` exit 3 and, when a ```text block
// follows it, print exactly that text. Other fenced blocks are not checked.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "engine/engine.h"

namespace fs = std::filesystem;

namespace {

const fs::path kSourceDir = WARDEN_SOURCE_DIR;
const fs::path kPolicies = kSourceDir / "policies";
const std::string kWarden = WARDEN_BINARY;

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void WriteFile(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  REQUIRE(out.good());
}

std::string ShellQuote(const std::string& s) {
  std::string quoted = "'";
  for (char c : s) {
    if (c == '\'') {
      quoted += "'\\''";
    } else {
      quoted += c;
    }
  }
  return quoted + "'";
}

struct RunResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

// Runs `warden <args>` and captures its output and exit code.
RunResult RunWarden(const std::vector<std::string>& args) {
  std::string command = ShellQuote(kWarden);
  for (const auto& arg : args) command += " " + ShellQuote(arg);
  command += " 2>&1";
  RunResult result;
  FILE* pipe = popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) result.output.append(buffer, n);
  int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

struct FencedBlock {
  int line = 0;      // 1-based line of the opening fence in the markdown file
  std::string info;  // the fence's info string: "yaml", "yaml-invalid", "text", ...
  std::string text;
};

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

// Every fenced block of a markdown text, in order.
std::vector<FencedBlock> ExtractFencedBlocks(const std::string& markdown) {
  std::vector<FencedBlock> blocks;
  std::istringstream in(markdown);
  std::string raw;
  int line_no = 0;
  bool in_fence = false;
  FencedBlock current;
  while (std::getline(in, raw)) {
    ++line_no;
    std::string line = Trim(raw);
    if (!in_fence) {
      if (line.rfind("```", 0) == 0) {
        in_fence = true;
        current = FencedBlock{line_no, Trim(line.substr(3)), ""};
      }
      continue;
    }
    if (line == "```") {
      in_fence = false;
      blocks.push_back(current);
      continue;
    }
    current.text += raw + "\n";
  }
  return blocks;
}

// The value of a top-level `key: value` line ("" when absent); enough for kind, name, account.
std::string TopLevelField(const std::string& yaml, const std::string& key) {
  std::istringstream in(yaml);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) != 0) continue;
    std::string value = Trim(line.substr(key.size() + 1));
    size_t comment = value.find(" #");
    if (comment != std::string::npos) value = Trim(value.substr(0, comment));
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'')) {
      value = value.substr(1, value.size() - 2);
    }
    return value;
  }
  return "";
}

// A temporary directory removed when the object goes away.
class TempDir {
 public:
  TempDir() {
    std::string templ = (fs::temp_directory_path() / "warden-docs-XXXXXX").string();
    REQUIRE(mkdtemp(templ.data()) != nullptr);
    path_ = templ;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// The default tree without its test suites: what a documentation block is checked against.
void CopyDefaultTree(const fs::path& to) {
  fs::copy_file(kPolicies / "catalog.yaml", to / "catalog.yaml");
  for (const char* sub : {"roles", "guardrails", "routes", "tests/fixtures"}) {
    if (!fs::exists(kPolicies / sub)) continue;
    fs::create_directories(to / sub);
    fs::copy(kPolicies / sub, to / sub, fs::copy_options::recursive);
  }
}

// A file name made of the safe characters of `name`.
std::string FileStem(const std::string& name, const std::string& fallback) {
  std::string stem;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_';
    stem += ok ? c : '-';
  }
  return stem.empty() ? fallback : stem;
}

// Compiles a ServiceAccountPolicy document against the default tree, in process.
std::vector<std::string> CompileAgainstDefaultTree(const std::string& text,
                                                   const std::string& file) {
  std::vector<std::string> errors;
  warden::engine::TreeResult tree = warden::engine::CompileTree(kPolicies.string());
  for (const auto& e : tree.errors) errors.push_back(e.ToString());
  if (!tree.snapshot) return errors;
  std::string account = TopLevelField(text, "account");
  warden::engine::PolicyResult policy =
      warden::engine::CompileAccountPolicy(*tree.snapshot, text, file, account);
  for (const auto& e : policy.errors) errors.push_back(e.ToString());
  if (!policy.policy && errors.empty()) errors.push_back("no policy and no error");
  return errors;
}

// Builds the tree for one block (see the file comment) and checks it with the real binary.
void CheckBlock(const std::string& origin, const std::string& text) {
  const std::string kind = TopLevelField(text, "kind");
  INFO(origin << " (kind: " << kind << ")\n" << text);
  TempDir dir;
  if (kind == "Catalog") {
    WriteFile(dir.path() / "catalog.yaml", text);
  } else {
    CopyDefaultTree(dir.path());
    const std::string name = FileStem(TopLevelField(text, "name"), "example");
    if (kind == "Role") {
      WriteFile(dir.path() / "roles" / (name + ".yaml"), text);
    } else if (kind == "Guardrail") {
      WriteFile(dir.path() / "guardrails" / (name + ".yaml"), text);
    } else if (kind == "Routes") {
      WriteFile(dir.path() / "routes" / (name + ".yaml"), text);
    } else if (kind == "PolicyTest") {
      WriteFile(dir.path() / "tests" / "docs-example.yaml", text);
    } else if (kind == "ServiceAccountPolicy") {
      const std::string account = FileStem(TopLevelField(text, "account"), "account");
      WriteFile(dir.path() / "tests" / "fixtures" / (account + ".yaml"), text);
    } else {
      WriteFile(dir.path() / "docs-example.yaml", text);
    }
  }

  RunResult check = RunWarden({"policy", "check", dir.path().string()});
  INFO("warden policy check:\n" << check.output);
  CHECK(check.exit_code == 0);

  if (kind == "PolicyTest") {
    RunResult test = RunWarden({"policy", "test", dir.path().string()});
    INFO("warden policy test:\n" << test.output);
    CHECK(test.exit_code == 0);
  }
  if (kind == "ServiceAccountPolicy") {
    std::vector<std::string> errors = CompileAgainstDefaultTree(text, origin);
    for (const auto& e : errors) UNSCOPED_INFO(e);
    CHECK(errors.empty());
  }
}

}  // namespace

TEST_CASE("docs/policies.md: every ```yaml example passes warden policy check", "[docs]") {
  const std::string markdown = ReadFile(kSourceDir / "docs" / "policies.md");
  std::vector<FencedBlock> blocks;
  for (const auto& block : ExtractFencedBlocks(markdown)) {
    if (block.info == "yaml") blocks.push_back(block);
  }

  // The reference shows every kind at least once; an extractor that finds nothing fails here.
  std::set<std::string> kinds;
  for (const auto& block : blocks) kinds.insert(TopLevelField(block.text, "kind"));
  for (const char* kind : {"Catalog", "Role", "ServiceAccountPolicy", "Guardrail", "PolicyTest", "Routes"}) {
    INFO("no ```yaml example of kind " << kind);
    CHECK(kinds.count(kind) == 1);
  }

  for (const auto& block : blocks) {
    CheckBlock("docs/policies.md:" + std::to_string(block.line), block.text);
  }
}

TEST_CASE("docs/policies.md: invalid examples fail as the document says", "[docs]") {
  // A ```yaml-invalid block is a Role that must not compile. When it is followed directly by
  // a ```text block, that block is the exact output of `warden policy check` on a tree made
  // of the default catalog, roles and guardrails plus the block as roles/<name>.yaml.
  const std::string markdown = ReadFile(kSourceDir / "docs" / "policies.md");
  const std::vector<FencedBlock> blocks = ExtractFencedBlocks(markdown);
  int invalid_count = 0;
  for (size_t i = 0; i < blocks.size(); ++i) {
    if (blocks[i].info != "yaml-invalid") continue;
    ++invalid_count;
    const std::string& text = blocks[i].text;
    INFO("docs/policies.md:" << blocks[i].line << "\n" << text);
    TempDir dir;
    CopyDefaultTree(dir.path());
    const std::string name = FileStem(TopLevelField(text, "name"), "docs-invalid-example");
    WriteFile(dir.path() / "roles" / (name + ".yaml"), text);
    RunResult check = RunWarden({"policy", "check", dir.path().string()});
    INFO("warden policy check:\n" << check.output);
    CHECK(check.exit_code == 3);
    if (i + 1 < blocks.size() && blocks[i + 1].info == "text") {
      CHECK(check.output == blocks[i + 1].text);
    }
  }
  CHECK(invalid_count > 0);
}

TEST_CASE("examples/*.yaml compile against the default catalog", "[docs]") {
  int count = 0;
  for (const auto& entry : fs::directory_iterator(kSourceDir / "examples")) {
    if (entry.path().extension() != ".yaml") continue;
    ++count;
    CheckBlock("examples/" + entry.path().filename().string(), ReadFile(entry.path()));
  }
  CHECK(count > 0);
}

TEST_CASE("the AuthZEN scenario trees of examples/authzen check clean", "[docs]") {
  int count = 0;
  for (const auto& entry : fs::directory_iterator(kSourceDir / "examples" / "authzen")) {
    if (!fs::is_directory(entry.path() / "policies")) continue;
    ++count;
    RunResult check = RunWarden({"policy", "check", (entry.path() / "policies").string()});
    INFO(entry.path().string() << ":\n" << check.output);
    CHECK(check.exit_code == 0);
  }
  CHECK(count == 5);
}

TEST_CASE("the default policy tree checks and tests clean", "[docs]") {
  RunResult check = RunWarden({"policy", "check", kPolicies.string()});
  INFO("warden policy check policies:\n" << check.output);
  CHECK(check.exit_code == 0);

  RunResult test = RunWarden({"policy", "test", kPolicies.string()});
  INFO("warden policy test policies:\n" << test.output);
  CHECK(test.exit_code == 0);
}
