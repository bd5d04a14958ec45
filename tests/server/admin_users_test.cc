// End-to-end: team members (users) and the read-only role and catalog endpoints (issue 3).
#include <algorithm>
#include <set>

#include <catch2/catch.hpp>

#include "tests/server/admin_fixture.h"

namespace warden::testing {
namespace {

TEST_CASE("users are created, read, changed and deleted; bad input changes nothing", "[admin]") {
  SharedServer& s = Shared();
  const TestServer& server = *s.server;
  const std::string& admin = s.admin.token;
  const std::string email = Unique("csm") + "@example.com";

  Reply created = server.Post("/v1/users", {{"email", email}, {"name", "Casey"}, {"role", "csm"}, {"password", "csm-password-1"},
                                            {"attributes", {{"region", "emea"}}}}, admin);
  INFO(created.body);
  REQUIRE(created.status == 201);
  const std::string id = created.json["id"];
  CHECK(created.json["email"] == email);
  CHECK(created.json["name"] == "Casey");
  CHECK(created.json["role"] == "csm");
  CHECK(created.json["roles"] == nlohmann::json::array({"csm"}));
  CHECK(created.json["enabled"] == true);
  CHECK(created.json["attributes"] == nlohmann::json{{"region", "emea"}});
  CHECK(created.body.find("csm-password-1") == std::string::npos);
  CHECK(!created.json.contains("password_hash"));
  Reply got = server.Get("/v1/users/" + id, admin);
  REQUIRE(got.status == 200);
  CHECK(got.json == created.json);
  nlohmann::json all = AllPages(server, "/v1/users?limit=1", admin);
  CHECK(std::count_if(all.begin(), all.end(), [&](const nlohmann::json& u) { return u["id"] == id; }) == 1);

  // Refused: a taken email, an unknown role, a bad email, a short password.
  const size_t count = all.size();
  CHECK_ERROR(server.Post("/v1/users", {{"email", email}, {"role", "viewer"}}, admin), 409, "already_exists");
  CHECK_ERROR(server.Post("/v1/users", {{"email", "admin@localhost"}, {"role", "viewer"}}, admin), 409, "already_exists");
  CHECK_ERROR_FIELD(server.Post("/v1/users", {{"email", Unique("r") + "@example.com"}, {"role", "superuser"}}, admin),
                    400, "invalid_argument", "role");
  CHECK_ERROR_FIELD(server.Post("/v1/users", {{"email", Unique("r") + "@example.com"}, {"roles", {"viewer", "nope"}}}, admin),
                    400, "invalid_argument", "role");
  CHECK_ERROR_FIELD(server.Post("/v1/users", {{"email", "not-an-email"}, {"role", "viewer"}}, admin), 400, "invalid_argument", "email");
  CHECK_ERROR_FIELD(server.Post("/v1/users", {{"email", Unique("p") + "@example.com"}, {"role", "viewer"}, {"password", "short"}}, admin),
                    400, "invalid_argument", "password");
  CHECK(AllPages(server, "/v1/users", admin).size() == count);

  // The user logs in with their role.
  const std::string session = LoginSession(server, email, "csm-password-1").token;
  Reply me = server.Get("/v1/auth/me", session);
  CHECK(me.json["roles"] == nlohmann::json::array({"csm"}));

  // PATCH: name and role; an unknown role changes nothing.
  Reply patched = server.Patch("/v1/users/" + id, {{"name", "Casey Jones"}, {"role", "manager"}}, admin);
  REQUIRE(patched.status == 200);
  CHECK(patched.json["name"] == "Casey Jones");
  CHECK(patched.json["roles"] == nlohmann::json::array({"manager"}));
  CHECK(patched.json["email"] == email);
  CHECK_ERROR_FIELD(server.Patch("/v1/users/" + id, {{"name", "Other"}, {"role", "nope"}}, admin), 400, "invalid_argument", "role");
  CHECK_ERROR(server.Patch("/v1/users/" + id, {{"email", "admin@localhost"}}, admin), 409, "already_exists");
  CHECK(server.Get("/v1/users/" + id, admin).json == patched.json);
  // The role change applies to the live session.
  CHECK(server.Get("/v1/auth/me", session).json["roles"] == nlohmann::json::array({"manager"}));

  // Disabling ends the user's sessions.
  Reply disabled = server.Patch("/v1/users/" + id, {{"enabled", false}}, admin);
  REQUIRE(disabled.status == 200);
  CHECK(disabled.json["enabled"] == false);
  CHECK_ERROR(server.Get("/v1/auth/me", session), 401, "unauthenticated");

  // Self-delete and self-disable are refused; the admin stays.
  const std::string admin_id = s.admin.user["id"];
  CHECK_ERROR(server.Delete("/v1/users/" + admin_id, admin), 412, "failed_precondition");
  CHECK_ERROR(server.Patch("/v1/users/" + admin_id, {{"enabled", false}}, admin), 412, "failed_precondition");
  CHECK(server.Get("/v1/users/" + admin_id, admin).json["enabled"] == true);

  // DELETE.
  CHECK(server.Delete("/v1/users/" + id, admin).status == 204);
  CHECK_ERROR(server.Get("/v1/users/" + id, admin), 404, "not_found");
  CHECK_ERROR(server.Delete("/v1/users/" + id, admin), 404, "not_found");
  CHECK_ERROR(server.Patch("/v1/users/" + id, {{"name", "ghost"}}, admin), 404, "not_found");
  CHECK(AllPages(server, "/v1/users", admin).size() == count - 1);

  // Each change is in the audit trail, newest first.
  Reply audit = server.Get("/v1/audit?target_id=" + id, admin);
  REQUIRE(audit.status == 200);
  std::vector<std::string> actions;
  for (const auto& item : audit.json["items"]) {
    actions.push_back(item["action"]);
    CHECK(item["actor"]["type"] == "user");
    CHECK(item["actor"]["id"] == admin_id);
    CHECK(item["target"]["type"] == "user");
  }
  CHECK(actions == std::vector<std::string>{"user.deleted", "user.updated", "user.updated", "user.created"});
  CHECK(audit.body.find("csm-password-1") == std::string::npos);
}

TEST_CASE("roles and the catalog are readable by any signed-in caller", "[admin]") {
  SharedServer& s = Shared();
  const TestServer& server = *s.server;
  const std::string& admin = s.admin.token;

  Reply roles = server.Get("/v1/roles", admin);
  REQUIRE(roles.status == 200);
  std::set<std::string> names;
  for (const auto& r : roles.json["items"]) names.insert(r["name"]);
  CHECK(names == std::set<std::string>{"admin", "csm", "developer", "manager", "viewer"});
  CHECK(roles.json["revision"].is_string());

  Reply csm = server.Get("/v1/roles/csm", admin);
  REQUIRE(csm.status == 200);
  INFO(csm.body);
  CHECK(csm.json["name"] == "csm");
  CHECK(csm.body.find("own-portfolio") != std::string::npos);
  CHECK_ERROR(server.Get("/v1/roles/nope", admin), 404, "not_found");

  Reply catalog = server.Get("/v1/catalog", admin);
  REQUIRE(catalog.status == 200);
  nlohmann::json sa;
  for (const auto& m : catalog.json["models"]) {
    if (m["name"] == "serviceaccount") sa = m;
  }
  CHECK(sa["actions"] == nlohmann::json::array({"view", "create", "update", "delete"}));
  CHECK(catalog.json["models"][0]["name"] == "company");
  CHECK(catalog.json["models"][0]["attributes"]["arr"] == "number");
  CHECK(catalog.json["analytics"] == nlohmann::json::array({"user_activity", "custom_metric"}));

  // Also to a service account with no admin permissions at all.
  const std::string name = Unique("reader");
  CreateAccount(server, admin, name);
  const std::string token = CreateToken(server, admin, name, "t")["token"];
  CHECK(server.Get("/v1/roles", token).status == 200);
  CHECK(server.Get("/v1/catalog", token).status == 200);
}

}  // namespace
}  // namespace warden::testing
