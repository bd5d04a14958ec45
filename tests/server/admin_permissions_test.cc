// End-to-end: editing a service account's permissions, versions, and the no-escalation rule
// for users and for automation holding a token (issue 3).
#include <set>

#include <catch2/catch.hpp>

#include "tests/server/admin_fixture.h"

namespace warden::testing {
namespace {

const char kYamlType[] = "application/yaml";

std::string PolicyYaml(const std::string& permissions, const std::string& rules = "") {
  std::string out = "apiVersion: warden/v1\nkind: ServiceAccountPolicy\npermissions:\n" + permissions;
  if (!rules.empty()) out += "rules:\n" + rules;
  return out;
}

TEST_CASE("permissions are edited in YAML and JSON, broken edits change nothing, versions are kept", "[admin]") {
  SharedServer& s = Shared();
  const TestServer& server = *s.server;
  const std::string& admin = s.admin.token;
  const std::string name = Unique("editable");
  const std::string id = CreateAccount(server, admin, name)["id"];
  const std::string path = "/v1/service-accounts/" + name + "/permissions";
  const std::string token = CreateToken(server, admin, name, "t")["token"];
  CHECK(Check(server, token, "company", "view").json["allowed"] == false);

  // YAML.
  Reply put = Put(server, path, PolicyYaml("  company: [view]\n  invoice: [view, export]\n"), admin, kYamlType);
  INFO(put.body);
  REQUIRE(put.status == 200);
  CHECK(put.json["id"] == id);
  CHECK(put.json["version"] == 2);
  CHECK(Check(server, token, "company", "view").json["allowed"] == true);
  CHECK(Check(server, token, "invoice", "export").json["rule"] == "sa:" + name + "#perm:invoice");
  CHECK(Check(server, token, "company", "update").json["allowed"] == false);
  Reply yaml = GetYaml(server, path, admin);
  CHECK(yaml.body.find("invoice: [view, export]") != std::string::npos);
  CHECK(yaml.Header("ETag") == "\"2\"");

  // JSON, with a deny rule.
  nlohmann::json doc = {{"permissions", {{"company", {"view", "update"}}}},
                        {"rules", {{{"name", "no-updates-of-big"}, {"effect", "deny"}, {"models", {"company"}},
                                    {"actions", {"update"}}, {"when", "resource.arr > 1000"}}}}};
  put = Put(server, path, doc.dump(), admin, "application/json");
  REQUIRE(put.status == 200);
  CHECK(put.json["version"] == 3);
  Reply got = server.Get(path, admin);
  REQUIRE(got.status == 200);
  CHECK(got.json["version"] == 3);
  CHECK(got.json["account"] == name);
  CHECK(got.json["permissions"] == nlohmann::json{{"company", {"view", "update"}}});
  CHECK(got.json["rules"][0]["name"] == "no-updates-of-big");
  // The deny rule's condition needs resource.arr: without it the rule fails closed.
  Reply small = server.Post("/v1/check", {{"token", token}, {"model", "company"}, {"action", "update"}, {"resource", {{"arr", 10}}}});
  CHECK(small.json["allowed"] == true);
  CHECK(small.json["rule"] == "sa:" + name + "#perm:company");
  Reply unknown_arr = Check(server, token, "company", "update");
  CHECK(unknown_arr.json["allowed"] == false);
  CHECK(unknown_arr.json["results"][0]["eval_error"] == true);
  CHECK(Check(server, token, "invoice", "export").json["allowed"] == false);
  Reply big = server.Post("/v1/check", {{"token", token}, {"model", "company"}, {"action", "update"}, {"resource", {{"arr", 5000}}}});
  CHECK(big.json["allowed"] == false);
  CHECK(big.json["reason"] == "DENY_RULE");
  CHECK(big.json["rule"] == "sa:" + name + "#no-updates-of-big");

  // Broken edits: 400 with every error and its line:col; nothing changes.
  const std::string before_yaml = GetYaml(server, path, admin).body;
  struct Broken {
    std::string body;
    std::string content_type;
    std::vector<std::pair<int, int>> positions;  // line, column of each error
  };
  const std::vector<Broken> broken = {
      // Unknown model (line 4) and unknown action (line 5, at the action).
      {PolicyYaml("  compnay: [view]\n  company: [fly]\n"), kYamlType, {{4, 3}, {5, 13}}},
      // A YAML syntax error.
      {"apiVersion: warden/v1\nkind: ServiceAccountPolicy\npermissions: [company\n", kYamlType, {{4, 1}}},
      // An unknown key.
      {PolicyYaml("  company: [view]\n") + "permisions:\n  invoice: [view]\n", kYamlType, {{5, 1}}},
      // A condition that does not type-check (arr is a number).
      {PolicyYaml("  company: [view]\n", "  - name: r\n    effect: deny\n    models: [company]\n    actions: [view]\n    when: resource.arr == \"big\"\n"),
       kYamlType, {{10, 24}}},
  };
  for (const Broken& b : broken) {
    INFO(b.body);
    Reply r = Put(server, path, b.body, admin, b.content_type);
    CHECK_ERROR_FIELD(r, 400, "invalid_argument", "permissions");
    nlohmann::json errors = ErrorOf(r).value("errors", nlohmann::json::array());
    REQUIRE(errors.size() == b.positions.size());
    for (size_t i = 0; i < errors.size(); ++i) {
      CHECK(errors[i]["line"] == b.positions[i].first);
      CHECK(errors[i]["column"] == b.positions[i].second);
      CHECK(!errors[i]["message"].get<std::string>().empty());
      const std::string where = ":" + std::to_string(b.positions[i].first) + ":" + std::to_string(b.positions[i].second) + ":";
      CHECK(ErrorOf(r)["message"].get<std::string>().find(where) != std::string::npos);
    }
  }
  // JSON documents that are not policies.
  for (const std::string& body : {std::string(R"({"permissions": {"company": "view"}})"),
                                  std::string(R"({"permissions": {"nope": ["view"]}})"),
                                  std::string(R"({"permissions": []})"), std::string("{\"permissions\":")}) {
    INFO(body);
    Reply r = Put(server, path, body, admin, "application/json");
    CHECK(r.status == 400);
    CHECK(ErrorOf(r).value("code", "") == "invalid_argument");
  }
  // A JSON document that does not compile: each error names its JSON field (the client never
  // saw the YAML the server made of it, so lines and columns would point nowhere).
  {
    const nlohmann::json body = {
        {"permissions", {{"company", {"view", "fly"}}, {"compnay", {"view"}}}},
        {"rules", {{{"name", "r"}, {"effect", "deny"}, {"models", {"company"}}, {"actions", {"view"}},
                    {"when", "resource.arr == \"big\""}}}}};
    Reply r = Put(server, path, body.dump(), admin, "application/json");
    CHECK_ERROR_FIELD(r, 400, "invalid_argument", "permissions");
    nlohmann::json errors = ErrorOf(r).value("errors", nlohmann::json::array());
    std::vector<std::string> fields;
    for (const auto& e : errors) {
      fields.push_back(e.value("field", ""));
      CHECK(!e.contains("line"));
      CHECK(!e["message"].get<std::string>().empty());
      CHECK(ErrorOf(r)["message"].get<std::string>().find(e.value("field", "") + ": " + e["message"].get<std::string>()) !=
            std::string::npos);
    }
    // In key order: the server reads a JSON object with its keys sorted.
    CHECK(fields == std::vector<std::string>{"permissions.company[1]", "permissions.compnay", "rules[0].when"});
    CHECK(ErrorOf(r)["message"].get<std::string>().find("permissions.yaml") == std::string::npos);
  }
  Reply after = server.Get(path, admin);
  CHECK(after.json["version"] == 3);
  CHECK(after.json["permissions"] == nlohmann::json{{"company", {"view", "update"}}});
  CHECK(GetYaml(server, path, admin).body == before_yaml);
  CHECK(server.Post("/v1/check", {{"token", token}, {"model", "company"}, {"action", "update"}, {"resource", {{"arr", 10}}}})
            .json["allowed"] == true);
  CHECK(server.Get("/v1/service-accounts/" + name, admin).json["policy_version"] == 3);

  // An edit based on a stale version is refused (If-Match), and changes nothing.
  Reply stale = server.Call("PUT", path, PolicyYaml("  company: [view]\n"), admin, {{"If-Match", "\"2\""}}, kYamlType);
  CHECK(stale.status == 412);
  CHECK(ErrorOf(stale).value("code", "") == "failed_precondition");
  CHECK(server.Get(path, admin).json["version"] == 3);

  // Every change is a numbered version with who and when.
  Reply versions = server.Get(path + "/versions", admin);
  REQUIRE(versions.status == 200);
  REQUIRE(versions.json["items"].size() == 3);
  std::set<int> numbers;
  for (const auto& v : versions.json["items"]) {
    numbers.insert(v["version"].get<int>());
    CHECK(v["actor"]["type"] == "user");
    CHECK(v["actor"]["id"] == s.admin.user["id"]);
    CHECK(v["created_at"].is_string());
    CHECK(v["policy_yaml"].get<std::string>().find("kind: ServiceAccountPolicy") != std::string::npos);
  }
  CHECK(numbers == std::set<int>{1, 2, 3});
}

TEST_CASE("no escalation: a developer cannot grant what the developer role does not hold", "[admin]") {
  SharedServer& s = Shared();
  const TestServer& server = *s.server;
  const std::string& admin = s.admin.token;
  const std::string email = Unique("dev") + "@example.com";
  Reply user = server.Post("/v1/users", {{"email", email}, {"name", "Dev"}, {"role", "developer"}, {"password", "dev-password-1"}}, admin);
  REQUIRE(user.status == 201);
  const std::string dev = LoginSession(server, email, "dev-password-1").token;

  // Within the role: allowed, and recorded as the developer's.
  const std::string mine = Unique("dev-viewer");
  nlohmann::json created = CreateAccount(server, dev, mine, {{"kind", "role"}, {"name", "viewer"}});
  CHECK(created["created_by"]["id"] == user.json["id"]);
  CHECK(CreateToken(server, dev, mine, "t")["token"].is_string());

  // Copying from admin (user management, exports, deletes) is refused; nothing is created.
  const std::string too_much = Unique("dev-admin");
  Reply r = server.Post("/v1/service-accounts", {{"name", too_much}, {"copy_permissions_from", {{"kind", "role"}, {"name", "admin"}}}}, dev);
  CHECK_ERROR(r, 403, "permission_denied");
  CHECK(ErrorOf(r).value("message", "").find("no escalation") != std::string::npos);
  CHECK(ErrorOf(r).value("message", "").find("company:create") != std::string::npos);
  CHECK_ERROR(server.Get("/v1/service-accounts/" + too_much, admin), 404, "not_found");

  // Nor by copying an account that holds more than the developer.
  const std::string rich = Unique("admin-made");
  CreateAccount(server, admin, rich, {{"kind", "role"}, {"name", "admin"}});
  CHECK_ERROR(server.Post("/v1/service-accounts", {{"name", Unique("dev-copy")}, {"copy_permissions_from", {{"kind", "service_account"}, {"name", rich}}}}, dev),
              403, "permission_denied");

  // Nor by editing: a policy that allows invoice export is refused, the old one stays.
  const std::string path = "/v1/service-accounts/" + mine + "/permissions";
  Reply put = Put(server, path, PolicyYaml("  invoice: [view, export]\n"), dev, kYamlType);
  CHECK_ERROR(put, 403, "permission_denied");
  CHECK(ErrorOf(put).value("message", "").find("invoice:export") != std::string::npos);
  CHECK(ErrorOf(put)["missing"] == nlohmann::json::array({{{"model", "invoice"}, {"action", "export"}, {"reason", "not_held"}}}));
  put = Put(server, path, R"({"permissions": {"invoice": ["export"]}})", dev, "application/json");
  CHECK_ERROR(put, 403, "permission_denied");
  CHECK(server.Get(path, admin).json["version"] == 1);
  // Narrowing is fine.
  put = Put(server, path, PolicyYaml("  invoice: [view]\n"), dev, kYamlType);
  CHECK(put.status == 200);
  // Effective permissions count, after guardrails: invoice delete is denied to every account
  // by the guardrail, so naming it gives the account nothing the developer lacks.
  put = Put(server, path, PolicyYaml("  invoice: [view, delete]\n"), dev, kYamlType);
  CHECK(put.status == 200);
  put = Put(server, path, PolicyYaml("  invoice: [view, delete]\n"), admin, kYamlType);
  CHECK(put.status == 200);
  const std::string token = CreateToken(server, admin, mine, "t2")["token"];
  Reply del = Check(server, token, "invoice", "delete");
  CHECK(del.json["allowed"] == false);
  CHECK(del.json["reason"] == "GUARDRAIL_DENY");
  CHECK(del.json["rule"] == "guardrail:service-account-limits#no-invoice-delete");

  // User management is not the developer's.
  Reply users = server.Get("/v1/users", dev);
  CHECK_ERROR(users, 403, "permission_denied");
  CHECK(ErrorOf(users).value("message", "").find("NO_MATCHING_ALLOW") != std::string::npos);
  CHECK_ERROR(server.Post("/v1/users", {{"email", Unique("x") + "@example.com"}, {"role", "admin"}}, dev), 403, "permission_denied");
  CHECK_ERROR(server.Patch("/v1/users/" + user.json["id"].get<std::string>(), {{"role", "admin"}}, dev), 403, "permission_denied");
  CHECK_ERROR(server.Delete("/v1/users/" + s.admin.user["id"].get<std::string>(), dev), 403, "permission_denied");
  CHECK(server.Get("/v1/users/" + user.json["id"].get<std::string>(), admin).json["roles"] == nlohmann::json::array({"developer"}));
}

TEST_CASE("a service account manages accounts with its token only when its policy allows it", "[admin]") {
  SharedServer& s = Shared();
  const TestServer& server = *s.server;
  const std::string& admin = s.admin.token;

  const std::string bot = Unique("automation");
  const std::string bot_id = CreateAccount(server, admin, bot, {{"kind", "role"}, {"name", "developer"}})["id"];
  const std::string bot_token = CreateToken(server, admin, bot, "ci")["token"];
  const std::string made = Unique("made-by-bot");
  nlohmann::json created = CreateAccount(server, bot_token, made, {{"kind", "role"}, {"name", "viewer"}});
  CHECK(created["created_by"] == nlohmann::json{{"type", "service_account"}, {"id", bot_id}});
  CHECK(CreateToken(server, bot_token, made, "t")["token"].is_string());
  CHECK(server.Patch("/v1/service-accounts/" + made, {{"description", "made by automation"}}, bot_token).status == 200);
  Reply audit = server.Get("/v1/audit?target_id=" + created["id"].get<std::string>(), admin);
  REQUIRE(audit.status == 200);
  REQUIRE(!audit.json["items"].empty());
  for (const auto& item : audit.json["items"]) {
    CHECK(item["actor"] == nlohmann::json{{"type", "service_account"}, {"id", bot_id}});
  }
  // Bounded by its own policy: no escalation, no user management.
  CHECK_ERROR(server.Post("/v1/service-accounts", {{"name", Unique("bot-admin")}, {"copy_permissions_from", {{"kind", "role"}, {"name", "admin"}}}}, bot_token),
              403, "permission_denied");
  CHECK_ERROR(server.Get("/v1/users", bot_token), 403, "permission_denied");
  CHECK(server.Delete("/v1/service-accounts/" + made, bot_token).status == 204);

  // Without serviceaccount permissions: 403 naming the reason.
  const std::string plain = Unique("no-admin");
  CreateAccount(server, admin, plain, {{"kind", "role"}, {"name", "viewer"}});
  const std::string plain_token = CreateToken(server, admin, plain, "t")["token"];
  Reply denied = server.Get("/v1/service-accounts", plain_token);
  CHECK_ERROR(denied, 403, "permission_denied");
  CHECK(ErrorOf(denied).value("message", "") == "not allowed to view serviceaccount: NO_MATCHING_ALLOW");

  // Denied by a rule: the reason and the rule.
  const std::string ruled = Unique("ruled");
  CreateAccount(server, admin, ruled);
  REQUIRE(Put(server, "/v1/service-accounts/" + ruled + "/permissions",
              PolicyYaml("  serviceaccount: [view, create]\n",
                         "  - name: no-create\n    effect: deny\n    models: [serviceaccount]\n    actions: [create]\n"),
              admin, kYamlType).status == 200);
  const std::string ruled_token = CreateToken(server, admin, ruled, "t")["token"];
  CHECK(server.Get("/v1/service-accounts", ruled_token).status == 200);
  const std::string blocked = Unique("blocked");
  Reply rule_denied = server.Post("/v1/service-accounts", {{"name", blocked}}, ruled_token);
  CHECK_ERROR(rule_denied, 403, "permission_denied");
  CHECK(ErrorOf(rule_denied).value("message", "") ==
        "not allowed to create serviceaccount: DENY_RULE (rule sa:" + ruled + "#no-create)");
  CHECK_ERROR(server.Get("/v1/service-accounts/" + blocked, admin), 404, "not_found");
}

}  // namespace
}  // namespace warden::testing

namespace warden::testing {

TEST_CASE("provenance is the server's: copiedFrom is kept across edits and cannot be forged", "[admin]") {
  SharedServer& s = Shared();
  const TestServer& server = *s.server;
  const std::string& admin = s.admin.token;
  const std::string name = Unique("provenance");
  CreateAccount(server, admin, name, {{"kind", "role"}, {"name", "csm"}});
  const std::string path = "/v1/service-accounts/" + name + "/permissions";
  const nlohmann::json copied = server.Get(path, admin).json["copied_from"];
  REQUIRE(copied["kind"] == "role");
  REQUIRE(copied["name"] == "csm");
  REQUIRE(!copied["revision"].get<std::string>().empty());

  // Edits without provenance keep the server's, in JSON and in YAML.
  CHECK(Put(server, path, R"({"permissions": {"company": ["view"]}})", admin, "application/json").status == 200);
  CHECK(server.Get(path, admin).json["copied_from"] == copied);
  CHECK(Put(server, path, PolicyYaml("  company: [view, export]\n"), admin, kYamlType).status == 200);
  CHECK(server.Get(path, admin).json["copied_from"] == copied);
  const int64_t version = server.Get(path, admin).json["version"];

  // A made-up or changed provenance is refused, naming the field; nothing changes.
  nlohmann::json forged = copied;
  forged["revision"] = "deadbeef";
  Reply r = Put(server, path, nlohmann::json{{"copied_from", forged}, {"permissions", {{"company", {"view"}}}}}.dump(), admin,
                "application/json");
  CHECK_ERROR_FIELD(r, 400, "invalid_argument", "copied_from");
  r = Put(server, path,
          "apiVersion: warden/v1\nkind: ServiceAccountPolicy\ncopiedFrom: {kind: Role, name: admin, revision: " +
              copied["revision"].get<std::string>() + "}\npermissions:\n  company: [view]\n",
          admin, kYamlType);
  CHECK_ERROR_FIELD(r, 400, "invalid_argument", "copiedFrom");
  r = Put(server, path, "apiVersion: warden/v1\nkind: ServiceAccountPolicy\ncopiedFrom: {kind: Scratch}\npermissions: {}\n", admin, kYamlType);
  CHECK_ERROR_FIELD(r, 400, "invalid_argument", "copiedFrom");

  // The document names its own account or none.
  r = Put(server, path, "apiVersion: warden/v1\nkind: ServiceAccountPolicy\naccount: other-name\npermissions: {}\n", admin, kYamlType);
  CHECK_ERROR_FIELD(r, 400, "invalid_argument", "account");
  r = Put(server, path, R"({"account": "other-name", "permissions": {}})", admin, "application/json");
  CHECK_ERROR_FIELD(r, 400, "invalid_argument", "account");
  CHECK(server.Get(path, admin).json["version"] == version);
  CHECK(server.Get(path, admin).json["copied_from"] == copied);

  // A YAML document that repeats both exactly is stored as sent, comments and all.
  const std::string as_sent = "# kept\napiVersion: warden/v1\nkind: ServiceAccountPolicy\naccount: " + name +
                              "\ncopiedFrom: {kind: Role, name: csm, revision: " + copied["revision"].get<std::string>() +
                              "}\npermissions:\n  company: [view]\n";
  CHECK(Put(server, path, as_sent, admin, kYamlType).status == 200);
  CHECK(GetYaml(server, path, admin).body == as_sent);
}

}  // namespace warden::testing
