// End-to-end: the audit trail of every admin change, and a restart on the same data
// directory that finds everything again (issue 3).
#include <sys/wait.h>

#include <algorithm>
#include <set>

#include <catch2/catch.hpp>

#include "tests/server/admin_fixture.h"

namespace warden::testing {
namespace {

std::vector<std::string> Actions(const nlohmann::json& items) {
  std::vector<std::string> out;
  for (const auto& item : items) out.push_back(item["action"]);
  return out;
}

TEST_CASE("the audit trail holds every change, newest first, paged and filtered by target", "[admin]") {
  SharedServer& s = Shared();
  const TestServer& server = *s.server;
  const std::string& admin = s.admin.token;
  const std::string admin_id = s.admin.user["id"];

  const std::string name = Unique("audited");
  const std::string id = CreateAccount(server, admin, name, {{"kind", "role"}, {"name", "viewer"}})["id"];
  const std::string renamed = Unique("audited-renamed");
  REQUIRE(server.Patch("/v1/service-accounts/" + id, {{"name", renamed}}, admin).status == 200);
  REQUIRE(server.Patch("/v1/service-accounts/" + id, {{"enabled", false}}, admin).status == 200);
  REQUIRE(server.Patch("/v1/service-accounts/" + id, {{"enabled", true}}, admin).status == 200);
  REQUIRE(Put(server, "/v1/service-accounts/" + id + "/permissions", R"({"permissions": {"company": ["view"]}})", admin,
              "application/json").status == 200);
  const nlohmann::json token = CreateToken(server, admin, id, "t");
  REQUIRE(server.Delete("/v1/service-accounts/" + id + "/tokens/" + token["id"].get<std::string>(), admin).status == 204);
  REQUIRE(server.Delete("/v1/service-accounts/" + id, admin).status == 204);

  Reply trail = server.Get("/v1/audit?target_id=" + id, admin);
  REQUIRE(trail.status == 200);
  INFO(trail.body);
  const nlohmann::json& items = trail.json["items"];
  CHECK(Actions(items) == std::vector<std::string>{
                              "service_account.deleted", "token.deleted", "token.created",
                              "service_account.permissions_changed", "service_account.enabled",
                              "service_account.disabled", "service_account.renamed", "service_account.created"});
  CHECK(trail.json["next_cursor"].is_null());
  std::set<std::string> ids;
  for (size_t i = 0; i < items.size(); ++i) {
    const auto& item = items[i];
    ids.insert(item["id"].dump());
    CHECK(item["actor"] == nlohmann::json{{"type", "user"}, {"id", admin_id}});
    CHECK(item["target"]["type"] == "service_account");
    CHECK(item["target"]["id"] == id);
    CHECK(item["time"].is_string());
    if (i > 0) CHECK(item["time"].get<std::string>() <= items[i - 1]["time"].get<std::string>());
  }
  CHECK(ids.size() == items.size());
  CHECK(items[7]["target"]["name"] == name);
  CHECK(items[7]["details"]["copy_permissions_from"] == nlohmann::json{{"kind", "role"}, {"name", "viewer"}});
  CHECK(items[6]["details"]["old_name"] == name);
  CHECK(items[6]["details"]["new_name"] == renamed);
  CHECK(items[2]["details"]["token_id"] == token["id"]);
  CHECK(items[1]["details"]["token_id"] == token["id"]);
  CHECK(items[0]["target"]["name"] == renamed);
  CHECK(trail.body.find(token["token"].get<std::string>().substr(14)) == std::string::npos);

  // Cursor paging gives the same rows, in the same order, without repeats.
  nlohmann::json paged = AllPages(server, "/v1/audit?target_id=" + id + "&limit=3", admin);
  CHECK(paged == items);
  Reply first = server.Get("/v1/audit?target_id=" + id + "&limit=3", admin);
  CHECK(first.json["items"].size() == 3);
  CHECK(first.json["next_cursor"].is_string());

  // The unfiltered trail, newest first, starts with this account's deletion and also holds
  // user changes and failed logins.
  const std::string email = Unique("audit") + "@example.com";
  Reply user = server.Post("/v1/users", {{"email", email}, {"role", "viewer"}}, admin);
  REQUIRE(user.status == 201);
  REQUIRE(server.Patch("/v1/users/" + user.json["id"].get<std::string>(), {{"name", "Audrey"}}, admin).status == 200);
  REQUIRE(server.Delete("/v1/users/" + user.json["id"].get<std::string>(), admin).status == 204);
  const std::string nobody = Unique("nobody") + "@example.com";
  CHECK_ERROR(server.Post("/v1/auth/login", {{"email", nobody}, {"password", "not-the-password"}}), 401, "unauthenticated");
  Reply recent = server.Get("/v1/audit?limit=4", admin);
  REQUIRE(recent.status == 200);
  CHECK(Actions(recent.json["items"]) ==
        std::vector<std::string>{"auth.login_failed", "user.deleted", "user.updated", "user.created"});
  const auto& failed = recent.json["items"][0];
  CHECK(failed["actor"]["type"] == "anonymous");
  CHECK(failed["actor"]["id"] == "127.0.0.1");
  CHECK(failed["target"]["name"] == nobody);
  CHECK(recent.body.find("not-the-password") == std::string::npos);
  CHECK(recent.json["items"][1]["target"]["name"] == email);
  CHECK(recent.json["items"][3]["target"]["id"] == user.json["id"]);
  // Filtering by target type.
  Reply users_only = server.Get("/v1/audit?target_type=service_account&limit=50", admin);
  REQUIRE(users_only.status == 200);
  for (const auto& item : users_only.json["items"]) CHECK(item["target"]["type"] == "service_account");
}

TEST_CASE("a restarted server on the same data directory finds everything", "[admin]") {
  TempDir dir;
  std::string account_id, token, token_id, user_id;
  {
    TestServer server({.data_dir = dir.path()});
    const std::string admin = server.Login();
    account_id = CreateAccount(server, admin, "survivor", {{"kind", "role"}, {"name", "viewer"}})["id"];
    nlohmann::json t = CreateToken(server, admin, "survivor", "kept");
    token = t["token"];
    token_id = t["id"];
    const std::string gone = CreateToken(server, admin, "survivor", "deleted")["id"];
    REQUIRE(server.Delete("/v1/service-accounts/survivor/tokens/" + gone, admin).status == 204);
    REQUIRE(Put(server, "/v1/service-accounts/survivor/permissions", R"({"permissions": {"company": ["view", "export"]}})", admin,
                "application/json").status == 200);
    Reply user = server.Post("/v1/users", {{"email", "kept@example.com"}, {"role", "developer"}, {"password", "kept-password-1"}}, admin);
    REQUIRE(user.status == 201);
    user_id = user.json["id"];
    REQUIRE(Check(server, token, "company", "export").json["allowed"] == true);
    const int status = server.Stop(SIGTERM);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  TestServer server({.data_dir = dir.path()});
  // The old token works at once, with the edited permissions.
  Reply check = Check(server, token, "company", "export");
  REQUIRE(check.status == 200);
  CHECK(check.json["allowed"] == true);
  CHECK(check.json["principal"]["id"] == account_id);
  CHECK(check.json["principal"]["token_id"] == token_id);

  const std::string admin = server.Login();
  Reply account = server.Get("/v1/service-accounts/survivor", admin);
  REQUIRE(account.status == 200);
  CHECK(account.json["id"] == account_id);
  CHECK(account.json["token_count"] == 1);
  CHECK(account.json["policy_version"] == 2);
  Reply tokens = server.Get("/v1/service-accounts/survivor/tokens", admin);
  REQUIRE(tokens.json["items"].size() == 1);
  CHECK(tokens.json["items"][0]["id"] == token_id);
  CHECK(server.Get("/v1/service-accounts/survivor/permissions/versions", admin).json["items"].size() == 2);
  Reply user = server.Get("/v1/users/" + user_id, admin);
  CHECK(user.status == 200);
  CHECK(user.json["email"] == "kept@example.com");
  CHECK(LoginSession(server, "kept@example.com", "kept-password-1").user["id"] == user_id);
  Reply audit = server.Get("/v1/audit?target_id=" + account_id, admin);
  CHECK(Actions(audit.json["items"]) ==
        std::vector<std::string>{"service_account.permissions_changed", "token.deleted", "token.created", "token.created",
                                 "service_account.created"});
  Reply logs = server.Get("/v1/service-accounts/" + account_id + "/logs", admin);
  REQUIRE(logs.json["items"].size() == 2);  // one before the restart, one after
  // No second admin was made.
  int admins = 0;
  for (const auto& u : AllPages(server, "/v1/users", admin)) admins += u["email"] == "admin@localhost";
  CHECK(admins == 1);
}

}  // namespace
}  // namespace warden::testing
