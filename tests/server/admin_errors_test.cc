// End-to-end: every kind of bad input to the admin API gets the one JSON error shape with
// the right 4xx, and changes nothing (issue 3).
#include <tuple>

#include <catch2/catch.hpp>

#include "tests/server/admin_fixture.h"

namespace warden::testing {
namespace {

struct BadRequest {
  std::string method;
  std::string path;  // "{a}" is the target account's name, "{u}" the target user's id
  std::string body;
  int status;
  std::string code;
  std::string field;  // "" when the error names no field
  std::string content_type = "application/json";
};

std::string Expand(std::string s, const std::string& account, const std::string& user) {
  for (auto [key, value] : {std::pair<std::string, std::string>{"{a}", account}, {"{u}", user}}) {
    for (size_t pos; (pos = s.find(key)) != std::string::npos;) s.replace(pos, key.size(), value);
  }
  return s;
}

// Everything a bad request could have changed.
nlohmann::json Snapshot(const TestServer& server, const std::string& bearer, const std::string& account) {
  return {{"accounts", AllPages(server, "/v1/service-accounts", bearer)},
          {"account", server.Get("/v1/service-accounts/" + account, bearer).json},
          {"permissions", GetYaml(server, "/v1/service-accounts/" + account + "/permissions", bearer).body},
          {"versions", server.Get("/v1/service-accounts/" + account + "/permissions/versions", bearer).json},
          {"tokens", server.Get("/v1/service-accounts/" + account + "/tokens", bearer).json},
          {"users", AllPages(server, "/v1/users", bearer)},
          {"audit", server.Get("/v1/audit?limit=5", bearer).json}};
}

TEST_CASE("bad input to the admin API is a 4xx with the error shape and changes nothing", "[admin]") {
  SharedServer& s = Shared();
  const TestServer& server = *s.server;
  const std::string& admin = s.admin.token;
  const std::string account = Unique("target");
  CreateAccount(server, admin, account, {{"kind", "role"}, {"name", "viewer"}});
  CreateToken(server, admin, account, "keep");
  Reply user = server.Post("/v1/users", {{"email", Unique("target") + "@example.com"}, {"role", "viewer"}}, admin);
  REQUIRE(user.status == 201);
  const std::string fresh = Unique("fresh");  // a name that must never get created

  const std::string sa = "/v1/service-accounts";
  const std::string from_role = R"(, "copy_permissions_from": {"kind": "role", "name": "viewer"})";
  const std::vector<BadRequest> cases = {
      // Malformed JSON and bodies that are not objects.
      {"POST", sa, R"({"name": ")" + fresh, 400, "invalid_argument", ""},
      {"POST", sa, "", 400, "invalid_argument", ""},
      {"POST", sa, R"(["name"])", 400, "invalid_argument", ""},
      {"POST", sa, "null", 400, "invalid_argument", ""},
      {"PATCH", sa + "/{a}", "{enabled: false}", 400, "invalid_argument", ""},
      {"POST", sa + "/{a}/tokens", "{", 400, "invalid_argument", ""},
      {"POST", "/v1/users", "{,}", 400, "invalid_argument", ""},
      {"PATCH", "/v1/users/{u}", "[]", 400, "invalid_argument", ""},
      {"PUT", sa + "/{a}/permissions", "{\"permissions\": {", 400, "invalid_argument", ""},
      // Wrong types.
      {"POST", sa, R"({"name": 42})", 400, "invalid_argument", "name"},
      {"POST", sa, R"({"name": ")" + fresh + R"(", "description": 7})", 400, "invalid_argument", "description"},
      {"POST", sa, R"({"name": ")" + fresh + R"(", "enabled": "yes"})", 400, "invalid_argument", "enabled"},
      {"POST", sa, R"({"name": ")" + fresh + R"(", "attributes": [1]})", 400, "invalid_argument", "attributes"},
      {"POST", sa, R"({"name": ")" + fresh + R"(", "copy_permissions_from": "viewer"})", 400, "invalid_argument", "copy_permissions_from"},
      {"POST", sa, R"({"name": ")" + fresh + R"(", "copy_permissions_from": {"kind": 1}})", 400, "invalid_argument", "copy_permissions_from.kind"},
      {"PATCH", sa + "/{a}", R"({"enabled": "false"})", 400, "invalid_argument", "enabled"},
      {"PATCH", sa + "/{a}", R"({"name": ["x"]})", 400, "invalid_argument", "name"},
      {"PATCH", sa + "/{a}", R"({"description": null})", 400, "invalid_argument", "description"},
      {"POST", sa + "/{a}/tokens", R"({"name": 1})", 400, "invalid_argument", "name"},
      {"POST", sa + "/{a}/tokens", R"({"name": "t", "expires_at": 1700000000})", 400, "invalid_argument", "expires_at"},
      {"POST", "/v1/users", R"({"email": 5, "role": "viewer"})", 400, "invalid_argument", "email"},
      {"POST", "/v1/users", R"({"email": "w@example.com", "role": ["viewer"]})", 400, "invalid_argument", "role"},
      {"PATCH", "/v1/users/{u}", R"({"enabled": 0})", 400, "invalid_argument", "enabled"},
      {"PATCH", "/v1/users/{u}", R"({"name": false})", 400, "invalid_argument", "name"},
      {"PUT", sa + "/{a}/permissions", R"({"permissions": {"company": "view"}})", 400, "invalid_argument", "permissions.company"},
      {"POST", "/v1/check", R"({"token": 5, "model": "company", "action": "view"})", 400, "invalid_argument", "token"},
      // Missing fields.
      {"POST", sa, "{}", 400, "invalid_argument", "name"},
      {"POST", sa, R"({"description": "no name")" + from_role + "}", 400, "invalid_argument", "name"},
      {"POST", sa, R"({"name": ")" + fresh + R"(", "copy_permissions_from": {"kind": "role"}})", 400, "invalid_argument", "copy_permissions_from.name"},
      {"POST", sa, R"({"name": ")" + fresh + R"(", "copy_permissions_from": {}})", 400, "invalid_argument", "copy_permissions_from.kind"},
      {"POST", sa + "/{a}/tokens", "{}", 400, "invalid_argument", "name"},
      {"POST", "/v1/users", R"({"role": "viewer"})", 400, "invalid_argument", "email"},
      {"POST", "/v1/users", R"({"email": "w@example.com"})", 400, "invalid_argument", "role"},
      {"POST", "/v1/check", R"({"token": "wdn_x", "action": "view"})", 400, "invalid_argument", "model"},
      // Unknown fields.
      {"POST", sa, R"({"name": ")" + fresh + R"(", "owner": "me"})", 400, "invalid_argument", "owner"},
      {"POST", sa, R"({"name": ")" + fresh + R"(", "copy_permissions_from": {"kind": "scratch", "from": "x"}})", 400, "invalid_argument", "copy_permissions_from.from"},
      {"PATCH", sa + "/{a}", R"({"policy": "x"})", 400, "invalid_argument", "policy"},
      {"POST", sa + "/{a}/tokens", R"({"name": "t", "scope": "all"})", 400, "invalid_argument", "scope"},
      {"POST", "/v1/users", R"({"email": "w@example.com", "role": "viewer", "is_admin": true})", 400, "invalid_argument", "is_admin"},
      {"PATCH", "/v1/users/{u}", R"({"password_hash": "x"})", 400, "invalid_argument", "password_hash"},
      {"PUT", sa + "/{a}/permissions", R"({"permissions": {}, "grants": []})", 400, "invalid_argument", "grants"},
      // Values out of range.
      {"POST", sa, R"({"name": ")" + fresh + R"(", "copy_permissions_from": {"kind": "role", "name": "root"}})", 400, "invalid_argument", "copy_permissions_from.name"},
      {"POST", sa, R"({"name": ")" + fresh + R"(", "copy_permissions_from": {"kind": "service_account", "name": "no-such-account"}})", 400, "invalid_argument", "copy_permissions_from.name"},
      {"POST", sa, R"({"name": ")" + fresh + R"(", "copy_permissions_from": {"kind": "group", "name": "x"}})", 400, "invalid_argument", "copy_permissions_from.kind"},
      {"POST", sa, R"({"name": ")" + fresh + R"(", "description": ")" + std::string(1001, 'd') + "\"}", 400, "invalid_argument", "description"},
      {"POST", sa + "/{a}/tokens", R"({"name": ""})", 400, "invalid_argument", "name"},
      {"POST", sa + "/{a}/tokens", R"({"name": "t", "expires_at": "tomorrow"})", 400, "invalid_argument", "expires_at"},
      {"POST", sa + "/{a}/tokens", R"({"name": "t", "expires_at": "2001-01-01T00:00:00Z"})", 400, "invalid_argument", "expires_at"},
      {"GET", sa + "?limit=0", "", 400, "invalid_argument", "limit"},
      {"GET", sa + "?limit=many", "", 400, "invalid_argument", "limit"},
      {"GET", "/v1/audit?limit=100000", "", 400, "invalid_argument", "limit"},
      {"GET", sa + "/{a}/logs?allowed=maybe", "", 400, "invalid_argument", "allowed"},
      {"GET", sa + "/{a}/logs?since=yesterday", "", 400, "invalid_argument", "since"},
      // Wrong content type.
      {"POST", sa, R"({"name": ")" + fresh + "\"}", 415, "unsupported_media_type", "Content-Type", "text/plain"},
      {"POST", sa, "name=" + fresh, 415, "unsupported_media_type", "Content-Type", "application/x-www-form-urlencoded"},
      {"PATCH", sa + "/{a}", R"({"enabled": false})", 415, "unsupported_media_type", "Content-Type", "text/plain"},
      {"POST", sa + "/{a}/tokens", R"({"name": "t"})", 415, "unsupported_media_type", "Content-Type", "application/yaml"},
      {"PUT", sa + "/{a}/permissions", "permissions: {}", 415, "unsupported_media_type", "Content-Type", "text/plain"},
      {"POST", "/v1/users", R"({"email": "w@example.com", "role": "viewer"})", 415, "unsupported_media_type", "Content-Type", "text/plain"},
      {"POST", "/v1/check", R"({"token": "x", "model": "company", "action": "view"})", 415, "unsupported_media_type", "Content-Type", "text/plain"},
      // Unknown ids.
      {"GET", sa + "/no-such-account", "", 404, "not_found", ""},
      {"PATCH", sa + "/no-such-account", R"({"enabled": false})", 404, "not_found", ""},
      {"DELETE", sa + "/no-such-account", "", 404, "not_found", ""},
      {"GET", sa + "/no-such-account/permissions", "", 404, "not_found", ""},
      {"PUT", sa + "/no-such-account/permissions", R"({"permissions": {}})", 404, "not_found", ""},
      {"GET", sa + "/no-such-account/permissions/versions", "", 404, "not_found", ""},
      {"GET", sa + "/no-such-account/tokens", "", 404, "not_found", ""},
      {"POST", sa + "/no-such-account/tokens", R"({"name": "t"})", 404, "not_found", ""},
      {"DELETE", sa + "/{a}/tokens/NoSuchToken", "", 404, "not_found", ""},
      {"GET", sa + "/no-such-account/logs", "", 404, "not_found", ""},
      {"GET", "/v1/users/no-such-user", "", 404, "not_found", ""},
      {"PATCH", "/v1/users/no-such-user", R"({"name": "x"})", 404, "not_found", ""},
      {"DELETE", "/v1/users/no-such-user", "", 404, "not_found", ""},
      {"GET", "/v1/roles/no-such-role", "", 404, "not_found", ""},
      {"GET", "/v1/no-such-endpoint", "", 404, "not_found", ""},
      {"POST", "/v1/no-such-endpoint", "{}", 404, "not_found", ""},
  };

  const nlohmann::json before = Snapshot(server, admin, account);
  for (const BadRequest& c : cases) {
    const std::string path = Expand(c.path, account, user.json["id"]);
    INFO(c.method << " " << path << " [" << c.content_type << "] " << c.body.substr(0, 200));
    Reply r = server.Call(c.method, path, c.body, admin, {}, c.content_type);
    CHECK_ERROR_FIELD(r, c.status, c.code, c.field);
    CHECK(r.Header("Content-Type").rfind("application/json", 0) == 0);
  }
  const nlohmann::json after = Snapshot(server, admin, account);
  for (const auto& [key, value] : before.items()) {
    INFO(key);
    CHECK(after[key] == value);
  }
  CHECK_ERROR(server.Get(sa + "/" + fresh, admin), 404, "not_found");
}

TEST_CASE("media types are matched case-insensitively, with parameters", "[admin]") {
  SharedServer& s = Shared();
  const TestServer& server = *s.server;
  const std::string& admin = s.admin.token;
  const std::string name = Unique("media");
  Reply created = server.Call("POST", "/v1/service-accounts", nlohmann::json{{"name", name}}.dump(), admin, {},
                              "Application/JSON; charset=utf-8");
  CHECK(created.status == 201);
  Reply put = server.Call("PUT", "/v1/service-accounts/" + name + "/permissions",
                          "apiVersion: warden/v1\nkind: ServiceAccountPolicy\npermissions:\n  company: [view]\n", admin, {},
                          "Application/YAML");
  CHECK(put.status == 200);
  Reply yaml = server.Call("GET", "/v1/service-accounts/" + name + "/permissions", "", admin, {{"Accept", "TEXT/YAML"}});
  CHECK(yaml.body.find("company: [view]") != std::string::npos);
  Reply check = server.Call("POST", "/v1/check", R"({"token": "wdn_x", "model": "company", "action": "view"})", "", {},
                            "APPLICATION/JSON");
  CHECK(check.status == 200);
  CHECK(check.json["reason"] == "TOKEN_INVALID");
}

TEST_CASE("bodies over the payload limit are refused with 413 and change nothing", "[admin]") {
  TempDir dir;
  TestServer server({.data_dir = dir.path(), .env = {{"WARDEN_PAYLOAD_LIMIT", "2048"}}});
  const std::string admin = server.Login();
  const std::string account = "limited";
  CreateAccount(server, admin, account);
  const nlohmann::json before = Snapshot(server, admin, account);

  const std::string big(3000, 'x');
  const std::vector<std::tuple<std::string, std::string, std::string, std::string>> cases = {
      {"POST", "/v1/service-accounts", nlohmann::json{{"name", "too-big"}, {"description", big}}.dump(), "application/json"},
      {"PATCH", "/v1/service-accounts/limited", nlohmann::json{{"description", big}}.dump(), "application/json"},
      {"PUT", "/v1/service-accounts/limited/permissions",
       "apiVersion: warden/v1\nkind: ServiceAccountPolicy\ndescription: " + big + "\npermissions: {}\n", "application/yaml"},
      {"POST", "/v1/service-accounts/limited/tokens", nlohmann::json{{"name", big}}.dump(), "application/json"},
      {"POST", "/v1/users", nlohmann::json{{"email", "big@example.com"}, {"role", "viewer"}, {"name", big}}.dump(), "application/json"},
      {"POST", "/v1/auth/login", nlohmann::json{{"email", "admin@localhost"}, {"password", big}}.dump(), "application/json"},
      {"POST", "/v1/check", nlohmann::json{{"token", "x"}, {"model", "company"}, {"action", "view"}, {"resource", {{"id", big}}}}.dump(), "application/json"},
  };
  for (const auto& [method, path, body, type] : cases) {
    INFO(method << " " << path);
    Reply r = server.Call(method, path, body, admin, {}, type);
    CHECK_ERROR_FIELD(r, 413, "payload_too_large", "body");
  }
  const nlohmann::json after = Snapshot(server, admin, account);
  for (const auto& [key, value] : before.items()) {
    INFO(key);
    CHECK(after[key] == value);
  }
  // Just under the limit is fine.
  Reply ok = server.Patch("/v1/service-accounts/limited", {{"description", std::string(900, 'y')}}, admin);
  CHECK(ok.status == 200);
}

}  // namespace
}  // namespace warden::testing
