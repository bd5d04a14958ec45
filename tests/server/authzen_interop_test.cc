// The public AuthZEN interop scenarios (../shared/authzen, read at test time: cases nobody on
// this project wrote) against the real binary, each scenario served from its tree under
// examples/authzen/ with no scenario-specific code, over plain HTTP and over TLS. Comparison
// is exact, as the upstream harnesses do it: an evaluation answer is {"decision": b} and
// nothing more, a batch {"evaluations": [...]} position by position, a search the same set
// of results with no page object (no page.limit is sent). Each run prints its counts.
#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "tests/pg_test_schema.h"
#include "tests/server/check_helpers.h"
#include "tests/server/harness.h"

namespace warden::testing {
namespace {

using nlohmann::json;

std::string FixturesDir() {
  if (const char* dir = std::getenv("WARDEN_AUTHZEN_FIXTURES")) return dir;
  return std::string(WARDEN_SOURCE_DIR) + "/../shared/authzen";
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  INFO(path);
  REQUIRE(in);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

json ReadJson(const std::string& path) { return json::parse(ReadFile(path)); }

std::string ExampleDir(const std::string& scenario) {
  return std::string(WARDEN_SOURCE_DIR) + "/examples/authzen/" + scenario;
}

// A server for one scenario with its directory imported and a PEP token (what serve.sh does).
// On PostgreSQL when `postgres`, in a schema of its own.
struct ScenarioServer {
  TempDir data;
  std::unique_ptr<PgSchema> schema;
  std::unique_ptr<TestServer> server;
  std::string pep;

  ScenarioServer(const std::string& scenario, std::map<std::string, std::string> env, bool postgres) {
    if (postgres) {
      schema = std::make_unique<PgSchema>();
      env["WARDEN_STORE"] = schema->url();
    }
    server = std::make_unique<TestServer>(
        TestServer::Options{.data_dir = data.path(), .policies_dir = ExampleDir(scenario) + "/policies", .env = env});
    REQUIRE(server->port() > 0);
    const std::string session = server->Login();
    Reply imported = server->Call("POST", "/v1/directory/import", ReadFile(ExampleDir(scenario) + "/directory.json"),
                                  session);
    INFO(imported.body);
    REQUIRE(imported.status == 200);
    CreateAccount(*server, session, "pep", "role", "pep");
    pep = CreateToken(*server, session, "pep").token;
  }
  Reply Ask(const std::string& path, const json& body) const {
    return server->Call("POST", path, body.dump(), pep);
  }
};

struct Tally {
  int passed = 0, failed = 0;
};

// Sends each case of `cases` to `path` and compares its answer with `expect(case)`.
void RunCases(const ScenarioServer& s, const std::string& label, const std::string& path, const json& cases,
              bool search, bool batch) {
  Tally t;
  for (const json& c : cases) {
    Reply r = s.Ask(path, c["request"]);
    bool ok = r.status == 200 && r.Header("Content-Type").rfind("application/json", 0) == 0;
    if (ok && search) {
      // The same set of {"type","id"} (or {"name"}) objects, nothing else in the answer.
      std::multiset<std::string> got, want;
      for (const json& item : r.json.value("results", json::array())) got.insert(item.dump());
      for (const json& item : c["expected"]["results"]) want.insert(item.dump());
      ok = got == want && r.json.is_object() && r.json.size() == 1 && r.json["results"].is_array();
    } else if (ok && batch) {
      ok = r.json == json{{"evaluations", c["expected"]}};
    } else if (ok) {
      ok = r.json == json{{"decision", c["expected"]}};
    }
    if (ok) {
      ++t.passed;
    } else {
      ++t.failed;
      UNSCOPED_INFO(label << ": " << c["request"].dump() << " -> " << r.status << " " << r.body << " (expected "
                          << c["expected"].dump() << ")");
    }
  }
  std::printf("authzen interop %s: %d/%zu passed\n", label.c_str(), t.passed, cases.size());
  std::fflush(stdout);
  CHECK(t.failed == 0);
  CHECK(t.passed == static_cast<int>(cases.size()));
}

void RunAll(const std::map<std::string, std::string>& env, const std::string& scheme, bool postgres = false) {
  const std::string fx = FixturesDir();
  {
    ScenarioServer s("todo", env, postgres);
    const json v1 = ReadJson(fx + "/todo/decisions-authorization-api-1_0-01.json");
    const json v2 = ReadJson(fx + "/todo/decisions-authorization-api-1_0-02.json");
    RunCases(s, scheme + " todo (1.0-01) evaluation", "/access/v1/evaluation", v1["evaluation"], false, false);
    RunCases(s, scheme + " todo (1.0-02) evaluation", "/access/v1/evaluation", v2["evaluation"], false, false);
    RunCases(s, scheme + " todo (1.0-02) evaluations", "/access/v1/evaluations", v2["evaluations"], false, true);
  }
  {
    ScenarioServer s("api-gateway", env, postgres);
    RunCases(s, scheme + " api-gateway evaluation", "/access/v1/evaluation",
             ReadJson(fx + "/api-gateway/decisions.json")["evaluation"], false, false);
  }
  {
    ScenarioServer s("search", env, postgres);
    for (const char* kind : {"subject", "resource", "action"}) {
      RunCases(s, scheme + " search " + kind, std::string("/access/v1/search/") + kind,
               ReadJson(fx + "/search/" + kind + "/results.json")["evaluation"], true, false);
    }
  }
  {
    ScenarioServer s("idp", env, postgres);
    RunCases(s, scheme + " idp search resource", "/access/v1/search/resource", ReadJson(fx + "/idp/results.json")["search"],
             true, false);
  }
}

TEST_CASE("the AuthZEN interop scenarios pass over plain HTTP", "[authzen][interop]") { RunAll({}, "http"); }

TEST_CASE("the AuthZEN interop scenarios pass over TLS", "[authzen][interop][tls]") {
  TempDir keys;
  const TlsFiles files = MakeTestCertificate(keys.path());
  RunAll({{"WARDEN_TLS_CERT", files.cert}, {"WARDEN_TLS_KEY", files.key}}, "https");
}

// The directory, the evaluations and their decision rows on the PostgreSQL store.
TEST_CASE("the AuthZEN interop scenarios pass on PostgreSQL", "[.][pg][authzen]") { RunAll({}, "postgres", true); }

}  // namespace
}  // namespace warden::testing
