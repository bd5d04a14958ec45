// End-to-end: service accounts and their tokens through the admin API (issue 3).
#include <catch2/catch.hpp>

#include "tests/server/admin_fixture.h"

namespace warden::testing {
namespace {

bool HasItemNamed(const nlohmann::json& items, const std::string& name) {
  for (const auto& item : items) {
    if (item.value("name", "") == name) return true;
  }
  return false;
}

TEST_CASE("login answers a session token in the body and an HttpOnly SameSite=Strict cookie", "[admin]") {
  SharedServer& s = Shared();
  const Session& admin = s.admin;
  CHECK(admin.token.rfind("wds_", 0) == 0);
  CHECK(!admin.csrf.empty());
  CHECK(admin.set_cookie.find("warden_session=" + admin.token) == 0);
  CHECK(admin.set_cookie.find("HttpOnly") != std::string::npos);
  CHECK(admin.set_cookie.find("SameSite=Strict") != std::string::npos);
  CHECK(admin.set_cookie.find("Secure") == std::string::npos);  // plain HTTP
  CHECK(admin.user["email"] == "admin@localhost");
  CHECK(admin.user["roles"] == nlohmann::json::array({"admin"}));
  CHECK(!admin.user.contains("password"));
  CHECK(!admin.user.contains("password_hash"));

  Reply me = s.server->Get("/v1/auth/me", admin.token);
  REQUIRE(me.status == 200);
  CHECK(me.json["type"] == "user");
  CHECK(me.json["id"] == admin.user["id"]);
  // The password never reaches the access log.
  CHECK(s.server->Log().find(s.server->options().admin_password) == std::string::npos);
}

TEST_CASE("accounts are created from scratch, from a role and from another account", "[admin]") {
  SharedServer& s = Shared();
  const TestServer& server = *s.server;
  const std::string& admin = s.admin.token;

  // From scratch: denies everything.
  const std::string scratch = Unique("scratch");
  nlohmann::json a = CreateAccount(server, admin, scratch);
  CHECK(a["name"] == scratch);
  CHECK(a["enabled"] == true);
  CHECK(a["token_count"] == 0);
  CHECK(a["policy_version"] == 1);
  CHECK(a["created_by"]["type"] == "user");
  CHECK(a["created_by"]["id"] == s.admin.user["id"]);
  CHECK(a["created_at"].is_string());
  CHECK(a["deleted_at"].is_null());
  const std::string scratch_token = CreateToken(server, admin, scratch, "t")["token"];
  for (const char* model : {"company", "invoice", "serviceaccount"}) {
    Reply check = Check(server, scratch_token, model, "view");
    INFO(model << " " << check.body);
    REQUIRE(check.status == 200);
    CHECK(check.json["allowed"] == false);
    CHECK(check.json["reason"] == "NO_MATCHING_ALLOW");
    CHECK(check.json["principal"]["type"] == "service_account");
    CHECK(check.json["principal"]["id"] == a["id"]);
  }
  Reply scratch_perm = server.Get("/v1/service-accounts/" + scratch + "/permissions", admin);
  REQUIRE(scratch_perm.status == 200);
  CHECK(scratch_perm.json["copied_from"]["kind"] == "scratch");
  CHECK(scratch_perm.json["permissions"].empty());
  CHECK(scratch_perm.json["rules"].empty());

  // From a role: the role's permissions, under the account's own rule ids.
  const std::string from_role = Unique("from-role");
  nlohmann::json b = CreateAccount(server, admin, from_role, {{"kind", "role"}, {"name", "viewer"}});
  const std::string role_token = CreateToken(server, admin, from_role, "t")["token"];
  Reply view = Check(server, role_token, "company", "view");
  REQUIRE(view.status == 200);
  CHECK(view.json["allowed"] == true);
  CHECK(view.json["reason"] == "ALLOW_RULE");
  CHECK(view.json["rule"] == "sa:" + from_role + "#perm:company");
  Reply update = Check(server, role_token, "company", "update");
  CHECK(update.json["allowed"] == false);
  CHECK(update.json["reason"] == "NO_MATCHING_ALLOW");

  // From another account: a snapshot that records its source.
  const std::string copy = Unique("copy");
  nlohmann::json c = CreateAccount(server, admin, copy, {{"kind", "service_account"}, {"name", from_role}});
  Reply yaml = GetYaml(server, "/v1/service-accounts/" + c["id"].get<std::string>() + "/permissions", admin);
  REQUIRE(yaml.status == 200);
  CHECK(yaml.Header("Content-Type").rfind("application/yaml", 0) == 0);
  CHECK(yaml.json.is_null());  // not JSON
  INFO(yaml.body);
  CHECK(yaml.body.find("kind: ServiceAccountPolicy") != std::string::npos);
  CHECK(yaml.body.find("copiedFrom") != std::string::npos);
  CHECK(yaml.body.find("ServiceAccount") != std::string::npos);
  CHECK(yaml.body.find(from_role) != std::string::npos);
  CHECK(yaml.body.find("account: " + copy) != std::string::npos);
  Reply json = server.Get("/v1/service-accounts/" + copy + "/permissions", admin);
  REQUIRE(json.status == 200);
  CHECK(json.json["copied_from"]["kind"] == "service_account");
  CHECK(json.json["copied_from"]["name"] == from_role);
  CHECK(json.json["permissions"] == server.Get("/v1/service-accounts/" + from_role + "/permissions", admin).json["permissions"]);
  const std::string copy_token = CreateToken(server, admin, copy, "t")["token"];
  Reply copy_view = Check(server, copy_token, "company", "view");
  CHECK(copy_view.json["allowed"] == true);
  CHECK(copy_view.json["rule"] == "sa:" + copy + "#perm:company");

  // By id and by name; all three listed with their flags and token counts.
  Reply by_id = server.Get("/v1/service-accounts/" + b["id"].get<std::string>(), admin);
  Reply by_name = server.Get("/v1/service-accounts/" + from_role, admin);
  REQUIRE(by_id.status == 200);
  REQUIRE(by_name.status == 200);
  CHECK(by_id.json["id"] == b["id"]);
  CHECK(by_name.json["id"] == b["id"]);
  CHECK(by_name.json["token_count"] == 1);
  nlohmann::json items = AllPages(server, "/v1/service-accounts?limit=2", admin);
  for (const std::string& name : {scratch, from_role, copy}) {
    INFO(name);
    CHECK(HasItemNamed(items, name));
  }
  for (const auto& item : items) {
    CHECK(item.contains("enabled"));
    CHECK(item.contains("token_count"));
    CHECK(item.contains("created_at"));
    CHECK(item.contains("last_used_at"));
  }
}

TEST_CASE("account names are unique and limited to a safe character set", "[admin]") {
  SharedServer& s = Shared();
  const TestServer& server = *s.server;
  const std::string& admin = s.admin.token;
  const std::string name = Unique("unique");
  nlohmann::json first = CreateAccount(server, admin, name);

  Reply dup = server.Post("/v1/service-accounts", {{"name", name}, {"copy_permissions_from", {{"kind", "role"}, {"name", "viewer"}}}}, admin);
  CHECK_ERROR(dup, 409, "already_exists");
  Reply still = server.Get("/v1/service-accounts/" + name, admin);
  CHECK(still.json["id"] == first["id"]);
  CHECK(server.Get("/v1/service-accounts/" + name + "/permissions", admin).json["copied_from"]["kind"] == "scratch");

  // Renaming onto a taken name is the same conflict.
  const std::string other = Unique("other");
  CreateAccount(server, admin, other);
  CHECK_ERROR(server.Patch("/v1/service-accounts/" + other, {{"name", name}}, admin), 409, "already_exists");
  CHECK(server.Get("/v1/service-accounts/" + other, admin).status == 200);

  const size_t before = AllPages(server, "/v1/service-accounts", admin).size();
  const std::vector<std::string> bad_names = {"", "has space", "-leading-dash", ".dot", "a/b", "semi;colon",
                                               "quote'", "na\xc3\xafve", std::string(65, 'x'), "<script>"};
  for (const std::string& bad : bad_names) {
    INFO("name: " << bad);
    CHECK_ERROR_FIELD(server.Post("/v1/service-accounts", {{"name", bad}}, admin), 400, "invalid_argument", "name");
    CHECK_ERROR_FIELD(server.Patch("/v1/service-accounts/" + other, {{"name", bad}}, admin), 400, "invalid_argument", "name");
  }
  CHECK(AllPages(server, "/v1/service-accounts", admin).size() == before);
  CHECK(server.Get("/v1/service-accounts/" + other, admin).json["name"] == other);
  // 64 characters is the limit, not past it.
  CHECK(server.Post("/v1/service-accounts", {{"name", Unique(std::string(50, 'n'))}}, admin).status == 201);
}

TEST_CASE("tokens are shown once, listed without secrets, and deleted one at a time", "[admin]") {
  SharedServer& s = Shared();
  const TestServer& server = *s.server;
  const std::string& admin = s.admin.token;
  const std::string name = Unique("tokens");
  nlohmann::json account = CreateAccount(server, admin, name, {{"kind", "role"}, {"name", "viewer"}});
  const std::string id = account["id"];

  nlohmann::json t1 = CreateToken(server, admin, name, "first");
  nlohmann::json t2 = CreateToken(server, admin, id, "second");
  for (const auto& t : {t1, t2}) {
    INFO(t.dump());
    const std::string token = t["token"];
    // DESIGN.md 4: wdn_ + 10-char id + 32-char secret + 6-char crc.
    REQUIRE(token.size() == 4 + 10 + 32 + 6);
    CHECK(token.rfind("wdn_", 0) == 0);
    CHECK(token.substr(4, 10) == t["id"]);
    CHECK(t["prefix"].get<std::string>().rfind("wdn_", 0) == 0);
    CHECK(t["prefix"].get<std::string>().find(token.substr(14)) == std::string::npos);
    CHECK(t["created_at"].is_string());
    CHECK(t["expires_at"].is_null());
  }
  CHECK(t1["name"] == "first");
  CHECK(t1["id"] != t2["id"]);
  CHECK(t1["token"] != t2["token"]);
  const std::string secret1 = t1["token"].get<std::string>().substr(14, 32);
  const std::string secret2 = t2["token"].get<std::string>().substr(14, 32);

  // Never again: not in the list, the account, the audit trail or the server log.
  Reply list = server.Get("/v1/service-accounts/" + name + "/tokens", admin);
  REQUIRE(list.status == 200);
  REQUIRE(list.json["items"].size() == 2);
  for (const auto& item : list.json["items"]) {
    CHECK(!item.contains("token"));
    CHECK(!item.contains("secret"));
    CHECK(!item.contains("secret_hash"));
    CHECK(!item.contains("hash"));
    CHECK(item["created_by"]["type"] == "user");
    CHECK(item["created_by"]["id"] == s.admin.user["id"]);
    CHECK(item.contains("last_used_at"));
    CHECK(item.contains("expires_at"));
  }
  Reply got = server.Get("/v1/service-accounts/" + name, admin);
  Reply audit = server.Get("/v1/audit?target_id=" + id, admin);
  const std::string log = server.Log();
  for (const std::string& secret : {secret1, secret2}) {
    CHECK(list.body.find(secret) == std::string::npos);
    CHECK(got.body.find(secret) == std::string::npos);
    CHECK(audit.body.find(secret) == std::string::npos);
    CHECK(log.find(secret) == std::string::npos);
  }
  CHECK(got.json["token_count"] == 2);

  // Both work; delete the first; the second still listed and still works.
  CHECK(Check(server, t1["token"], "company", "view").json["allowed"] == true);
  CHECK(Check(server, t2["token"], "company", "view").json["allowed"] == true);
  Reply del = server.Delete("/v1/service-accounts/" + name + "/tokens/" + t1["id"].get<std::string>(), admin);
  CHECK(del.status == 204);
  CHECK(del.body.empty());
  Reply after = server.Get("/v1/service-accounts/" + name + "/tokens", admin);
  REQUIRE(after.json["items"].size() == 1);
  CHECK(after.json["items"][0]["id"] == t2["id"]);
  CHECK(after.json["items"][0]["name"] == "second");
  Reply dead = Check(server, t1["token"], "company", "view");
  REQUIRE(dead.status == 200);
  CHECK(dead.json["allowed"] == false);
  CHECK(dead.json["reason"] == "TOKEN_INVALID");
  Reply alive = Check(server, t2["token"], "company", "view");
  CHECK(alive.json["allowed"] == true);
  CHECK(alive.json["principal"]["token_id"] == t2["id"]);
  CHECK(server.Get("/v1/service-accounts/" + name, admin).json["token_count"] == 1);

  // Deleting it again, or a token of another account, is 404.
  CHECK_ERROR(server.Delete("/v1/service-accounts/" + name + "/tokens/" + t1["id"].get<std::string>(), admin), 404, "not_found");
  const std::string other = Unique("tokens-other");
  CreateAccount(server, admin, other);
  CHECK_ERROR(server.Delete("/v1/service-accounts/" + other + "/tokens/" + t2["id"].get<std::string>(), admin), 404, "not_found");
  CHECK(Check(server, t2["token"], "company", "view").json["allowed"] == true);

  // An expiry is kept and shown.
  Reply expiring = server.Post("/v1/service-accounts/" + name + "/tokens", {{"name", "until-2099"}, {"expires_at", "2099-01-01T00:00:00Z"}}, admin);
  REQUIRE(expiring.status == 201);
  CHECK(expiring.json["expires_at"].get<std::string>().rfind("2099-01-01T00:00:00", 0) == 0);
  CHECK(Check(server, expiring.json["token"], "company", "view").json["allowed"] == true);
}

TEST_CASE("a disabled account's tokens are refused until it is enabled again", "[admin]") {
  SharedServer& s = Shared();
  const TestServer& server = *s.server;
  const std::string& admin = s.admin.token;
  const std::string name = Unique("toggle");
  CreateAccount(server, admin, name, {{"kind", "role"}, {"name", "developer"}});
  const std::string token = CreateToken(server, admin, name, "t")["token"];
  CHECK(Check(server, token, "company", "view").json["allowed"] == true);
  CHECK(server.Get("/v1/service-accounts", token).status == 200);  // developer may view accounts

  Reply off = server.Patch("/v1/service-accounts/" + name, {{"enabled", false}}, admin);
  REQUIRE(off.status == 200);
  CHECK(off.json["enabled"] == false);
  CHECK(server.Get("/v1/service-accounts/" + name, admin).json["enabled"] == false);
  Reply denied = Check(server, token, "company", "view");
  REQUIRE(denied.status == 200);
  CHECK(denied.json["allowed"] == false);
  CHECK(denied.json["reason"] == "ACCOUNT_DISABLED");
  CHECK_ERROR(server.Get("/v1/service-accounts", token), 401, "unauthenticated");
  // Tokens and permissions are kept while disabled.
  CHECK(server.Get("/v1/service-accounts/" + name + "/tokens", admin).json["items"].size() == 1);

  Reply on = server.Patch("/v1/service-accounts/" + name, {{"enabled", true}}, admin);
  REQUIRE(on.status == 200);
  CHECK(on.json["enabled"] == true);
  Reply allowed = Check(server, token, "company", "view");
  CHECK(allowed.json["allowed"] == true);
  CHECK(allowed.json["reason"] == "ALLOW_RULE");
  CHECK(server.Get("/v1/service-accounts", token).status == 200);
}

TEST_CASE("a renamed account keeps its id and tokens; its rule ids follow the new name", "[admin]") {
  SharedServer& s = Shared();
  const TestServer& server = *s.server;
  const std::string& admin = s.admin.token;
  const std::string name = Unique("before");
  const std::string id = CreateAccount(server, admin, name, {{"kind", "role"}, {"name", "viewer"}})["id"];
  const std::string token = CreateToken(server, admin, name, "t")["token"];
  CHECK(Check(server, token, "company", "view").json["rule"] == "sa:" + name + "#perm:company");

  const std::string renamed = Unique("after");
  Reply r = server.Patch("/v1/service-accounts/" + name, {{"name", renamed}, {"description", "renamed"}}, admin);
  REQUIRE(r.status == 200);
  CHECK(r.json["id"] == id);
  CHECK(r.json["name"] == renamed);
  CHECK(r.json["description"] == "renamed");
  CHECK_ERROR(server.Get("/v1/service-accounts/" + name, admin), 404, "not_found");
  CHECK(server.Get("/v1/service-accounts/" + renamed, admin).json["id"] == id);
  Reply check = Check(server, token, "company", "view");
  CHECK(check.json["allowed"] == true);
  CHECK(check.json["principal"]["name"] == renamed);
  CHECK(check.json["rule"] == "sa:" + renamed + "#perm:company");
  // The old name is free again.
  CHECK(CreateAccount(server, admin, name)["id"] != id);
}

TEST_CASE("deleting an account removes it and its tokens, keeps its history, frees its name", "[admin]") {
  SharedServer& s = Shared();
  const TestServer& server = *s.server;
  const std::string& admin = s.admin.token;
  const std::string name = Unique("doomed");
  nlohmann::json account = CreateAccount(server, admin, name, {{"kind", "role"}, {"name", "viewer"}});
  const std::string id = account["id"];
  const std::string token = CreateToken(server, admin, name, "t")["token"];
  REQUIRE(Check(server, token, "company", "view").json["allowed"] == true);
  REQUIRE(Check(server, token, "invoice", "export").json["allowed"] == false);

  Reply del = server.Delete("/v1/service-accounts/" + name, admin);
  CHECK(del.status == 204);
  CHECK_ERROR(server.Get("/v1/service-accounts/" + id, admin), 404, "not_found");
  CHECK_ERROR(server.Get("/v1/service-accounts/" + name, admin), 404, "not_found");
  CHECK_ERROR(server.Get("/v1/service-accounts/" + id + "/tokens", admin), 404, "not_found");
  CHECK_ERROR(server.Get("/v1/service-accounts/" + id + "/permissions", admin), 404, "not_found");
  CHECK_ERROR(server.Delete("/v1/service-accounts/" + id, admin), 404, "not_found");
  CHECK(!HasItemNamed(AllPages(server, "/v1/service-accounts", admin), name));
  Reply dead = Check(server, token, "company", "view");
  CHECK(dead.json["allowed"] == false);
  CHECK(dead.json["reason"] == "TOKEN_INVALID");

  // Its decision history stays readable by id, newest first, and still names it.
  Reply logs = server.Get("/v1/service-accounts/" + id + "/logs", admin);
  REQUIRE(logs.status == 200);
  REQUIRE(logs.json["items"].size() == 2);
  CHECK(logs.json["items"][0]["action"] == "export");
  CHECK(logs.json["items"][0]["allowed"] == false);
  CHECK(logs.json["items"][1]["action"] == "view");
  CHECK(logs.json["items"][1]["allowed"] == true);
  CHECK(logs.json["items"][1]["principal"]["name"] == name);
  CHECK(logs.json["items"][1]["principal"]["id"] == id);
  // The check with the deleted token is not the account's: it was not identified.
  CHECK(logs.body.find(token) == std::string::npos);

  // The audit row of the deletion names it.
  Reply audit = server.Get("/v1/audit?target_id=" + id, admin);
  REQUIRE(audit.status == 200);
  REQUIRE(!audit.json["items"].empty());
  CHECK(audit.json["items"][0]["action"] == "service_account.deleted");
  CHECK(audit.json["items"][0]["target"]["name"] == name);

  // The name can be used again, by a new account with a new id and no tokens.
  nlohmann::json again = CreateAccount(server, admin, name);
  CHECK(again["id"] != id);
  CHECK(again["token_count"] == 0);
  CHECK(server.Get("/v1/service-accounts/" + name, admin).json["id"] == again["id"]);
  CHECK(Check(server, token, "company", "view").json["reason"] == "TOKEN_INVALID");
  // The old id still answers its own history, not the new account's.
  CHECK(server.Get("/v1/service-accounts/" + id + "/logs", admin).json["items"].size() == 2);
}

}  // namespace
}  // namespace warden::testing
