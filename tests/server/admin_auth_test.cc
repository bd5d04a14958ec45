// End-to-end: authentication of the admin API — sessions, cookies and CSRF, logout, the
// login rate limit, service accounts never logging in, and TLS (issue 3).
#include <catch2/catch.hpp>

#include "tests/server/admin_fixture.h"

namespace warden::testing {
namespace {

httplib::Headers CookieOf(const std::string& token) { return {{"Cookie", "warden_session=" + token}}; }

TEST_CASE("admin endpoints answer 401 without valid credentials", "[admin]") {
  const TestServer& server = *Shared().server;
  const std::vector<std::pair<std::string, std::string>> endpoints = {
      {"GET", "/v1/service-accounts"}, {"POST", "/v1/service-accounts"}, {"GET", "/v1/service-accounts/x"},
      {"PATCH", "/v1/service-accounts/x"}, {"DELETE", "/v1/service-accounts/x"},
      {"GET", "/v1/service-accounts/x/permissions"}, {"PUT", "/v1/service-accounts/x/permissions"},
      {"POST", "/v1/service-accounts/x/tokens"}, {"GET", "/v1/users"}, {"POST", "/v1/users"},
      {"DELETE", "/v1/users/x"}, {"GET", "/v1/audit"}, {"GET", "/v1/roles"}, {"GET", "/v1/catalog"},
      {"POST", "/v1/auth/logout"}, {"GET", "/v1/auth/me"}};
  const std::vector<httplib::Headers> credentials = {
      {},
      {{"Authorization", "Bearer wds_not-a-session"}},
      {{"Authorization", "Bearer wdn_0000000000aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa000000"}},
      {{"Authorization", "Basic YWRtaW46YWRtaW4="}},
      {{"Authorization", "Bearer "}},
      CookieOf("wds_forged"),
  };
  for (const auto& [method, path] : endpoints) {
    for (const auto& headers : credentials) {
      INFO(method << " " << path << " " << (headers.empty() ? "" : headers.begin()->second));
      CHECK_ERROR(server.Call(method, path, "{}", "", headers), 401, "unauthenticated");
    }
  }
}

TEST_CASE("service accounts never appear among users and cannot log in", "[admin]") {
  SharedServer& s = Shared();
  const TestServer& server = *s.server;
  const std::string& admin = s.admin.token;
  const std::string name = Unique("not-a-user");
  nlohmann::json account = CreateAccount(server, admin, name, {{"kind", "role"}, {"name", "developer"}});
  const std::string token = CreateToken(server, admin, name, "t")["token"];

  nlohmann::json users = AllPages(server, "/v1/users", admin);
  REQUIRE(!users.empty());
  for (const auto& u : users) {
    CHECK(u["id"] != account["id"]);
    CHECK(u["email"] != name);
    CHECK(u["name"] != name);
  }
  CHECK_ERROR(server.Get("/v1/users/" + account["id"].get<std::string>(), admin), 404, "not_found");
  CHECK_ERROR(server.Get("/v1/users/" + name, admin), 404, "not_found");

  // Logging in with the account's name fails exactly like a wrong password.
  Reply as_account = server.Post("/v1/auth/login", {{"email", name}, {"password", "whatever-password"}});
  Reply with_token = server.Post("/v1/auth/login", {{"email", name}, {"password", token}});
  Reply wrong_password = server.Post("/v1/auth/login", {{"email", "admin@localhost"}, {"password", "wrong-password"}});
  CHECK_ERROR(as_account, 401, "unauthenticated");
  CHECK(as_account.body == wrong_password.body);
  CHECK(with_token.body == wrong_password.body);
  CHECK(as_account.Header("Set-Cookie").empty());

  // Its token authenticates as a bearer (developer may view accounts) but never in a cookie.
  CHECK(server.Get("/v1/service-accounts", token).status == 200);
  CHECK_ERROR(server.Call("GET", "/v1/service-accounts", "", "", CookieOf(token)), 401, "unauthenticated");
  CHECK_ERROR(server.Call("POST", "/v1/service-accounts", nlohmann::json{{"name", Unique("via-cookie")}}.dump(), "", CookieOf(token)),
              401, "unauthenticated");
  CHECK_ERROR(server.Call("GET", "/v1/auth/me", "", "", CookieOf(token)), 401, "unauthenticated");
  // And a session cannot be had for it: logout needs a user session.
  CHECK_ERROR(server.Post("/v1/auth/logout", nlohmann::json::object(), token), 400, "invalid_argument");
}

TEST_CASE("cookie-authenticated changes need the CSRF token; bearer ones do not", "[admin]") {
  SharedServer& s = Shared();
  const TestServer& server = *s.server;
  const Session& admin = s.admin;
  const httplib::Headers cookie = CookieOf(admin.token);

  // Reads need no CSRF header.
  CHECK(server.Call("GET", "/v1/service-accounts", "", "", cookie).status == 200);

  const std::string name = Unique("csrf");
  const std::string body = nlohmann::json{{"name", name}}.dump();
  Reply missing = server.Call("POST", "/v1/service-accounts", body, "", cookie);
  CHECK_ERROR(missing, 403, "permission_denied");
  CHECK(ErrorOf(missing).value("message", "").find("X-CSRF-Token") != std::string::npos);
  httplib::Headers wrong = cookie;
  wrong.emplace("X-CSRF-Token", "not-the-token");
  CHECK_ERROR(server.Call("POST", "/v1/service-accounts", body, "", wrong), 403, "permission_denied");
  httplib::Headers empty = cookie;
  empty.emplace("X-CSRF-Token", "");
  CHECK_ERROR(server.Call("POST", "/v1/service-accounts", body, "", empty), 403, "permission_denied");
  CHECK_ERROR(server.Get("/v1/service-accounts/" + name, admin.token), 404, "not_found");

  httplib::Headers good = cookie;
  good.emplace("X-CSRF-Token", admin.csrf);
  Reply created = server.Call("POST", "/v1/service-accounts", body, "", good);
  CHECK(created.status == 201);
  // Every state-changing method is guarded the same way.
  CHECK_ERROR(server.Call("PATCH", "/v1/service-accounts/" + name, R"({"enabled": false})", "", cookie), 403, "permission_denied");
  CHECK_ERROR(server.Call("DELETE", "/v1/service-accounts/" + name, "", "", cookie), 403, "permission_denied");
  CHECK_ERROR(server.Call("POST", "/v1/service-accounts/" + name + "/tokens", R"({"name": "t"})", "", cookie), 403, "permission_denied");
  CHECK(server.Get("/v1/service-accounts/" + name, admin.token).json["enabled"] == true);
  CHECK(server.Get("/v1/service-accounts/" + name + "/tokens", admin.token).json["items"].empty());
  CHECK(server.Call("PATCH", "/v1/service-accounts/" + name, R"({"enabled": false})", "", good).status == 200);

  // A bearer session needs no CSRF header.
  CHECK(server.Patch("/v1/service-accounts/" + name, {{"enabled", true}}, admin.token).status == 200);
  CHECK(server.Delete("/v1/service-accounts/" + name, admin.token).status == 204);
}

TEST_CASE("logout ends the session and only that session", "[admin]") {
  SharedServer& s = Shared();
  const TestServer& server = *s.server;
  Session second = LoginSession(server, "admin@localhost", server.options().admin_password);
  CHECK(second.token != s.admin.token);
  REQUIRE(server.Get("/v1/auth/me", second.token).status == 200);

  // By cookie it is a state change: the CSRF header is needed.
  httplib::Headers cookie = CookieOf(second.token);
  CHECK_ERROR(server.Call("POST", "/v1/auth/logout", "", "", cookie), 403, "permission_denied");
  cookie.emplace("X-CSRF-Token", second.csrf);
  Reply out = server.Call("POST", "/v1/auth/logout", "", "", cookie);
  CHECK(out.status == 204);
  CHECK(out.Header("Set-Cookie").find("Max-Age=0") != std::string::npos);
  CHECK_ERROR(server.Get("/v1/auth/me", second.token), 401, "unauthenticated");
  CHECK_ERROR(server.Call("GET", "/v1/service-accounts", "", "", CookieOf(second.token)), 401, "unauthenticated");
  CHECK_ERROR(server.Post("/v1/auth/logout", nlohmann::json::object(), second.token), 401, "unauthenticated");
  CHECK(server.Get("/v1/auth/me", s.admin.token).status == 200);
}

TEST_CASE("failed logins are rate limited per address", "[admin]") {
  TempDir dir;
  TestServer server({.data_dir = dir.path()});
  const std::string session = server.Login();
  for (int i = 0; i < 10; ++i) {
    INFO("attempt " << i);
    Reply r = server.Post("/v1/auth/login", {{"email", "admin@localhost"}, {"password", "wrong-password-" + std::to_string(i)}});
    CHECK_ERROR(r, 401, "unauthenticated");
  }
  for (const std::string& password : {std::string("wrong-again"), server.options().admin_password}) {
    Reply r = server.Post("/v1/auth/login", {{"email", "admin@localhost"}, {"password", password}});
    CHECK_ERROR(r, 429, "resource_exhausted");
    const std::string retry = r.Header("Retry-After");
    REQUIRE(!retry.empty());
    CHECK(std::stoi(retry) >= 1);
    CHECK(std::stoi(retry) <= 60);
    CHECK(r.Header("Set-Cookie").empty());
  }
  // Every failure before the limit is audited; refused attempts are not verified at all.
  nlohmann::json failures = nlohmann::json::array();
  for (const auto& item : AllPages(server, "/v1/audit?limit=100", session)) {
    if (item["action"] == "auth.login_failed") failures.push_back(item);
  }
  CHECK(failures.size() == 10);
  for (const auto& f : failures) {
    CHECK(f["actor"]["type"] == "anonymous");
    CHECK(f["target"]["name"] == "admin@localhost");
  }
  // The session obtained before is not affected.
  CHECK(server.Get("/v1/auth/me", session).status == 200);
}

TEST_CASE("admin requests are rate limited per credential", "[admin]") {
  TempDir dir;
  TestServer server({.data_dir = dir.path(), .env = {{"WARDEN_ADMIN_REQUESTS_PER_MINUTE", "5"}}});
  const std::string first = server.Login();
  const std::string second = server.Login();
  for (int i = 0; i < 5; ++i) {
    INFO("request " << i);
    CHECK(server.Get("/v1/auth/me", first).status == 200);
  }
  // Reads and writes alike, before the session is looked up.
  for (const std::string& method : {std::string("GET"), std::string("PUT")}) {
    Reply r = server.Call(method, "/v1/service-accounts/nobody/permissions", "a: &a [x]\n", first, {},
                          "application/yaml");
    CHECK_ERROR(r, 429, "resource_exhausted");
    const std::string retry = r.Header("Retry-After");
    REQUIRE(!retry.empty());
    CHECK(std::stoi(retry) >= 1);
    CHECK(std::stoi(retry) <= 60);
  }
  // Another credential has its own budget; credentials that do not authenticate use none
  // (they are refused 401 each time, never 429).
  CHECK(server.Get("/v1/auth/me", second).status == 200);
  for (int i = 0; i < 7; ++i) CHECK_ERROR(server.Get("/v1/auth/me", "wds_not-a-session"), 401, "unauthenticated");
  // Unauthenticated routes are not admin requests.
  CHECK(server.Get("/healthz").status == 200);
  const std::string metrics = server.Get("/metrics").body;
  CHECK(metrics.find("\nwarden_admin_throttled_total 2\n") != std::string::npos);
}

TEST_CASE("under TLS the server speaks https and the session cookie is Secure", "[admin]") {
  TempDir dir;
  const TlsFiles tls = MakeTestCertificate(dir.path());
  TempDir data;
  TestServer server({.data_dir = data.path(), .env = {{"WARDEN_TLS_CERT", tls.cert}, {"WARDEN_TLS_KEY", tls.key}}});
  CHECK(server.StartupOutput().find("warden serving https://127.0.0.1:") != std::string::npos);

  httplib::SSLClient client("127.0.0.1", server.port());
  client.enable_server_certificate_verification(false);
  client.set_read_timeout(60, 0);
  auto login = client.Post("/v1/auth/login",
                           nlohmann::json{{"email", "admin@localhost"}, {"password", server.options().admin_password}}.dump(),
                           "application/json");
  REQUIRE(login);
  REQUIRE(login->status == 200);
  const std::string cookie = login->get_header_value("Set-Cookie");
  CHECK(cookie.find("HttpOnly") != std::string::npos);
  CHECK(cookie.find("SameSite=Strict") != std::string::npos);
  CHECK(cookie.find("; Secure") != std::string::npos);
  const std::string token = nlohmann::json::parse(login->body)["token"];
  auto list = client.Get("/v1/service-accounts", {{"Authorization", "Bearer " + token}});
  REQUIRE(list);
  CHECK(list->status == 200);
  // Plain HTTP on the TLS port gets no answer.
  httplib::Client plain("127.0.0.1", server.port());
  plain.set_read_timeout(5, 0);
  auto health = plain.Get("/healthz");
  CHECK((!health || health->status != 200));
}

}  // namespace
}  // namespace warden::testing
