// An account policy that stops compiling after a catalog change is reported by
// GET /v1/policies/status and denies (fail closed) until it is fixed.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "tests/server/check_helpers.h"
#include "tests/server/harness.h"

namespace fs = std::filesystem;
using namespace warden::testing;

namespace {

void WriteCatalog(const std::string& dir, bool with_legacy) {
  std::ifstream in(std::string(WARDEN_SOURCE_DIR) + "/policies/catalog.yaml");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  if (with_legacy) {
    const std::string anchor = "  # Administration of warden itself";
    auto at = text.find(anchor);
    REQUIRE(at != std::string::npos);
    text.insert(at, "  legacy:       {actions: [view]}\n");
  }
  std::ofstream(dir + "/catalog.yaml", std::ios::trunc) << text;
}

}  // namespace

TEST_CASE("an account policy broken by a catalog change is reported and denies", "[check][reload]") {
  TempDir data, policies;
  fs::copy(std::string(WARDEN_SOURCE_DIR) + "/policies", policies.path(),
           fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  fs::remove_all(policies.path() + "/tests");  // suites pin the default catalog
  WriteCatalog(policies.path(), /*with_legacy=*/true);
  TestServer server({.data_dir = data.path(), .policies_dir = policies.path(),
                     .env = {{"WARDEN_WATCH_POLICIES", "false"}}});
  std::string session = server.Login();
  AccountRef account = CreateAccount(server, session, "legacy-sync", "scratch");
  Reply put = server.Call("PUT", "/v1/service-accounts/legacy-sync/permissions",
                          "apiVersion: warden/v1\nkind: ServiceAccountPolicy\naccount: legacy-sync\n"
                          "permissions:\n  legacy: [view]\n  company: [view]\n",
                          session, {}, "application/yaml");
  INFO(put.body);
  REQUIRE(put.status == 200);
  TokenRef token = CreateToken(server, session, "legacy-sync");
  REQUIRE(Check(server, token.token, "legacy", "view").json["allowed"] == true);

  Reply status = server.Get("/v1/policies/status", session);
  REQUIRE(status.status == 200);
  REQUIRE(status.json["accounts_with_errors"].empty());

  WriteCatalog(policies.path(), /*with_legacy=*/false);
  Reply reload = server.Post("/v1/policies/reload", nlohmann::json::object(), session);
  INFO(reload.body);
  REQUIRE(reload.status == 200);

  status = server.Get("/v1/policies/status", session);
  const auto& broken = status.json["accounts_with_errors"];
  REQUIRE(broken.size() == 1);
  CHECK(broken[0]["id"] == account.id);
  CHECK(broken[0]["name"] == "legacy-sync");
  REQUIRE_FALSE(broken[0]["errors"].empty());
  CHECK(broken[0]["errors"][0]["message"].get<std::string>().find("legacy") != std::string::npos);

  // Fail closed: even the still-valid company permission denies until the policy is fixed.
  Reply company = Check(server, token.token, "company", "view");
  CHECK(company.json["allowed"] == false);
  CHECK(company.json["results"][0]["eval_error"] == true);
  CHECK(Check(server, token.token, "legacy", "view").json["results"][0]["reason"] == "UNKNOWN_MODEL");

  // Fixing the policy clears the report and the account works again.
  put = server.Call("PUT", "/v1/service-accounts/legacy-sync/permissions",
                    "apiVersion: warden/v1\nkind: ServiceAccountPolicy\naccount: legacy-sync\n"
                    "permissions:\n  company: [view]\n",
                    session, {}, "application/yaml");
  REQUIRE(put.status == 200);
  CHECK(Check(server, token.token, "company", "view").json["allowed"] == true);
  REQUIRE(server.Post("/v1/policies/reload", nlohmann::json::object(), session).status == 200);
  CHECK(server.Get("/v1/policies/status", session).json["accounts_with_errors"].empty());
}
