// Golden-file tests of `warden policy check|test|explain`: runs the built binary and compares
// exit code and output with tests/testdata/cli/*.golden. WARDEN_UPDATE_GOLDEN=1 rewrites them.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include <sys/wait.h>

#include <catch2/catch.hpp>

namespace {

struct RunResult {
  int exit_code = -1;
  std::string output;
};

RunResult Run(const std::string& args) {
  std::string cmd = "cd '" WARDEN_SOURCE_DIR "' && '" WARDEN_BINARY "' " + args + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  REQUIRE(pipe != nullptr);
  RunResult r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) r.output.append(buf, n);
  int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST_CASE("policy CLI output matches the golden files", "[cli]") {
  struct Case {
    const char* golden;
    const char* args;
    int exit_code;
  };
  const Case cases[] = {
      {"check_ok", "policy check tests/testdata/engine/tree", 0},
      {"check_ok_json", "policy check tests/testdata/engine/tree --format json", 0},
      {"check_errors", "policy check tests/testdata/cli/errors", 3},
      {"check_errors_json", "policy check --format json tests/testdata/cli/errors", 3},
      {"check_missing_dir", "policy check tests/testdata/cli/no-such-dir", 3},
      {"test_ok", "policy test tests/testdata/engine/tree", 0},
      {"test_failing", "policy test tests/testdata/cli/failing", 4},
      {"test_errors", "policy test tests/testdata/cli/errors", 3},
      {"explain_allow", "policy explain tests/testdata/cli/failing --role csm --id u1 company update --resource owner=u1", 0},
      {"explain_deny", "policy explain tests/testdata/cli/failing --role csm --id u1 company update --resource owner=u2", 0},
      {"explain_fail_closed", "policy explain tests/testdata/cli/failing --role csm company update", 0},
      {"explain_typed_values", "policy explain tests/testdata/engine/tree --role editor company export --resource arr=1000 --resource segment=mid", 0},
      {"explain_unknown_action", "policy explain tests/testdata/cli/failing --role csm company fly", 0},
      {"explain_unknown_role", "policy explain tests/testdata/cli/failing --role nobody company view", 2},
  };
  const bool update = std::getenv("WARDEN_UPDATE_GOLDEN") != nullptr &&
                      std::string(std::getenv("WARDEN_UPDATE_GOLDEN")) == "1";
  for (const Case& c : cases) {
    SECTION(c.golden) {
      RunResult r = Run(c.args);
      std::string actual = "$ warden " + std::string(c.args) + "\nexit: " + std::to_string(r.exit_code) + "\n" + r.output;
      std::string path = std::string(WARDEN_SOURCE_DIR) + "/tests/testdata/cli/" + c.golden + ".golden";
      if (update) {
        std::ofstream(path) << actual;
      }
      CHECK(r.exit_code == c.exit_code);
      CHECK(actual == ReadFile(path));
    }
  }
}

TEST_CASE("every policy command has --help", "[cli]") {
  for (const char* cmd : {"policy", "policy check", "policy test", "policy explain"}) {
    SECTION(cmd) {
      RunResult r = Run(std::string(cmd) + " --help");
      CHECK(r.exit_code == 0);
      CHECK(r.output.find("Usage:") != std::string::npos);
    }
  }
}

}  // namespace
