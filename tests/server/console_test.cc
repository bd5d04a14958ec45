// The web console as the server serves it (DESIGN.md 9): every file of server/console/web/
// byte for byte, under / and /console/<name>, with the security and cache headers; and the
// `permissions` of GET /v1/auth/me that its menu follows. tests/console/ drives the page
// itself in a browser.
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include <catch2/catch.hpp>

#include "tests/server/admin_fixture.h"

namespace warden::testing {
namespace {

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void CheckConsoleHeaders(const Reply& r) {
  const std::string csp = r.Header("Content-Security-Policy");
  CHECK(csp.find("default-src 'none'") != std::string::npos);
  CHECK(csp.find("script-src 'self'") != std::string::npos);
  CHECK(csp.find("frame-ancestors 'none'") != std::string::npos);
  CHECK(csp.find("unsafe-inline") == std::string::npos);
  CHECK(csp.find("unsafe-eval") == std::string::npos);
  CHECK(r.Header("X-Content-Type-Options") == "nosniff");
  CHECK(r.Header("X-Frame-Options") == "DENY");
  CHECK(r.Header("Referrer-Policy") == "no-referrer");
}

TEST_CASE("the console's files are served as written, with strict headers and ETag revalidation", "[admin][console]") {
  const TestServer& server = *Shared().server;
  const std::filesystem::path web = std::filesystem::path(WARDEN_SOURCE_DIR) / "server/console/web";
  const std::map<std::string, std::string> types = {
      {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"}, {".css", "text/css; charset=utf-8"}};
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(web)) {
    const std::string name = entry.path().filename().string();
    INFO(name);
    Reply r = server.Get("/console/" + name);
    REQUIRE(r.status == 200);
    CHECK(r.body == ReadFile(entry.path()));
    CHECK(r.Header("Content-Type") == types.at(entry.path().extension().string()));
    CHECK(r.Header("Cache-Control") == "no-cache");
    CheckConsoleHeaders(r);
    const std::string etag = r.Header("ETag");
    REQUIRE(etag.size() > 2);
    Reply again = server.Call("GET", "/console/" + name, "", "", {{"If-None-Match", etag}});
    CHECK(again.status == 304);
    CHECK(again.body.empty());
    CHECK(again.Header("ETag") == etag);
    Reply stale = server.Call("GET", "/console/" + name, "", "", {{"If-None-Match", "\"other\""}});
    CHECK(stale.status == 200);
    ++files;
  }
  CHECK(files >= 5);

  // GET / is the page; its scripts are files (the CSP allows no inline script).
  Reply index = server.Get("/");
  REQUIRE(index.status == 200);
  CHECK(index.body == ReadFile(web / "index.html"));
  CheckConsoleHeaders(index);
  const std::regex script(R"(<script\b[^>]*>)");
  int scripts = 0;
  for (auto it = std::sregex_iterator(index.body.begin(), index.body.end(), script); it != std::sregex_iterator(); ++it) {
    CHECK(it->str().find("src=\"/console/") != std::string::npos);
    ++scripts;
  }
  CHECK(scripts == 1);

  // Unknown files are the API's JSON 404; other methods are not routes.
  for (const std::string& path : {"/console/nope.js", "/console/..%2fapp.cc", "/console/"}) {
    INFO(path);
    Reply r = server.Get(path);
    CHECK(r.status == 404);
    CHECK(ErrorOf(r).value("code", "") == "not_found");
  }
  CHECK(server.Post("/", nlohmann::json::object()).status == 404);
}

TEST_CASE("GET /v1/auth/me lists what the caller may do, as the engine decides it", "[admin][console]") {
  SharedServer& s = Shared();
  const TestServer& server = *s.server;
  auto me_as = [&](const std::string& role) {
    const std::string email = Unique(role) + "@example.com";
    REQUIRE(server.Post("/v1/users", {{"email", email}, {"role", role}, {"password", "password-" + role}}, s.admin.token).status == 201);
    Reply me = server.Get("/v1/auth/me", LoginSession(server, email, "password-" + role).token);
    REQUIRE(me.status == 200);
    return me.json["permissions"];
  };
  const nlohmann::json admin = server.Get("/v1/auth/me", s.admin.token).json["permissions"];
  CHECK(admin["serviceaccount"] == nlohmann::json({"view", "create", "update", "delete"}));
  CHECK(admin["user"] == nlohmann::json({"view", "create", "update", "delete"}));
  CHECK(admin["user_activity"] == nlohmann::json({"create"}));

  const nlohmann::json developer = me_as("developer");
  CHECK(developer["serviceaccount"] == nlohmann::json({"view", "create", "update", "delete"}));
  CHECK(!developer.contains("user"));
  CHECK(!developer.contains("user_activity"));
  CHECK(developer["invoice"] == nlohmann::json({"view"}));

  const nlohmann::json viewer = me_as("viewer");
  CHECK(!viewer.contains("serviceaccount"));
  CHECK(!viewer.contains("user"));
  CHECK(viewer["company"] == nlohmann::json({"view"}));

  // csm may update only the companies it owns: a conditional allow is not listed.
  const nlohmann::json csm = me_as("csm");
  CHECK(csm["company"] == nlohmann::json({"view", "export"}));

  // A service account's token: its own policy (the guardrails apply to it too).
  const std::string name = Unique("me-sa");
  CreateAccount(server, s.admin.token, name, {{"kind", "role"}, {"name", "manager"}});
  const std::string token = CreateToken(server, s.admin.token, name, "t")["token"];
  Reply sa = server.Get("/v1/auth/me", token);
  REQUIRE(sa.status == 200);
  CHECK(sa.json["type"] == "service_account");
  CHECK(sa.json["permissions"]["serviceaccount"] == nlohmann::json({"view"}));
  CHECK(sa.json["permissions"]["invoice"] == nlohmann::json({"view", "export"}));
}

}  // namespace
}  // namespace warden::testing
