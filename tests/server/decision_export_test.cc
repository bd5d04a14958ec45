// End-to-end: with WARDEN_DECISION_EXPORT every answered check is also one JSON line in the
// export file, naming the decision the answer named, never holding the token.
#include <fstream>

#include <catch2/catch.hpp>

#include "tests/server/check_helpers.h"
#include "tests/server/harness.h"

namespace warden::testing {

TEST_CASE("export: every decision is one NDJSON line, without the token", "[check][export]") {
  TempDir dir, out;
  const std::string path = out.path() + "/decisions.ndjson";
  TestServer server({.data_dir = dir.path(), .env = {{"WARDEN_DECISION_EXPORT", path}}});
  const std::string session = server.Login();
  AccountRef acct = CreateAccount(server, session, "exported", "role", "viewer");
  TokenRef token = CreateToken(server, session, acct.name);
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    Reply r = Check(server, token.token, "company", i % 2 ? "view" : "delete", {{"id", "c" + std::to_string(i)}});
    REQUIRE(r.status == 200);
    ids.push_back(r.json["decision_id"]);
  }
  Reply batch = server.Post("/v1/check", {{"token", token.token}, {"checks", {{{"model", "company"}, {"action", "view"}}, {{"model", "enduser"}, {"action", "view"}}}}});
  REQUIRE(batch.status == 200);
  for (const auto& r : batch.json["results"]) ids.push_back(r["decision_id"]);
  REQUIRE(CheckReason(server, "wdn_garbage", "company", "view") == "TOKEN_INVALID");

  std::ifstream in(path);
  std::vector<nlohmann::json> lines;
  std::string text;
  for (std::string line; std::getline(in, line);) {
    text += line;
    lines.push_back(nlohmann::json::parse(line));
  }
  REQUIRE(lines.size() == ids.size() + 1);
  CHECK(static_cast<int64_t>(lines.size()) == DecisionRowCount(server));
  for (size_t i = 0; i < ids.size(); ++i) {
    INFO(lines[i].dump());
    CHECK(lines[i]["decision_id"] == ids[i]);
    CHECK(lines[i]["principal"]["id"] == acct.id);
    CHECK(lines[i]["principal"]["token_id"] == token.id);
  }
  CHECK(lines[0]["allowed"] == false);
  CHECK(lines[1]["allowed"] == true);
  CHECK(lines[1]["resource_id"] == "c1");
  CHECK(lines.back()["reason"] == "TOKEN_INVALID");
  CHECK(text.find(token.token) == std::string::npos);
  CHECK(text.find(token.token.substr(14)) == std::string::npos);  // not even the secret's tail
}

}  // namespace warden::testing
