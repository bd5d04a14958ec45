// AuthZEN 1.0 behaviour (DESIGN.md 6.1) on the certification scenario's tree
// (examples/authzen/certification: the fixture's users, records and rules, see
// ../shared/authzen/certification/README.md), and the service-account search of the default
// policies. What is checked is what the OpenID conformance suite asserts: decisions, batch
// semantics and merging, searches, paging, errors, X-Request-ID, authentication, metadata,
// and one decision-log row per evaluation.
#include <catch2/catch.hpp>

#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "tests/server/check_helpers.h"
#include "tests/server/harness.h"

namespace warden::testing {
namespace {

using nlohmann::json;

const std::string kCert = std::string(WARDEN_SOURCE_DIR) + "/examples/authzen/certification";

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Cert {
  TempDir data;
  TestServer server{{.data_dir = data.path(), .policies_dir = kCert + "/policies",
                     .env = {{"WARDEN_PUBLIC_URL", "https://pdp.example.test"}}}};
  std::string session, pep, pep_token_id;

  Cert() {
    session = server.Login();
    Reply imported = server.Call("POST", "/v1/directory/import", ReadText(kCert + "/directory.json"), session);
    INFO(imported.body);
    REQUIRE(imported.status == 200);
    CHECK(imported.json == json{{"subjects", 2}, {"resources", 2}});
    CreateAccount(server, session, "pep", "role", "pep");
    TokenRef token = CreateToken(server, session, "pep");
    pep = token.token;
    pep_token_id = token.id;
  }
  Reply Ask(const std::string& endpoint, const json& body, const httplib::Headers& headers = {}) const {
    return server.Call("POST", "/access/v1/" + endpoint, body.dump(), pep, headers);
  }
  bool Decision(const json& body) const {
    Reply r = Ask("evaluation", body);
    INFO(body.dump() << " -> " << r.body);
    REQUIRE(r.status == 200);
    REQUIRE(r.json.size() == 1);
    return r.json["decision"].get<bool>();
  }
};

json User(const std::string& id, json properties = nullptr) {
  json u = {{"type", "user"}, {"id", id}};
  if (!properties.is_null()) u["properties"] = std::move(properties);
  return u;
}
json Record(const std::string& id, json properties = nullptr) {
  json r = {{"type", "record"}, {"id", id}};
  if (!properties.is_null()) r["properties"] = std::move(properties);
  return r;
}
json Act(const std::string& name, json properties = nullptr) {
  json a = {{"name", name}};
  if (!properties.is_null()) a["properties"] = std::move(properties);
  return a;
}
json Eval(json subject, json action, json resource) {
  return {{"subject", std::move(subject)}, {"action", std::move(action)}, {"resource", std::move(resource)}};
}

std::set<std::string> Ids(const Reply& r, const char* key = "id") {
  std::set<std::string> out;
  for (const json& item : r.json["results"]) out.insert(item[key].get<std::string>());
  return out;
}

TEST_CASE("AuthZEN: the certification fixture's decisions", "[authzen]") {
  Cert c;
  struct Row {
    json subject, action, resource;
    bool decision;
  };
  const std::vector<Row> rows = {
      {User("alice"), Act("read"), Record("record-1"), true},
      {User("alice"), Act("write"), Record("record-1"), true},
      {User("alice"), Act("write"), Record("record-1", {{"status", "active"}}), true},
      {User("bob"), Act("read"), Record("record-1"), true},
      {User("bob"), Act("write"), Record("record-1"), false},
      {User("alice"), Act("write"), Record("record-2", {{"status", "archived"}}), false},
      {User("bob", {{"role", "admin"}}), Act("write"), Record("record-2", {{"status", "archived"}}), true},
      {User("alice"), Act("delete", {{"soft", true}}), Record("record-1"), true},
      {User("alice"), Act("delete", {{"soft", false}}), Record("record-1"), false},
      {User("alice"), Act("read"), Record("record-2"), true},
      // Properties sent count over the directory's: record-1 sent as archived is not writable.
      {User("alice"), Act("write"), Record("record-1", {{"status", "archived"}}), false},
      // Unknown subjects, types, resource types and actions are decided (false), never errors.
      {User("mallory"), Act("read"), Record("record-1"), false},
      {{{"type", "spaceship"}, {"id", "alice"}}, Act("read"), Record("record-1"), false},
      {User("alice"), Act("read"), {{"type", "spaceship"}, {"id", "x"}}, false},
      {User("alice"), Act("launch"), Record("record-1"), false},
  };
  for (const Row& row : rows) {
    json body = Eval(row.subject, row.action, row.resource);
    CHECK(c.Decision(body) == row.decision);
    // Context, extra properties and unknown fields do not change a decision.
    body["context"] = {{"time", "2026-01-01T00:00:00Z"}, {"nested", {{"a", {1, 2}}, {"b", nullptr}}}};
    body["unknown_top"] = {{"x", 1}};
    body["subject"]["unknown"] = true;
    body["resource"]["also_unknown"] = "x";
    CHECK(c.Decision(body) == row.decision);
  }
}

TEST_CASE("AuthZEN: evaluations merge defaults, keep order and stop as asked", "[authzen]") {
  Cert c;
  // Defaults merged field by field: top-level resource {type} + item resource {id, properties}.
  Reply merged = c.Ask("evaluations", {{"subject", User("alice")},
                                       {"action", Act("write")},
                                       {"resource", {{"type", "record"}}},
                                       {"evaluations", {{{"resource", {{"id", "record-1"}, {"properties", {{"status", "active"}}}}}},
                                                        {{"resource", {{"id", "record-2"}}}},
                                                        {{"action", Act("read")}, {"resource", {{"id", "record-2"}}}}}}});
  INFO(merged.body);
  REQUIRE(merged.status == 200);
  CHECK(merged.json == json{{"evaluations", {{{"decision", true}}, {{"decision", false}}, {{"decision", true}}}}});

  // An item still missing an entity is false inside a 200 answer; so is a batch with no subject.
  Reply missing = c.Ask("evaluations", {{"subject", User("alice")},
                                        {"evaluations", {{{"action", Act("read")}, {"resource", Record("record-1")}},
                                                         {{"action", Act("read")}},
                                                         {{"resource", Record("record-1")}},
                                                         {{"action", {{"name", 7}}}, {"resource", Record("record-1")}}}}});
  INFO(missing.body);
  REQUIRE(missing.status == 200);
  CHECK(missing.json == json{{"evaluations", {{{"decision", true}}, {{"decision", false}}, {{"decision", false}},
                                              {{"decision", false}}}}});
  Reply no_subject = c.Ask("evaluations", {{"evaluations", {{{"action", Act("read")}, {"resource", Record("record-1")}}}}});
  REQUIRE(no_subject.status == 200);
  CHECK(no_subject.json == json{{"evaluations", {{{"decision", false}}}}});

  const json three = {{{"action", Act("read")}, {"resource", Record("record-1")}},
                      {{"action", Act("write")}, {"resource", Record("record-2")}},
                      {{"action", Act("read")}, {"resource", Record("record-2")}}};
  auto run = [&](const char* semantic) {
    json body = {{"subject", User("alice")}, {"evaluations", three}};
    if (semantic) body["options"] = {{"evaluations_semantic", semantic}};
    Reply r = c.Ask("evaluations", body);
    INFO(r.body);
    REQUIRE(r.status == 200);
    return r.json["evaluations"];
  };
  CHECK(run(nullptr) == json{{{"decision", true}}, {{"decision", false}}, {{"decision", true}}});
  CHECK(run("execute_all") == json{{{"decision", true}}, {{"decision", false}}, {{"decision", true}}});
  CHECK(run("deny_on_first_deny") == json{{{"decision", true}}, {{"decision", false}}});
  CHECK(run("permit_on_first_permit") == json{{{"decision", true}}});

  // No (or an empty) evaluations array: the single form.
  Reply single = c.Ask("evaluations", Eval(User("alice"), Act("read"), Record("record-1")));
  CHECK(single.json == json{{"decision", true}});
  json empty = Eval(User("bob"), Act("write"), Record("record-1"));
  empty["evaluations"] = json::array();
  CHECK(c.Ask("evaluations", empty).json == json{{"decision", false}});

  // Reasons only when asked for.
  json with_reasons = Eval(User("alice"), Act("read"), Record("record-1"));
  with_reasons["options"] = {{"include_reasons", true}};
  Reply reasons = c.Ask("evaluation", with_reasons);
  CHECK(reasons.json["decision"] == true);
  CHECK(reasons.json["context"]["reason"] == "ALLOW_RULE");
  CHECK(reasons.json["context"]["rule"] == "role:member#perm:record");
  CHECK(reasons.json["context"]["decision_id"].get<std::string>().size() == 26);
}

TEST_CASE("AuthZEN: searches of the certification fixture", "[authzen]") {
  Cert c;
  Reply s1 = c.Ask("search/subject", {{"subject", {{"type", "user"}}}, {"action", Act("read")}, {"resource", Record("record-1")}});
  INFO(s1.body);
  CHECK(Ids(s1) == std::set<std::string>{"alice", "bob"});
  CHECK(s1.json.size() == 1);  // no page object without page.limit
  Reply s4 = c.Ask("search/subject", {{"subject", {{"type", "user"}}}, {"action", Act("write")},
                                      {"resource", Record("record-2", {{"status", "archived"}})}});
  CHECK(Ids(s4) == std::set<std::string>{"bob"});
  Reply s2 = c.Ask("search/resource", {{"subject", User("alice")}, {"action", Act("read")}, {"resource", {{"type", "record"}}}});
  CHECK(Ids(s2) == std::set<std::string>{"record-1", "record-2"});
  for (const json& item : s2.json["results"]) CHECK(item["type"] == "record");
  Reply s5 = c.Ask("search/resource", {{"subject", User("bob", {{"role", "admin"}})}, {"action", Act("write")},
                                       {"resource", {{"type", "record"}}}});
  CHECK(Ids(s5) == std::set<std::string>{"record-2"});
  Reply s3 = c.Ask("search/action", {{"subject", User("alice")}, {"resource", Record("record-1")}});
  CHECK(Ids(s3, "name") == std::set<std::string>{"read", "write"});
  Reply s6 = c.Ask("search/action", {{"subject", User("bob", {{"role", "admin"}})},
                                     {"resource", Record("record-2", {{"status", "archived"}})}});
  CHECK(Ids(s6, "name") == std::set<std::string>{"read", "write"});
  // Unknown types and subjects: a valid empty answer, never a 400.
  Reply spaceships = c.Ask("search/subject", {{"subject", {{"type", "spaceship"}}}, {"action", Act("read")},
                                              {"resource", Record("record-1")}});
  CHECK(spaceships.status == 200);
  CHECK(spaceships.json == json{{"results", json::array()}});
  Reply nobody = c.Ask("search/action", {{"subject", User("nonexistent-user")}, {"resource", Record("record-1")}});
  CHECK(nobody.status == 200);
  CHECK(nobody.json == json{{"results", json::array()}});

  // page.limit pages with opaque tokens ("" on the last page); the pages make up the whole set.
  for (const char* endpoint : {"search/subject", "search/resource", "search/action"}) {
    json body = std::string(endpoint) == "search/subject"
                    ? json{{"subject", {{"type", "user"}}}, {"action", Act("read")}, {"resource", Record("record-1")}}
                : std::string(endpoint) == "search/resource"
                    ? json{{"subject", User("alice")}, {"action", Act("read")}, {"resource", {{"type", "record"}}}}
                    : json{{"subject", User("alice")}, {"resource", Record("record-1")}};
    Reply whole = c.Ask(endpoint, body);
    std::multiset<std::string> all, paged;
    for (const json& item : whole.json["results"]) all.insert(item.dump());
    body["page"] = {{"limit", 1}, {"unknown_page_field", true}};
    int pages = 0;
    for (; pages < 10; ++pages) {
      Reply r = c.Ask(endpoint, body);
      INFO(endpoint << " " << r.body);
      REQUIRE(r.status == 200);
      CHECK(r.json["results"].size() <= 1);
      for (const json& item : r.json["results"]) paged.insert(item.dump());
      const std::string next = r.json["page"]["next_token"];
      if (next.empty()) break;
      body["page"]["token"] = next;
    }
    CHECK(pages < 10);
    CHECK(paged == all);
  }
  Reply bad_token = c.Ask("search/action", {{"subject", User("alice")}, {"resource", Record("record-1")},
                                            {"page", {{"token", "not-ours"}}}});
  CHECK(bad_token.status == 400);
}

TEST_CASE("AuthZEN: malformed requests are 400 with the error shape", "[authzen]") {
  Cert c;
  auto status_of = [&](const std::string& endpoint, const std::string& body,
                       const std::string& content_type = "application/json") {
    Reply r = c.server.Call("POST", "/access/v1/" + endpoint, body, c.pep, {}, content_type);
    INFO(endpoint << " " << body << " -> " << r.body);
    if (r.status == 400) {
      CHECK(r.json["error"]["code"] == "invalid_argument");
      CHECK(r.json["error"]["message"].is_string());
    }
    return r.status;
  };
  const json ok = Eval(User("alice"), Act("read"), Record("record-1"));
  for (const char* endpoint : {"evaluation", "evaluations"}) {
    for (const char* drop : {"subject", "action", "resource"}) {
      json body = ok;
      body.erase(drop);
      CHECK(status_of(endpoint, body.dump()) == 400);
    }
    for (auto [entity, field] : {std::pair<const char*, const char*>{"subject", "type"}, {"subject", "id"},
                                 {"resource", "type"}, {"resource", "id"}, {"action", "name"}}) {
      json body = ok;
      body[entity].erase(field);
      CHECK(status_of(endpoint, body.dump()) == 400);
    }
    json as_string = ok;
    as_string["subject"] = "alice";
    CHECK(status_of(endpoint, as_string.dump()) == 400);
    json number_name = ok;
    number_name["action"]["name"] = 123;
    CHECK(status_of(endpoint, number_name.dump()) == 400);
    CHECK(status_of(endpoint, "{\"subject\": ") == 400);
    CHECK(status_of(endpoint, "") == 400);
    CHECK(status_of(endpoint, "[]") == 400);
    CHECK(status_of(endpoint, ok.dump(), "text/plain") == 415);
    CHECK(status_of(endpoint, ok.dump(), "application/json; charset=utf-8") == 200);
  }
  json unknown_semantic = {{"subject", User("alice")}, {"evaluations", {{{"action", Act("read")}, {"resource", Record("record-1")}}}},
                           {"options", {{"evaluations_semantic", "first_come"}}}};
  CHECK(status_of("evaluations", unknown_semantic.dump()) == 400);
  json too_many = {{"subject", User("alice")}, {"action", Act("read")}, {"evaluations", json::array()}};
  for (int i = 0; i < 101; ++i) too_many["evaluations"].push_back({{"resource", Record("record-1")}});
  CHECK(status_of("evaluations", too_many.dump()) == 400);
  // Searches: the searched entity may lack its id; the others need type and id.
  CHECK(status_of("search/subject", json{{"subject", {{"type", "user"}}}, {"action", Act("read")},
                                         {"resource", {{"type", "record"}}}}.dump()) == 400);
  CHECK(status_of("search/resource", json{{"subject", {{"type", "user"}}}, {"action", Act("read")},
                                          {"resource", {{"type", "record"}}}}.dump()) == 400);
  CHECK(status_of("search/action", json{{"subject", User("alice")}, {"resource", {{"type", "record"}}}}.dump()) == 400);
  CHECK(status_of("search/resource", json{{"subject", User("alice")}, {"action", Act("read")},
                                          {"resource", {{"type", "record"}}}, {"page", {{"limit", -1}}}}.dump()) == 400);
  // Other methods: not an endpoint.
  for (const char* method : {"GET", "PUT"}) {
    const int status = c.server.Call(method, "/access/v1/evaluation", ok.dump(), c.pep).status;
    CHECK((status == 404 || status == 405));
  }
}

TEST_CASE("AuthZEN: PEP authentication, X-Request-ID, metadata and the decision log", "[authzen]") {
  Cert c;
  const json ok = Eval(User("alice"), Act("read"), Record("record-1"));
  // No token, a made-up token, a token whose policy lacks authzen: 401 with WWW-Authenticate.
  CreateAccount(c.server, c.session, "not-a-pep", "scratch");
  const std::string other = CreateToken(c.server, c.session, "not-a-pep").token;
  for (const std::string& token : {std::string(), std::string("wdn_") + std::string(40, 'A'), other}) {
    Reply r = c.server.Call("POST", "/access/v1/evaluation", ok.dump(), token);
    INFO(r.body);
    CHECK(r.status == 401);
    CHECK(r.Header("WWW-Authenticate").rfind("Bearer", 0) == 0);
    CHECK(r.json["error"]["code"] == "unauthenticated");
  }
  Reply echoed = c.Ask("evaluation", ok, {{"X-Request-ID", "req-123"}});
  CHECK(echoed.Header("X-Request-ID") == "req-123");
  CHECK(echoed.Header("Content-Type").rfind("application/json", 0) == 0);

  Reply meta = c.server.Get("/.well-known/authzen-configuration");
  INFO(meta.body);
  REQUIRE(meta.status == 200);
  CHECK(meta.json["policy_decision_point"] == "https://pdp.example.test");
  CHECK(meta.json["access_evaluation_endpoint"] == "https://pdp.example.test/access/v1/evaluation");
  CHECK(meta.json["access_evaluations_endpoint"] == "https://pdp.example.test/access/v1/evaluations");
  CHECK(meta.json["search_subject_endpoint"] == "https://pdp.example.test/access/v1/search/subject");
  CHECK(meta.json["search_resource_endpoint"] == "https://pdp.example.test/access/v1/search/resource");
  CHECK(meta.json["search_action_endpoint"] == "https://pdp.example.test/access/v1/search/action");

  // One row per evaluation: the subject as principal (its AuthZEN type), the PEP's token.
  const std::string pep_token_id = c.pep_token_id;
  json batch = {{"subject", User("bob")}, {"action", Act("read")},
                {"evaluations", {{{"resource", Record("record-1")}}, {{"resource", Record("record-2")}}}}};
  REQUIRE(c.Ask("evaluations", batch).status == 200);
  Reply rows = c.server.Get("/v1/decisions?principal_id=bob", c.session);
  INFO(rows.body);
  REQUIRE(rows.status == 200);
  REQUIRE(rows.json["items"].size() == 2);
  for (const json& row : rows.json["items"]) {
    CHECK(row["principal"]["type"] == "user");
    CHECK(row["principal"]["id"] == "bob");
    CHECK(row["principal"]["token_id"] == pep_token_id);
    CHECK(row["model"] == "record");
    CHECK(row["allowed"] == true);
  }
}

TEST_CASE("AuthZEN: the directory's admin routes", "[authzen][directory]") {
  Cert c;
  const json carol_reads = Eval(User("carol"), Act("read"), Record("record-1"));
  CHECK_FALSE(c.Decision(carol_reads));
  Reply put = c.server.Call("PUT", "/v1/directory/subjects/user/carol",
                            json{{"roles", {"member"}}, {"properties", {{"team", "blue"}}}}.dump(), c.session);
  INFO(put.body);
  REQUIRE(put.status == 200);
  CHECK(put.json["roles"] == json{"member"});
  Reply got = c.server.Get("/v1/directory/subjects/user/carol", c.session);
  CHECK(got.json["properties"] == json{{"team", "blue"}});
  CHECK(c.Decision(carol_reads));  // the next evaluation sees the change
  Reply list = c.server.Get("/v1/directory/subjects/user?limit=2", c.session);
  REQUIRE(list.status == 200);
  CHECK(list.json["items"].size() == 2);
  CHECK(list.json["next_cursor"] == "bob");
  Reply rest = c.server.Get("/v1/directory/subjects/user?limit=2&cursor=bob", c.session);
  CHECK(rest.json["items"].size() == 1);
  CHECK(rest.json["items"][0]["id"] == "carol");
  CHECK(c.server.Delete("/v1/directory/subjects/user/carol", c.session).status == 204);
  CHECK(c.server.Get("/v1/directory/subjects/user/carol", c.session).status == 404);
  CHECK_FALSE(c.Decision(carol_reads));

  // Unknown roles are refused; so are roles the caller does not itself hold (no escalation).
  Reply unknown = c.server.Call("PUT", "/v1/directory/subjects/user/dave", json{{"roles", {"nobody"}}}.dump(), c.session);
  CHECK(unknown.status == 400);
  CreateAccount(c.server, c.session, "directory-sync", "scratch");
  Reply perms = c.server.Call("PUT", "/v1/service-accounts/directory-sync/permissions",
                              json{{"permissions", {{"directory", {"view", "create", "update", "delete"}}}}}.dump(),
                              c.session);
  REQUIRE(perms.status == 200);
  const std::string sync = CreateToken(c.server, c.session, "directory-sync").token;
  Reply escalate = c.server.Call("PUT", "/v1/directory/subjects/user/dave", json{{"roles", {"member"}}}.dump(), sync);
  INFO(escalate.body);
  CHECK(escalate.status == 403);
  CHECK(c.server.Call("PUT", "/v1/directory/resources/record/record-3", json{{"properties", {{"status", "active"}}}}.dump(),
                      sync)
            .status == 200);
  CHECK(c.server.Call("PUT", "/v1/directory/resources/record/record-4", json{{"roles", {"member"}}}.dump(), sync).status ==
        400);

  // Import from YAML; numbers as ids become strings.
  Reply yaml = c.server.Call("POST", "/v1/directory/import",
                             "subjects:\n  - {type: user, id: erin, roles: [member]}\n"
                             "resources:\n  - {type: record, id: 7, properties: {status: archived}}\n",
                             c.session, {}, "application/yaml");
  INFO(yaml.body);
  REQUIRE(yaml.status == 200);
  CHECK(yaml.json == json{{"subjects", 1}, {"resources", 1}});
  CHECK(c.Decision(Eval(User("erin"), Act("read"), Record("7"))));
  CHECK_FALSE(c.Decision(Eval(User("erin"), Act("write"), Record("7"))));
  Reply bad = c.server.Call("POST", "/v1/directory/import", json{{"subjects", {{{"type", "user"}}}}}.dump(), c.session);
  CHECK(bad.status == 400);
  CHECK(bad.json["error"]["field"] == "subjects[0].id");
}

TEST_CASE("AuthZEN: which service accounts may export companies (default policies)", "[authzen]") {
  TempDir data;
  TestServer server({.data_dir = data.path()});
  const std::string session = server.Login();
  CreateAccount(server, session, "crm-sync", "role", "csm");     // csm: company export
  CreateAccount(server, session, "reports", "role", "viewer");   // viewer: no export
  CreateAccount(server, session, "auditor", "scratch");
  CreateAccount(server, session, "gateway", "scratch");
  Reply put = server.Call("PUT", "/v1/service-accounts/gateway/permissions",
                          json{{"permissions", {{"authzen", {"search"}}}}}.dump(), session);
  INFO(put.body);
  REQUIRE(put.status == 200);
  const std::string pep = CreateToken(server, session, "gateway").token;
  Reply r = server.Call("POST", "/access/v1/search/subject",
                        json{{"subject", {{"type", "service_account"}}},
                             {"action", {{"name", "export"}}},
                             {"resource", {{"type", "company"}}}}
                            .dump(),
                        pep);
  INFO(r.body);
  // The resource needs an id for a subject search; a placeholder id works for type-wide rules.
  CHECK(r.status == 400);
  r = server.Call("POST", "/access/v1/search/subject",
                  json{{"subject", {{"type", "service_account"}}},
                       {"action", {{"name", "export"}}},
                       {"resource", {{"type", "company"}, {"id", "*"}}}}
                      .dump(),
                  pep);
  INFO(r.body);
  REQUIRE(r.status == 200);
  CHECK(r.json == json{{"results", {{{"type", "service_account"}, {"id", "crm-sync"}}}}});
  // Evaluating a service account as the subject (by name or id) gives the same answer.
  Reply one = server.Call("POST", "/access/v1/evaluation",
                          json{{"subject", {{"type", "service_account"}, {"id", "reports"}}},
                               {"action", {{"name", "view"}}},
                               {"resource", {{"type", "company"}, {"id", "c1"}}}}
                              .dump(),
                          pep);
  // The PEP may search but not evaluate.
  CHECK(one.status == 401);
}

}  // namespace
}  // namespace warden::testing
