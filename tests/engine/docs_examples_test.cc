// Keeps docs/policies.md and examples/ honest: every ```yaml block of the policy reference
// must be accepted by the real `warden policy check`, the default tree must check and test
// clean, and the sample service-account policies must compile against the default catalog.
//
// How a block is checked (documented at the end of docs/policies.md):
//   - kind: Catalog        checked alone, as the whole tree;
//   - any other kind       checked in a copy of the default catalog.yaml, roles/, guardrails/
//                          and tests/fixtures/; a Role or Guardrail replaces the default of
//                          the same name; a PolicyTest is also run with `warden policy test`;
//                          a ServiceAccountPolicy is also compiled with CompileAccountPolicy.
// Blocks fenced ```yaml-invalid or ```text are skipped.
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

struct YamlBlock {
  int line = 0;  // 1-based line of the opening fence in the markdown file
  std::string text;
};

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

// Every block whose opening fence's info string is exactly "yaml". Other fenced blocks
// (```text, ```yaml-invalid, ```sh, ...) are skipped, including any fences inside them.
std::vector<YamlBlock> ExtractYamlBlocks(const std::string& markdown) {
  std::vector<YamlBlock> blocks;
  std::istringstream in(markdown);
  std::string raw;
  int line_no = 0;
  bool in_fence = false;
  bool collecting = false;
  YamlBlock current;
  while (std::getline(in, raw)) {
    ++line_no;
    std::string line = Trim(raw);
    if (!in_fence) {
      if (line.rfind("```", 0) == 0) {
        in_fence = true;
        collecting = Trim(line.substr(3)) == "yaml";
        current = YamlBlock{line_no, ""};
      }
      continue;
    }
    if (line == "```") {
      in_fence = false;
      if (collecting) blocks.push_back(current);
      collecting = false;
      continue;
    }
    if (collecting) current.text += raw + "\n";
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
  for (const char* sub : {"roles", "guardrails", "tests/fixtures"}) {
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
  const std::vector<YamlBlock> blocks = ExtractYamlBlocks(markdown);

  // The reference shows every kind at least once; an extractor that finds nothing fails here.
  std::set<std::string> kinds;
  for (const auto& block : blocks) kinds.insert(TopLevelField(block.text, "kind"));
  for (const char* kind : {"Catalog", "Role", "ServiceAccountPolicy", "Guardrail", "PolicyTest"}) {
    INFO("no ```yaml example of kind " << kind);
    CHECK(kinds.count(kind) == 1);
  }

  for (const auto& block : blocks) {
    CheckBlock("docs/policies.md:" + std::to_string(block.line), block.text);
  }
}

TEST_CASE("docs/policies.md: invalid examples are rejected", "[docs]") {
  // The ```yaml-invalid blocks illustrate errors; make sure they really are errors, so the
  // document never shows a "mistake" the compiler accepts.
  const std::string markdown = ReadFile(kSourceDir / "docs" / "policies.md");
  std::string relabelled;
  std::istringstream in(markdown);
  std::string line;
  while (std::getline(in, line)) {
    relabelled += (Trim(line) == "```yaml-invalid" ? std::string("```yaml") : line) + "\n";
  }
  std::vector<YamlBlock> all = ExtractYamlBlocks(relabelled);
  std::vector<YamlBlock> valid = ExtractYamlBlocks(markdown);
  std::set<int> valid_lines;
  for (const auto& b : valid) valid_lines.insert(b.line);

  int invalid_count = 0;
  for (const auto& block : all) {
    if (valid_lines.count(block.line)) continue;
    ++invalid_count;
    INFO("docs/policies.md:" << block.line << "\n" << block.text);
    TempDir dir;
    CopyDefaultTree(dir.path());
    WriteFile(dir.path() / "roles" / "docs-invalid-example.yaml", block.text);
    RunResult check = RunWarden({"policy", "check", dir.path().string()});
    INFO("warden policy check:\n" << check.output);
    CHECK(check.exit_code == 3);
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

TEST_CASE("the default policy tree checks and tests clean", "[docs]") {
  RunResult check = RunWarden({"policy", "check", kPolicies.string()});
  INFO("warden policy check policies:\n" << check.output);
  CHECK(check.exit_code == 0);

  RunResult test = RunWarden({"policy", "test", kPolicies.string()});
  INFO("warden policy test policies:\n" << test.output);
  CHECK(test.exit_code == 0);
}
