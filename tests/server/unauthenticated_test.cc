// End-to-end: unauthenticated input is cheap and bounded (issue 12). Made-up tokens touch the
// store once per id, a request with an invalid token is one decision row whatever its batch,
// and invalid tokens are rate limited per client address (429, counted, not logged).
#include <catch2/catch.hpp>

#include "common/crypto.h"
#include "tests/server/check_helpers.h"
#include "tests/server/harness.h"

namespace warden::testing {
namespace {

using json = nlohmann::json;

double Metric(const TestServer& server, const std::string& series) {
  Reply r = server.Get("/metrics");
  REQUIRE(r.status == 200);
  auto v = MetricValue(r.body, series);
  INFO(series);
  REQUIRE(v.has_value());
  return *v;
}

json Batch(const std::string& token, int n) {
  json checks = json::array();
  for (int i = 0; i < n; ++i) checks.push_back({{"model", "company"}, {"action", i % 2 ? "view" : "update"}});
  return {{"token", token}, {"checks", checks}};
}

}  // namespace

TEST_CASE("unauthenticated: a made-up token id reaches the store once, a created token is known at once", "[check][hostile]") {
  TempDir dir;
  TestServer server({.data_dir = dir.path()});
  const std::string session = server.Login();
  const std::string made_up = FormatApiToken(NewApiToken("wdn"));
  const double misses0 = Metric(server, "warden_token_cache_misses_total");
  const double hits0 = Metric(server, "warden_token_unknown_cache_hits_total");
  for (int i = 0; i < 5; ++i) REQUIRE(CheckReason(server, made_up, "company", "view") == "TOKEN_INVALID");
  CHECK(Metric(server, "warden_token_cache_misses_total") - misses0 == 1);
  CHECK(Metric(server, "warden_token_unknown_cache_hits_total") - hits0 == 4);
  // Another made-up id is another (single) lookup.
  for (int i = 0; i < 3; ++i) REQUIRE(CheckReason(server, FormatApiToken(NewApiToken("wdn")), "company", "view") == "TOKEN_INVALID");
  CHECK(Metric(server, "warden_token_cache_misses_total") - misses0 == 4);

  // A token created after its id was looked up works on its very next check: tokens are
  // created with fresh ids, so this asks for one more check of a token created now, after a
  // flood of unknown ids filled part of the cache.
  AccountRef acct = CreateAccount(server, session, "fresh", "role", "viewer");
  const TokenRef token = CreateToken(server, session, acct.name);
  CHECK(CheckReason(server, token.token, "company", "view") == "ALLOW_RULE");
  // The same id with another secret is still invalid, and costs no lookup (the id is cached).
  ApiToken forged = ParseApiToken(token.token, "wdn").value();
  forged.secret[0] = forged.secret[0] == 'a' ? 'b' : 'a';
  const double misses1 = Metric(server, "warden_token_cache_misses_total");
  CHECK(CheckReason(server, FormatApiToken(forged), "company", "view") == "TOKEN_INVALID");
  CHECK(Metric(server, "warden_token_cache_misses_total") == misses1);
}

TEST_CASE("unauthenticated: an invalid-token request is one decision row, whatever its batch", "[check][hostile]") {
  TempDir dir;
  TestServer server({.data_dir = dir.path()});
  const std::string session = server.Login();
  AccountRef acct = CreateAccount(server, session, "real", "role", "viewer");
  const std::string token = CreateToken(server, session, acct.name).token;
  const int64_t rows0 = DecisionRowCount(server);

  Reply bad = server.Post("/v1/check", Batch(FormatApiToken(NewApiToken("wdn")), 100));
  REQUIRE(bad.status == 200);
  REQUIRE(bad.json["results"].size() == 100);
  std::set<std::string> ids;
  for (const auto& r : bad.json["results"]) {
    CHECK(r["allowed"] == false);
    CHECK(r["reason"] == "TOKEN_INVALID");
    ids.insert(r["decision_id"].get<std::string>());
  }
  CHECK(ids == std::set<std::string>{bad.json["decision_id"].get<std::string>()});
  CHECK(DecisionRowCount(server) - rows0 == 1);
  // Malformed tokens and bad tenant tokens alike.
  REQUIRE(server.Post("/v1/check", Batch("wdn_garbage", 20)).status == 200);
  json tenant = Batch("", 20);
  tenant.erase("token");
  tenant["tenant_token"] = "00000000-0000-0000-0000-000000000000";
  REQUIRE(server.Post("/v1/check", tenant).status == 200);
  CHECK(DecisionRowCount(server) - rows0 == 3);
  // A valid token's batch is still one row per check.
  REQUIRE(server.Post("/v1/check", Batch(token, 20)).status == 200);
  CHECK(DecisionRowCount(server) - rows0 == 23);
}

TEST_CASE("unauthenticated: invalid tokens are rate limited per client address; valid ones are not", "[check][hostile]") {
  TempDir dir;
  TestServer server({.data_dir = dir.path(), .env = {{"WARDEN_INVALID_TOKENS_PER_MINUTE", "3"}}});
  const std::string session = server.Login();
  AccountRef acct = CreateAccount(server, session, "limited", "role", "viewer");
  const std::string token = CreateToken(server, session, acct.name).token;
  const int64_t rows0 = DecisionRowCount(server);
  for (int i = 0; i < 3; ++i) REQUIRE(CheckReason(server, FormatApiToken(NewApiToken("wdn")), "company", "view") == "TOKEN_INVALID");
  Reply limited = Check(server, FormatApiToken(NewApiToken("wdn")), "company", "view");
  CHECK(limited.status == 429);
  CHECK(limited.json["error"]["code"] == "resource_exhausted");
  CHECK(std::stoi(limited.Header("Retry-After")) > 0);
  CHECK(Check(server, "wdn_garbage", "company", "view").status == 429);
  // Throttled requests write no row; a valid token from the same address is answered.
  CHECK(DecisionRowCount(server) - rows0 == 3);
  CHECK(CheckReason(server, token, "company", "view") == "ALLOW_RULE");
  CHECK(Metric(server, "warden_invalid_token_throttled_total") == 2);
}

}  // namespace warden::testing
