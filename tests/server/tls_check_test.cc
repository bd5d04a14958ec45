// Checks over TLS take the same path as over plain HTTP (DESIGN.md 2.1): the same requests
// sent to a plain-HTTP server and to a TLS server give the same decisions, and each answered
// check is one durable decision-log row on both.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/server/check_helpers.h"
#include "tests/server/harness.h"

namespace warden::testing {
namespace {

struct Outcome {
  std::vector<nlohmann::json> answers;  // the decision fields of each check, ids removed
  std::vector<std::string> decision_ids;
  std::vector<nlohmann::json> history;  // the account's LOGS, newest first
};

// The same sequence against `server`: an account copied from the viewer role, one token, a
// batch that allows and denies, a single check, an unknown model, and a made-up token.
Outcome Run(const TestServer& server, bool tls) {
  const std::string session = server.Login();
  CreateAccount(server, session, "reports", "role", "viewer");
  const std::string secret = CreateToken(server, session, "reports").token;

  const std::vector<nlohmann::json> requests = {
      {{"token", secret},
       {"checks", {{{"model", "company"}, {"action", "view"}, {"resource", {{"id", "c1"}}}},
                   {{"model", "company"}, {"action", "delete"}, {"resource", {{"id", "c1"}}}}}}},
      {{"token", secret}, {"model", "invoice"}, {"action", "view"}},
      {{"token", secret}, {"model", "no_such_model"}, {"action", "view"}},
      {{"token", "wdn_" + std::string(40, 'A')}, {"model", "company"}, {"action", "view"}},
  };
  Outcome out;
  for (const auto& body : requests) {
    Reply r = server.Post("/v1/check", body);
    INFO((tls ? "https " : "http ") << body.dump() << " -> " << r.body);
    REQUIRE(r.status == 200);
    CHECK(!r.Header("X-Request-Id").empty());
    for (const auto& result : r.json["results"]) {
      out.decision_ids.push_back(result["decision_id"]);
      out.answers.push_back({{"model", result["model"]}, {"action", result["action"]},
                             {"allowed", result["allowed"]}, {"reason", result["reason"]}, {"rule", result["rule"]},
                             {"principal_type", r.json["principal"]["type"]},
                             {"principal_name", r.json["principal"]["name"]}});
    }
  }
  Reply logs = server.Get("/v1/service-accounts/reports/logs?limit=100", session);
  REQUIRE(logs.status == 200);
  for (const auto& item : logs.json["items"]) out.history.push_back(item);
  return out;
}

TEST_CASE("checks over TLS are decided and logged as over plain HTTP", "[check][tls]") {
  TempDir keys;
  const TlsFiles files = MakeTestCertificate(keys.path());

  TempDir plain_data, tls_data;
  TestServer plain({.data_dir = plain_data.path()});
  TestServer tls({.data_dir = tls_data.path(), .env = {{"WARDEN_TLS_CERT", files.cert}, {"WARDEN_TLS_KEY", files.key}}});
  const Outcome over_http = Run(plain, /*tls=*/false);
  const Outcome over_https = Run(tls, /*tls=*/true);

  REQUIRE(over_http.answers.size() == 5);
  CHECK(over_https.answers == over_http.answers);
  CHECK(over_http.answers[0]["allowed"] == true);
  CHECK(over_http.answers[1]["allowed"] == false);
  CHECK(over_http.answers[3]["reason"] == "UNKNOWN_MODEL");
  CHECK(over_http.answers[4]["reason"] == "TOKEN_INVALID");

  // The account's history holds the four checks of its own token (newest first) with the ids
  // the answers named, on both fronts; the made-up token's row is not the account's.
  for (const Outcome* o : {&over_http, &over_https}) {
    REQUIRE(o->history.size() == 4);
    for (size_t i = 0; i < 4; ++i) CHECK(o->history[3 - i]["decision_id"] == o->decision_ids[i]);
  }
  // Exactly one row per answered check (four of the account, one for the invalid token), in
  // the database file once the server has stopped (it moves the journal in on shutdown).
  plain.Stop();
  tls.Stop();
  CHECK(StoredDecisions(DbPath(plain)).size() == 5);
  CHECK(StoredDecisions(DbPath(tls)).size() == 5);
}

}  // namespace
}  // namespace warden::testing
