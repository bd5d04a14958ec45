// End-to-end tests of POST /v1/check through real HTTP against a real `warden serve`:
// every reason code, batches, attribution, the tenant token, revocation on the very next
// check, bad input (4xx, no log row), one row per evaluated check, no token in the database
// or the server log, metrics and health.
#include <catch2/catch.hpp>

#include <chrono>
#include <regex>
#include <set>
#include <thread>

#include "common/clock.h"
#include "common/crypto.h"
#include "tests/server/check_helpers.h"
#include "tests/server/harness.h"

namespace warden::testing {
namespace {

using json = nlohmann::json;

TEST_CASE("check: every reason code, through real HTTP", "[check]") {
  TempDir dir;
  TestServer server({.data_dir = dir.path()});
  const std::string session = server.Login();
  AccountRef reader = CreateAccount(server, session, "reader", "role", "viewer");
  AccountRef csm = CreateAccount(server, session, "csm-sync", "role", "csm");
  AccountRef admin = CreateAccount(server, session, "admin-copy", "role", "admin");
  const std::string reader_token = CreateToken(server, session, reader.name).token;
  const std::string csm_token = CreateToken(server, session, csm.name).token;
  const std::string admin_token = CreateToken(server, session, admin.name).token;

  SECTION("ALLOW_RULE and NO_MATCHING_ALLOW") {
    Reply r = Check(server, reader_token, "company", "view", {{"id", "c1"}});
    INFO(r.body);
    REQUIRE(r.status == 200);
    CHECK(r.json["allowed"] == true);
    CHECK(r.json["reason"] == "ALLOW_RULE");
    CHECK(r.json["rule"] == "sa:reader#perm:company");
    CHECK(r.json["results"].size() == 1);
    CHECK(r.json["results"][0]["eval_error"] == false);

    r = Check(server, reader_token, "company", "delete", {{"id", "c1"}});
    REQUIRE(r.status == 200);
    CHECK(r.json["allowed"] == false);
    CHECK(r.json["reason"] == "NO_MATCHING_ALLOW");
    CHECK(r.json["rule"].is_null());
  }

  SECTION("DENY_RULE: a csm copy updating a company owned by someone else") {
    Reply r = Check(server, csm_token, "company", "update", {{"id", "c1"}, {"owner", "someone-else"}});
    INFO(r.body);
    REQUIRE(r.status == 200);
    CHECK(r.json["allowed"] == false);
    CHECK(r.json["reason"] == "DENY_RULE");
    CHECK(r.json["rule"] == "sa:csm-sync#own-portfolio");
    CHECK(r.json["results"][0]["eval_error"] == false);
    // principal.id is the account id: its own company may be updated.
    r = Check(server, csm_token, "company", "update", {{"id", "c2"}, {"owner", csm.id}});
    REQUIRE(r.status == 200);
    CHECK(r.json["allowed"] == true);
    CHECK(r.json["reason"] == "ALLOW_RULE");
    CHECK(r.json["rule"] == "sa:csm-sync#perm:company");
  }

  SECTION("eval_error fails closed: a deny whose condition cannot be evaluated matches") {
    Reply r = Check(server, csm_token, "company", "update", {{"id", "c3"}});  // no owner
    INFO(r.body);
    REQUIRE(r.status == 200);
    CHECK(r.json["allowed"] == false);
    CHECK(r.json["reason"] == "DENY_RULE");
    CHECK(r.json["rule"] == "sa:csm-sync#own-portfolio");
    CHECK(r.json["results"][0]["eval_error"] == true);
    // Wrong type: owner is a string in the catalog.
    r = Check(server, csm_token, "company", "update", {{"id", "c3"}, {"owner", 42}});
    INFO(r.body);
    REQUIRE(r.status == 200);
    CHECK(r.json["allowed"] == false);
    CHECK(r.json["reason"] == "DENY_RULE");
    CHECK(r.json["results"][0]["eval_error"] == true);
    // The row records the evaluation error.
    auto rows = AllPages(server, session, "/v1/service-accounts/" + csm.id + "/logs");
    REQUIRE(!rows.empty());
    CHECK(rows.back()["eval_error"] == true);
    CHECK(rows.back()["reason"] == "DENY_RULE");
  }

  SECTION("GUARDRAIL_DENY: an account copied from admin deleting an invoice") {
    Reply r = Check(server, admin_token, "invoice", "delete", {{"id", "inv-1"}});
    INFO(r.body);
    REQUIRE(r.status == 200);
    CHECK(r.json["allowed"] == false);
    CHECK(r.json["reason"] == "GUARDRAIL_DENY");
    CHECK(r.json["rule"] == "guardrail:service-account-limits#no-invoice-delete");
    r = Check(server, admin_token, "invoice", "update", {{"id", "inv-1"}});
    REQUIRE(r.status == 200);
    CHECK(r.json["allowed"] == true);
    CHECK(r.json["reason"] == "ALLOW_RULE");
  }

  SECTION("UNKNOWN_MODEL and UNKNOWN_ACTION, decided before the token state") {
    CHECK(CheckReason(server, admin_token, "spaceship", "view") == "UNKNOWN_MODEL");
    CHECK(CheckReason(server, admin_token, "company", "launch") == "UNKNOWN_ACTION");
    CHECK(CheckReason(server, "garbage", "spaceship", "view") == "UNKNOWN_MODEL");
    CHECK(CheckReason(server, "garbage", "company", "launch") == "UNKNOWN_ACTION");
    Reply r = Check(server, admin_token, "spaceship", "view");
    CHECK(r.json["allowed"] == false);
    CHECK(r.json["rule"].is_null());
  }

  SECTION("ACCOUNT_DISABLED") {
    REQUIRE(server.Patch("/v1/service-accounts/" + reader.id, {{"enabled", false}}, session).status == 200);
    Reply r = Check(server, reader_token, "company", "view");
    INFO(r.body);
    REQUIRE(r.status == 200);
    CHECK(r.json["allowed"] == false);
    CHECK(r.json["reason"] == "ACCOUNT_DISABLED");
    CHECK(r.json["principal"]["id"] == reader.id);  // still attributed to the account
  }

  SECTION("TOKEN_INVALID: malformed, unknown but well-formed, wrong secret, deleted, expired") {
    CHECK(CheckReason(server, "garbage", "company", "view") == "TOKEN_INVALID");
    CHECK(CheckReason(server, "", "company", "view") == "TOKEN_INVALID");
    std::string tampered = reader_token;
    tampered[tampered.size() - 8] = tampered[tampered.size() - 8] == 'a' ? 'b' : 'a';  // CRC no longer matches
    CHECK(CheckReason(server, tampered, "company", "view") == "TOKEN_INVALID");

    ApiToken unknown = NewApiToken("wdn");
    Reply r = Check(server, FormatApiToken(unknown), "company", "view");
    INFO(r.body);
    REQUIRE(r.status == 200);
    CHECK(r.json["allowed"] == false);
    CHECK(r.json["reason"] == "TOKEN_INVALID");
    CHECK(r.json["principal"]["id"].is_null());

    ApiToken parsed = ParseApiToken(reader_token, "wdn").value();
    ApiToken wrong_secret = NewApiToken("wdn");
    wrong_secret.id = parsed.id;  // an existing id with another secret
    CHECK(CheckReason(server, FormatApiToken(wrong_secret), "company", "view") == "TOKEN_INVALID");
    CHECK(CheckReason(server, reader_token, "company", "view") == "ALLOW_RULE");

    TokenRef doomed = CreateToken(server, session, reader.name, "doomed");
    CHECK(CheckReason(server, doomed.token, "company", "view") == "ALLOW_RULE");
    REQUIRE(server.Delete("/v1/service-accounts/" + reader.id + "/tokens/" + doomed.id, session).status == 204);
    CHECK(CheckReason(server, doomed.token, "company", "view") == "TOKEN_INVALID");

    const int64_t expires = SystemClock().NowMillis() + 3000;
    TokenRef brief = CreateToken(server, session, reader.name, "brief", FormatTimestamp(expires));
    CHECK(CheckReason(server, brief.token, "company", "view") == "ALLOW_RULE");
    // The expiry is a known instant on this machine's clock: wait for it, then check once.
    std::this_thread::sleep_until(std::chrono::system_clock::time_point(std::chrono::milliseconds(expires + 20)));
    r = Check(server, brief.token, "company", "view");
    REQUIRE(r.status == 200);
    CHECK(r.json["reason"] == "TOKEN_INVALID");
    CHECK(r.json["principal"]["token_id"] == brief.id);
    CHECK(CheckReason(server, reader_token, "company", "view") == "ALLOW_RULE");
  }
}

TEST_CASE("check: batches answer in order and are limited to 100 checks", "[check]") {
  TempDir dir;
  TestServer server({.data_dir = dir.path()});
  const std::string session = server.Login();
  AccountRef csm = CreateAccount(server, session, "batcher", "role", "csm");
  const std::string token = CreateToken(server, session, csm.name).token;

  const int64_t before = DecisionRowCount(server);
  json checks = json::array({
      {{"model", "company"}, {"action", "view"}, {"resource", {{"id", "c1"}}}},
      {{"model", "company"}, {"action", "delete"}},
      {{"model", "company"}, {"action", "update"}, {"resource", {{"id", "c2"}, {"owner", "x"}}}},
      {{"model", "spaceship"}, {"action", "view"}},
      {{"model", "invoice"}, {"action", "view"}},
      {{"model", "enduser"}, {"action", "create"}},
  });
  Reply r = server.Post("/v1/check", {{"token", token}, {"checks", checks}});
  INFO(r.body);
  REQUIRE(r.status == 200);
  const json& results = r.json["results"];
  REQUIRE(results.size() == 6);
  const std::vector<std::pair<bool, std::string>> expected = {
      {true, "ALLOW_RULE"}, {false, "NO_MATCHING_ALLOW"}, {false, "DENY_RULE"},
      {false, "UNKNOWN_MODEL"}, {false, "NO_MATCHING_ALLOW"}, {true, "ALLOW_RULE"}};
  std::set<std::string> ids;
  for (size_t i = 0; i < expected.size(); ++i) {
    INFO("check " << i);
    CHECK(results[i]["model"] == checks[i]["model"]);
    CHECK(results[i]["action"] == checks[i]["action"]);
    CHECK(results[i]["allowed"] == expected[i].first);
    CHECK(results[i]["reason"] == expected[i].second);
    ids.insert(results[i]["decision_id"].get<std::string>());
  }
  CHECK(ids.size() == 6);
  CHECK(r.json["decision_id"] == results[0]["decision_id"]);
  CHECK(!r.json.contains("allowed"));  // a batch answers per check only
  CHECK(DecisionRowCount(server) == before + 6);

  // The row of every result exists, with that result's outcome.
  auto rows = AllPages(server, session, "/v1/service-accounts/batcher/logs");
  REQUIRE(rows.size() == 6);
  for (const auto& row : rows) {
    CHECK(ids.count(row["decision_id"].get<std::string>()) == 1);
  }

  json hundred = json::array();
  for (int i = 0; i < 100; ++i) hundred.push_back({{"model", "company"}, {"action", "view"}, {"resource", {{"id", std::to_string(i)}}}});
  r = server.Post("/v1/check", {{"token", token}, {"checks", hundred}});
  REQUIRE(r.status == 200);
  CHECK(r.json["results"].size() == 100);
  CHECK(DecisionRowCount(server) == before + 106);

  hundred.push_back({{"model", "company"}, {"action", "view"}});
  r = server.Post("/v1/check", {{"token", token}, {"checks", hundred}});
  CHECK(r.status == 400);
  CHECK(r.json["error"]["field"] == "checks");
  CHECK(DecisionRowCount(server) == before + 106);
}

TEST_CASE("check: names that need JSON escapes come back exactly as sent", "[check]") {
  TempDir dir;
  TestServer server({.data_dir = dir.path()});
  const std::string session = server.Login();
  AccountRef csm = CreateAccount(server, session, "escaper", "role", "csm");
  const std::string token = CreateToken(server, session, csm.name).token;
  // The answer is written without a JSON tree (check_routes.cc AppendJsonString).
  const std::vector<std::string> models = {"q\"uote", "back\\slash", "new\nline\ttab\r\b\f", std::string("ctl\x01\x1f", 5),
                                           "caf\xc3\xa9 \xe2\x9c\x93", "plain", "\"", ""};
  json checks = json::array();
  for (const auto& m : models) {
    if (!m.empty()) checks.push_back({{"model", m}, {"action", "view\"x"}});
  }
  Reply r = server.Post("/v1/check", {{"token", token}, {"checks", checks}});
  INFO(r.body);
  REQUIRE(r.status == 200);
  REQUIRE(r.json["results"].size() == checks.size());
  for (size_t i = 0; i < checks.size(); ++i) {
    CHECK(r.json["results"][i]["model"] == checks[i]["model"]);
    CHECK(r.json["results"][i]["action"] == "view\"x");
    CHECK(r.json["results"][i]["reason"] == "UNKNOWN_MODEL");
  }
}

TEST_CASE("check: one access-log line per request: time, method, path, status, latency, request id", "[check]") {
  TempDir dir;
  TestServer server({.data_dir = dir.path()});
  const std::string session = server.Login();
  AccountRef csm = CreateAccount(server, session, "logged", "role", "csm");
  const std::string token = CreateToken(server, session, csm.name).token;
  const json body = {{"token", token}, {"model", "company"}, {"action", "view"}};
  REQUIRE(server.Call("POST", "/v1/check?secret=query-value", body.dump(), "", {{"X-Request-Id", "rid-check-1"}}).status == 200);
  REQUIRE(server.Call("GET", "/v1/no-such-thing", "", "", {{"X-Request-Id", "rid-missing-2"}}).status == 404);
  const std::string long_id(200, 'r');  // over 128 characters: replaced by a generated id
  Reply replaced = server.Call("POST", "/v1/check", body.dump(), "", {{"X-Request-Id", long_id}});
  REQUIRE(replaced.status == 200);
  const std::string generated = replaced.Header("X-Request-Id");
  REQUIRE(generated.size() == 26);

  // A pass's lines are written after its answers are sent: wait for the last one.
  std::string log = server.Log();
  for (int i = 0; i < 200 && log.find("rid=" + generated + "\n") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    log = server.Log();
  }
  INFO(log);
  const std::regex check_line(R"((^|\n)\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z POST /v1/check 200 \d+\.\d{3}ms rid=rid-check-1\n)");
  CHECK(std::regex_search(log, check_line));
  const std::regex missing_line(R"((^|\n)\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z GET /v1/no-such-thing 404 \d+\.\d{3}ms rid=rid-missing-2\n)");
  CHECK(std::regex_search(log, missing_line));
  CHECK(log.find(" POST /v1/check 200 ") != std::string::npos);
  CHECK(log.find("rid=" + generated + "\n") != std::string::npos);
  CHECK(log.find(long_id) == std::string::npos);
  CHECK(log.find("query-value") == std::string::npos);
  CHECK(log.find(token) == std::string::npos);
}

TEST_CASE("check: the principal is named in the answer and in the decision log", "[check]") {
  TempDir dir;
  TestServer server({.data_dir = dir.path()});
  const std::string session = server.Login();
  AccountRef sync = CreateAccount(server, session, "crm-sync", "role", "csm");
  TokenRef token = CreateToken(server, session, sync.name, "prod");

  json body = {{"token", token.token},
               {"model", "enduser"},
               {"action", "update"},
               {"resource", {{"id", "u-77"}, {"owner", sync.id}}},
               {"context", {{"client_address", "203.0.113.9"}, {"method", "PATCH"},
                            {"path", "/api/endusers/u-77"}, {"request_id", "req-123"}}}};
  Reply r = server.Post("/v1/check", body);
  INFO(r.body);
  REQUIRE(r.status == 200);
  CHECK(r.json["allowed"] == true);
  const json expected_principal = {{"type", "service_account"}, {"id", sync.id}, {"name", "crm-sync"}, {"token_id", token.id}};
  CHECK(r.json["principal"] == expected_principal);
  const std::string revision = r.json["policy_revision"].get<std::string>();
  CHECK(!revision.empty());

  auto rows = AllPages(server, session, "/v1/service-accounts/" + sync.id + "/logs");
  REQUIRE(rows.size() == 1);
  const json& row = rows[0];
  CHECK(row["decision_id"] == r.json["decision_id"]);
  CHECK(row["principal"] == expected_principal);
  CHECK(row["model"] == "enduser");
  CHECK(row["action"] == "update");
  CHECK(row["resource_id"] == "u-77");
  CHECK(row["allowed"] == true);
  CHECK(row["reason"] == "ALLOW_RULE");
  CHECK(row["rule"] == "sa:crm-sync#perm:enduser");
  CHECK(row["eval_error"] == false);
  CHECK(row["policy_revision"] == revision);
  const json expected_context = {{"client_addr", "203.0.113.9"}, {"method", "PATCH"},
                                 {"path", "/api/endusers/u-77"}, {"request_id", "req-123"}};
  CHECK(row["context"] == expected_context);
  CHECK(row["latency_us"].get<int64_t>() >= 0);
  // The history is also readable by the account's name.
  CHECK(AllPages(server, session, "/v1/service-accounts/crm-sync/logs").size() == 1);
  // Without a client address in the context, the connection's address is recorded.
  REQUIRE(Check(server, token.token, "company", "view").status == 200);
  rows = AllPages(server, session, "/v1/service-accounts/" + sync.id + "/logs");
  REQUIRE(rows.size() == 2);
  CHECK(rows[0]["context"]["client_addr"] == "127.0.0.1");
}

TEST_CASE("check: a token's last_used_at is written off the request path", "[check]") {
  TempDir dir;
  TestServer server({.data_dir = dir.path()});
  const std::string session = server.Login();
  AccountRef acct = CreateAccount(server, session, "used", "role", "viewer");
  TokenRef token = CreateToken(server, session, acct.name);
  const std::string tokens = "/v1/service-accounts/" + acct.id + "/tokens";
  Reply list = server.Get(tokens, session);
  REQUIRE(list.status == 200);
  REQUIRE(list.json["items"].size() == 1);
  CHECK(list.json["items"][0]["last_used_at"].is_null());
  const int64_t before = SystemClock().NowMillis();
  REQUIRE(CheckReason(server, token.token, "company", "view") == "ALLOW_RULE");
  // Flushed by the maintenance thread about once a second: poll.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  for (;;) {
    list = server.Get(tokens, session);
    REQUIRE(list.status == 200);
    if (!list.json["items"][0]["last_used_at"].is_null()) break;
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  int64_t used = 0;
  REQUIRE(ParseTimestamp(list.json["items"][0]["last_used_at"].get<std::string>(), &used));
  CHECK(used >= before);
  CHECK(used <= SystemClock().NowMillis());
  CHECK(list.json["items"][0].count("token") == 0);  // the secret is shown once only
}

TEST_CASE("check: the tenant token creates analytics events and nothing else", "[check]") {
  TempDir dir;
  TestServer server({.data_dir = dir.path()});
  const std::string session = server.Login();
  Reply tenant = server.Get("/v1/tenant", session);
  INFO(tenant.body);
  REQUIRE(tenant.status == 200);
  const std::string old_token = tenant.json["tenant_token"].get<std::string>();
  REQUIRE(!old_token.empty());
  CHECK(tenant.json["analytics"] == json::array({"user_activity", "custom_metric"}));

  auto tenant_check = [&](const std::string& tok, const std::string& model, const std::string& action) {
    return server.Post("/v1/check", {{"tenant_token", tok}, {"model", model}, {"action", action}});
  };
  Reply r = tenant_check(old_token, "user_activity", "create");
  INFO(r.body);
  REQUIRE(r.status == 200);
  CHECK(r.json["allowed"] == true);
  CHECK(r.json["reason"] == "ALLOW_RULE");
  CHECK(r.json["principal"]["type"] == "tenant");
  CHECK(tenant_check(old_token, "custom_metric", "create").json["allowed"] == true);
  for (auto [model, action] : {std::pair{"company", "view"}, {"invoice", "delete"}, {"enduser", "create"},
                               {"serviceaccount", "create"}}) {
    INFO(model << " " << action);
    Reply denied = tenant_check(old_token, model, action);
    REQUIRE(denied.status == 200);
    CHECK(denied.json["allowed"] == false);
    CHECK(denied.json["reason"] == "NO_MATCHING_ALLOW");
  }
  CHECK(tenant_check(old_token, "user_activity", "view").json["reason"] == "UNKNOWN_ACTION");
  CHECK(tenant_check("not-the-tenant-token", "user_activity", "create").json["reason"] == "TOKEN_INVALID");
  // An API token is not a tenant token, and the tenant token is not an API token.
  CHECK(CheckReason(server, old_token, "user_activity", "create") == "TOKEN_INVALID");

  Reply rotated = server.Post("/v1/tenant/token:rotate", json::object(), session);
  INFO(rotated.body);
  REQUIRE(rotated.status == 200);
  const std::string new_token = rotated.json["tenant_token"].get<std::string>();
  CHECK(new_token != old_token);
  r = tenant_check(old_token, "user_activity", "create");
  CHECK(r.json["allowed"] == false);
  CHECK(r.json["reason"] == "TOKEN_INVALID");
  r = tenant_check(new_token, "user_activity", "create");
  CHECK(r.json["allowed"] == true);
  CHECK(server.Get("/v1/tenant", session).json["tenant_token"] == new_token);
}

TEST_CASE("check: every revocation path takes effect on the very next check", "[check]") {
  TempDir dir;
  TestServer server({.data_dir = dir.path()});
  const std::string session = server.Login();
  AccountRef acct = CreateAccount(server, session, "revocable", "role", "viewer");
  TokenRef first = CreateToken(server, session, acct.id, "first");
  TokenRef second = CreateToken(server, session, acct.id, "second");
  const std::string path = "/v1/service-accounts/" + acct.id;

  // Disable, enable: each check right after the change, with a warm cache before it.
  CHECK(CheckReason(server, first.token, "company", "view") == "ALLOW_RULE");
  REQUIRE(server.Patch(path, {{"enabled", false}}, session).status == 200);
  CHECK(CheckReason(server, first.token, "company", "view") == "ACCOUNT_DISABLED");
  CHECK(CheckReason(server, second.token, "company", "view") == "ACCOUNT_DISABLED");
  REQUIRE(server.Patch(path, {{"enabled", true}}, session).status == 200);
  CHECK(CheckReason(server, first.token, "company", "view") == "ALLOW_RULE");

  // Change permissions: viewer -> company update only.
  CHECK(CheckReason(server, first.token, "company", "update") == "NO_MATCHING_ALLOW");
  Reply perms = server.Get(path + "/permissions", session);
  INFO(perms.body);
  REQUIRE(perms.status == 200);
  json doc = perms.json;
  doc["permissions"] = {{"company", {"update"}}};
  doc.erase("rules");
  Reply put = server.Call("PUT", path + "/permissions", doc.dump(), session);
  INFO(put.body);
  REQUIRE(put.status == 200);
  CHECK(CheckReason(server, first.token, "company", "update") == "ALLOW_RULE");
  CHECK(CheckReason(server, first.token, "company", "view") == "NO_MATCHING_ALLOW");

  // Delete one token: the other keeps working.
  CHECK(CheckReason(server, second.token, "company", "update") == "ALLOW_RULE");
  REQUIRE(server.Delete(path + "/tokens/" + second.id, session).status == 204);
  CHECK(CheckReason(server, second.token, "company", "update") == "TOKEN_INVALID");
  CHECK(CheckReason(server, first.token, "company", "update") == "ALLOW_RULE");

  // Delete the account: its remaining token stops at once; its history stays readable.
  REQUIRE(server.Delete(path, session).status == 204);
  CHECK(CheckReason(server, first.token, "company", "update") == "TOKEN_INVALID");
  auto rows = AllPages(server, session, path + "/logs");
  // Its 9 checks with a live token; a deleted token's check names no account.
  CHECK(rows.size() == 9);
}

// The body of each bad request and the field its error must name.
struct BadInput {
  const char* name;
  std::string body;
  std::string content_type;
  int status;
  std::string field;  // empty: not checked
};

TEST_CASE("check: bad input on every field is a 4xx and writes no row", "[check]") {
  TempDir dir;
  TestServer server({.data_dir = dir.path()});
  const std::string session = server.Login();
  AccountRef acct = CreateAccount(server, session, "strict", "role", "viewer");
  const std::string token = CreateToken(server, session, acct.name).token;
  REQUIRE(CheckReason(server, token, "company", "view") == "ALLOW_RULE");
  const int64_t rows_before = DecisionRowCount(server);
  REQUIRE(rows_before == 1);

  const std::string t = "\"token\": \"" + token + "\"";
  json too_many = json::array();
  for (int i = 0; i < 101; ++i) too_many.push_back({{"model", "company"}, {"action", "view"}});
  const std::string json_ct = "application/json";
  const std::vector<BadInput> cases = {
      {"not JSON", "{\"token\": ", json_ct, 400, ""},
      {"not an object", "[1, 2]", json_ct, 400, ""},
      {"wrong content type", "{" + t + ", \"model\": \"company\", \"action\": \"view\"}", "text/plain", 415, ""},
      {"missing token", "{\"model\": \"company\", \"action\": \"view\"}", json_ct, 400, "token"},
      {"both token and tenant_token", "{" + t + ", \"tenant_token\": \"x\", \"model\": \"company\", \"action\": \"view\"}", json_ct, 400, "token"},
      {"token not a string", "{\"token\": 7, \"model\": \"company\", \"action\": \"view\"}", json_ct, 400, "token"},
      {"missing model", "{" + t + ", \"action\": \"view\"}", json_ct, 400, "model"},
      {"non-string model", "{" + t + ", \"model\": 12, \"action\": \"view\"}", json_ct, 400, "model"},
      {"empty action", "{" + t + ", \"model\": \"company\", \"action\": \"\"}", json_ct, 400, "action"},
      {"checks not an array", "{" + t + ", \"checks\": {\"model\": \"company\"}}", json_ct, 400, "checks"},
      {"checks empty", "{" + t + ", \"checks\": []}", json_ct, 400, "checks"},
      {"too many checks", "{" + t + ", \"checks\": " + too_many.dump() + "}", json_ct, 400, "checks"},
      {"a bad check in a batch", "{" + t + ", \"checks\": [{\"model\": \"company\", \"action\": \"view\"}, {\"model\": \"company\"}]}", json_ct, 400, "checks[1].action"},
      {"resource not an object", "{" + t + ", \"model\": \"company\", \"action\": \"view\", \"resource\": \"c1\"}", json_ct, 400, "resource"},
      {"resource attribute of an unsupported type", "{" + t + ", \"model\": \"company\", \"action\": \"view\", \"resource\": {\"owner\": {\"a\": 1}}}", json_ct, 400, "resource.owner"},
      {"context not an object", "{" + t + ", \"model\": \"company\", \"action\": \"view\", \"context\": [1]}", json_ct, 400, "context"},
      {"context request_id not a string", "{" + t + ", \"model\": \"company\", \"action\": \"view\", \"context\": {\"request_id\": 5}}", json_ct, 400, "context.request_id"},
      {"unknown top-level field", "{" + t + ", \"model\": \"company\", \"action\": \"view\", \"colour\": \"red\"}", json_ct, 400, "colour"},
      {"body over the payload limit", "{" + t + ", \"model\": \"company\", \"action\": \"view\", \"resource\": {\"id\": \"" + std::string(1100000, 'x') + "\"}}", json_ct, 413, "body"},
      {"resource id a fraction", "{" + t + ", \"model\": \"company\", \"action\": \"view\", \"resource\": {\"id\": 1.5}}", json_ct, 400, "resource.id"},
      {"resource attribute array holding a number", "{" + t + ", \"model\": \"company\", \"action\": \"view\", \"resource\": {\"tags\": [\"a\", 2]}}", json_ct, 400, "resource.tags"},
      {"a check that is not an object", "{" + t + ", \"checks\": [\"company\"]}", json_ct, 400, "checks[0]"},
      {"a check carrying a token", "{" + t + ", \"checks\": [{\"model\": \"company\", \"action\": \"view\", \"token\": \"x\"}]}", json_ct, 400, "checks[0]"},
      {"unknown field in a check", "{" + t + ", \"checks\": [{\"model\": \"company\", \"action\": \"view\", \"colour\": 1}]}", json_ct, 400, "checks[0].colour"},
      {"context attribute of an unsupported type", "{" + t + ", \"model\": \"company\", \"action\": \"view\", \"context\": {\"geo\": {\"lat\": 1}}}", json_ct, 400, "context.geo"},
      {"token too long", "{\"token\": \"" + std::string(300, 'a') + "\", \"model\": \"company\", \"action\": \"view\"}", json_ct, 400, "token"},
      {"invalid UTF-8 in a string", "{" + t + ", \"model\": \"comp\xff\", \"action\": \"view\"}", json_ct, 400, ""},
      {"trailing garbage after the object", "{" + t + ", \"model\": \"company\", \"action\": \"view\"} x", json_ct, 400, ""},
      {"unknown field beside checks", "{" + t + ", \"checks\": [{\"model\": \"company\", \"action\": \"view\"}], \"colour\": 1}", json_ct, 400, "colour"},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    Reply r = server.Call("POST", "/v1/check", c.body, "", {}, c.content_type);
    INFO(r.body);
    CHECK(r.status == c.status);
    REQUIRE(r.json.is_object());
    REQUIRE(r.json.contains("error"));
    CHECK(r.json["error"]["message"].is_string());
    if (!c.field.empty()) CHECK(r.json["error"]["field"] == c.field);
    CHECK(r.body.find(token) == std::string::npos);
  }
  CHECK(DecisionRowCount(server) == rows_before);
  CHECK(AllPages(server, session, "/v1/decisions").size() == static_cast<size_t>(rows_before));
  // Still serving.
  CHECK(CheckReason(server, token, "company", "view") == "ALLOW_RULE");
  CHECK(DecisionRowCount(server) == rows_before + 1);
}

TEST_CASE("check: attribute bounds are 400s naming the bag, counted, and write no row", "[check]") {
  TempDir dir;
  TestServer server({.data_dir = dir.path()});
  const std::string session = server.Login();
  AccountRef acct = CreateAccount(server, session, "bounded", "role", "viewer");
  const std::string token = CreateToken(server, session, acct.name).token;
  const std::string t = "\"token\": \"" + token + "\"";
  auto many = [](int n) {
    std::string attrs = "{";
    for (int i = 0; i < n; ++i) attrs += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":1";
    return attrs + "}";
  };
  auto batch = [&](const std::string& resource) {
    return "{" + t + ", \"checks\": [{\"model\": \"company\", \"action\": \"view\", \"resource\": " + resource + "}]}";
  };
  const std::string single = "{" + t + ", \"model\": \"company\", \"action\": \"view\", ";
  auto list = [](int n) {
    std::string items = "[";
    for (int i = 0; i < n; ++i) items += i ? ",\"t\"" : "\"t\"";
    return items + "]";
  };
  const std::string huge = batch(many(90000));
  REQUIRE(huge.size() > 850000);
  REQUIRE(huge.size() < (1 << 20));  // under the payload limit: the attribute bound refuses it
  const std::vector<BadInput> cases = {
      {"65 resource attributes", batch(many(65)), "", 400, "checks[0].resource"},
      {"90,000 resource attributes (900 KB)", huge, "", 400, "checks[0].resource"},
      {"65 context attributes", single + "\"context\": " + many(65) + "}", "", 400, "context"},
      {"an attribute name of 129 bytes", batch("{\"" + std::string(129, 'k') + "\": 1}"), "", 400, "checks[0].resource"},
      {"a string of 2049 bytes", single + "\"resource\": {\"s\": \"" + std::string(2049, 's') + "\"}}", "", 400, "resource.s"},
      {"a list of 257 items", batch("{\"tags\": " + list(257) + "}"), "", 400, "checks[0].resource.tags"},
      {"a duplicate attribute", batch("{\"owner\": \"a\", \"owner\": \"b\"}"), "", 400, "checks[0].resource.owner"},
  };
  const std::string attributes_limit = "warden_limit_exceeded_total{limit=\"attributes\"}";
  const std::string checks_limit = "warden_limit_exceeded_total{limit=\"checks\"}";
  const std::string m0 = server.Get("/metrics").body;
  REQUIRE(MetricValue(m0, attributes_limit) == 0);
  for (const auto& c : cases) {
    INFO(c.name);
    Reply r = server.Call("POST", "/v1/check", c.body, "", {}, "application/json");
    INFO(r.body.substr(0, 500));
    CHECK(r.status == c.status);
    REQUIRE(r.json.is_object());
    CHECK(r.json["error"]["code"] == "invalid_argument");
    CHECK(r.json["error"]["message"].is_string());
    CHECK(r.json["error"]["field"] == c.field);
  }
  json too_many = json::array();
  for (int i = 0; i < 101; ++i) too_many.push_back({{"model", "company"}, {"action", "view"}});
  REQUIRE(server.Post("/v1/check", {{"token", token}, {"checks", too_many}}).status == 400);
  const std::string m1 = server.Get("/metrics").body;
  CHECK(MetricValue(m1, attributes_limit) == static_cast<double>(cases.size()));
  CHECK(MetricValue(m1, checks_limit) == 1);
  CHECK(DecisionRowCount(server) == 0);
  // 64 attributes, 256 items and 2048-byte strings are within the bounds.
  const std::string within = many(62);
  Reply ok = server.Call("POST", "/v1/check", batch(within.substr(0, within.size() - 1) + ",\"tags\":" + list(256) +
                                                    ",\"s\":\"" + std::string(2048, 's') + "\"}"),
                         "", {}, "application/json");
  INFO(ok.body);
  CHECK(ok.status == 200);
  CHECK(DecisionRowCount(server) == 1);
}

TEST_CASE("check: one row per evaluated check, and the token is stored and logged nowhere", "[check]") {
  TempDir dir;
  TestServer server({.data_dir = dir.path()});
  const std::string session = server.Login();
  AccountRef acct = CreateAccount(server, session, "counted", "role", "csm");
  TokenRef token = CreateToken(server, session, acct.name);
  const std::string secret = ParseApiToken(token.token, "wdn").value().secret;

  int evaluated = 0;
  for (int i = 0; i < 7; ++i) {
    REQUIRE(Check(server, token.token, "company", i % 2 ? "view" : "delete", {{"id", std::to_string(i)}}).status == 200);
    ++evaluated;
  }
  json batch = json::array();
  for (int i = 0; i < 4; ++i) batch.push_back({{"model", "enduser"}, {"action", "view"}});
  REQUIRE(server.Post("/v1/check", {{"token", token.token}, {"checks", batch}}).status == 200);
  evaluated += 4;
  // Denied checks are evaluated too and are logged.
  REQUIRE(Check(server, token.token, "spaceship", "view").status == 200);
  ++evaluated;
  CHECK(AllPages(server, session, "/v1/service-accounts/counted/logs").size() == static_cast<size_t>(evaluated));
  // The account-level filter does not hide anything: the whole table has the same rows.
  CHECK(DecisionRowCount(server) == evaluated);
  // An unknown token is evaluated (TOKEN_INVALID) and logged, without an account.
  REQUIRE(Check(server, "wdn_garbage", "company", "view").status == 200);
  CHECK(DecisionRowCount(server) == evaluated + 1);
  CHECK(AllPages(server, session, "/v1/service-accounts/counted/logs").size() == static_cast<size_t>(evaluated));

  // Neither the token nor its secret is in the database files or the server's log.
  for (const std::string suffix : {"", "-wal", "-shm"}) {
    const std::string bytes = ReadFile(DbPath(server) + suffix);
    INFO("warden.db" << suffix << " (" << bytes.size() << " bytes)");
    CHECK(bytes.find(token.token) == std::string::npos);
    CHECK(bytes.find(secret) == std::string::npos);
  }
  CHECK(ReadFile(DbPath(server)).size() > 0);
  const std::string log = server.Log();
  CHECK(log.find("/v1/check") != std::string::npos);  // the access log is on
  CHECK(log.find(token.token) == std::string::npos);
  CHECK(log.find(secret) == std::string::npos);
  CHECK(server.StartupOutput().find(secret) == std::string::npos);
  // The token id is what the log rows name.
  WaitForDecisionTable(server);
  int64_t token_rows = 0;
  for (const auto& d : StoredDecisions(DbPath(server))) token_rows += d.token_id == token.id;
  CHECK(token_rows == evaluated);
}

TEST_CASE("check: metrics count every decision and token failure", "[check]") {
  TempDir dir;
  TestServer server({.data_dir = dir.path()});
  const std::string session = server.Login();
  AccountRef acct = CreateAccount(server, session, "metered", "role", "viewer");
  const std::string token = CreateToken(server, session, acct.name).token;

  auto metrics = [&] {
    Reply r = server.Get("/metrics");
    REQUIRE(r.status == 200);
    CHECK(r.Header("Content-Type").find("text/plain") == 0);
    return r.body;
  };
  auto value = [](const std::string& text, const std::string& series) {
    auto v = MetricValue(text, series);
    INFO(series);
    REQUIRE(v.has_value());
    return *v;
  };
  const std::string allow = "warden_decisions_total{allowed=\"true\",reason=\"ALLOW_RULE\"}";
  const std::string no_match = "warden_decisions_total{allowed=\"false\",reason=\"NO_MATCHING_ALLOW\"}";
  const std::string invalid = "warden_decisions_total{allowed=\"false\",reason=\"TOKEN_INVALID\"}";
  const std::string unknown_model = "warden_decisions_total{allowed=\"false\",reason=\"UNKNOWN_MODEL\"}";
  const std::string failures = "warden_token_failures_total";
  const std::string rows = "warden_decision_log_rows_total";

  std::string m0 = metrics();
  CHECK(value(m0, allow) == 0);
  for (int i = 0; i < 3; ++i) REQUIRE(CheckReason(server, token, "company", "view") == "ALLOW_RULE");
  for (int i = 0; i < 2; ++i) REQUIRE(CheckReason(server, token, "company", "delete") == "NO_MATCHING_ALLOW");
  json batch = json::array({{{"model", "enduser"}, {"action", "view"}}, {{"model", "nothing"}, {"action", "view"}}});
  REQUIRE(server.Post("/v1/check", {{"token", token}, {"checks", batch}}).status == 200);
  REQUIRE(server.Post("/v1/check", json{{"token", token}, {"model", 1}, {"action", "view"}}).status == 400);

  std::string m1 = metrics();
  CHECK(value(m1, allow) - value(m0, allow) == 4);
  CHECK(value(m1, no_match) - value(m0, no_match) == 2);
  CHECK(value(m1, unknown_model) - value(m0, unknown_model) == 1);
  CHECK(value(m1, invalid) - value(m0, invalid) == 0);
  CHECK(value(m1, failures) - value(m0, failures) == 0);
  CHECK(value(m1, rows) - value(m0, rows) == 7);

  REQUIRE(CheckReason(server, "wdn_bad", "company", "view") == "TOKEN_INVALID");
  REQUIRE(CheckReason(server, FormatApiToken(NewApiToken("wdn")), "company", "view") == "TOKEN_INVALID");
  std::string m2 = metrics();
  CHECK(value(m2, failures) - value(m1, failures) == 2);
  CHECK(value(m2, invalid) - value(m1, invalid) == 2);
  CHECK(value(m2, allow) == value(m1, allow));
  CHECK(value(m2, rows) - value(m1, rows) == 2);
  // The other families the operations section names are exported.
  for (const char* family : {"warden_decision_log_queue_depth", "warden_decision_log_batches_total",
                             "warden_decision_log_commit_seconds_count", "warden_http_request_seconds_count",
                             "warden_policy_loaded_timestamp_seconds"}) {
    INFO(family);
    CHECK(MetricValue(m2, family).has_value());
  }
  CHECK(value(m2, "warden_decision_log_queue_depth") == 0);
  CHECK(m2.find("warden_policy_info{revision=\"") != std::string::npos);
}

// The event loop never moves decision rows: when the log's backlog is over its bound (here
// 1 byte, with the background mover off, so that only reads move rows), a check waits up to
// 50 ms for the mover, then is answered 503, allows nothing, writes no row and is counted;
// once a read has moved the rows, checks are answered again.
TEST_CASE("check: over the decision log's backlog bound a check is a 503, counted, with no row", "[check]") {
  TempDir dir;
  TestServer server({.data_dir = dir.path(), .env = {{"WARDEN_TEST_DECISION_BACKLOG_BYTES", "1"}}});
  const std::string session = server.Login();
  AccountRef acct = CreateAccount(server, session, "behind", "role", "viewer");
  const std::string token = CreateToken(server, session, acct.name).token;
  auto overloaded = [&] {
    auto v = MetricValue(server.Get("/metrics").body, "warden_decision_log_overloaded_total");
    REQUIRE(v.has_value());
    return *v;
  };
  auto rows = [&] { return AllPages(server, session, "/v1/decisions").size(); };  // a read: moves the rows
  const size_t rows0 = rows();
  REQUIRE(CheckReason(server, token, "company", "view") == "ALLOW_RULE");  // the backlog was empty
  Reply refused = Check(server, token, "company", "view");
  INFO(refused.body);
  CHECK(refused.status == 503);
  CHECK(refused.json["error"]["code"] == "unavailable");
  CHECK_FALSE(refused.json.contains("results"));
  CHECK(overloaded() == 1);
  // It waited for the mover first (which is off here, so in vain).
  CHECK(MetricValue(server.Get("/metrics").body, "warden_decision_log_waits_total") == 1);
  CHECK(rows() == rows0 + 1);  // the refused check has no row
  REQUIRE(CheckReason(server, token, "company", "view") == "ALLOW_RULE");  // the read caught up
  CHECK(rows() == rows0 + 2);
  CHECK(overloaded() == 1);
}

TEST_CASE("check: /healthz and /readyz answer 200", "[check]") {
  TempDir dir;
  TestServer server({.data_dir = dir.path()});
  Reply health = server.Get("/healthz");
  CHECK(health.status == 200);
  CHECK(health.json["status"] == "ok");
  Reply ready = server.Get("/readyz");
  INFO(ready.body);
  CHECK(ready.status == 200);
  CHECK(ready.json["status"] == "ready");
  CHECK(ready.json["store"] == "ok");
  CHECK(ready.json["policies"] == "ok");
}

}  // namespace
}  // namespace warden::testing
