// Edge cases of the admin API: names that would be ambiguous in URLs, and PATCHes that
// change nothing (no write, no audit row).
#include <catch2/catch.hpp>

#include "tests/server/admin_fixture.h"
#include "tests/server/harness.h"

using namespace warden::testing;

TEST_CASE("account names shaped like account ids are refused", "[admin]") {
  SharedServer& s = Shared();
  auto r = s.server->Post("/v1/service-accounts",
                          {{"name", "01ARZ3NDEKTSV4RRFFQ69G5FAV"}, {"copy_permissions_from", {{"kind", "scratch"}}}},
                          s.admin.token);
  CHECK_ERROR_FIELD(r, 400, "invalid_argument", "name");
  // Lowercase or shorter names are fine.
  nlohmann::json ok = CreateAccount(*s.server, s.admin.token, Unique("01arz3ndektsv4rrffq69g5fav"));
  CHECK(ok["id"].is_string());
}

TEST_CASE("a PATCH that changes nothing writes no audit row", "[admin]") {
  SharedServer& s = Shared();
  const std::string name = Unique("noop");
  nlohmann::json account = CreateAccount(*s.server, s.admin.token, name);
  const std::string id = account["id"];
  auto audit_count = [&] {
    return AllPages(*s.server, "/v1/audit?target_id=" + id, s.admin.token).size();
  };
  size_t before = audit_count();
  auto r = s.server->Patch("/v1/service-accounts/" + id, nlohmann::json::object(), s.admin.token);
  REQUIRE(r.status == 200);
  CHECK(r.json["name"] == name);
  CHECK(audit_count() == before);

  nlohmann::json user = s.admin.user;
  size_t user_before = AllPages(*s.server, "/v1/audit?target_id=" + user["id"].get<std::string>(), s.admin.token).size();
  r = s.server->Patch("/v1/users/" + user["id"].get<std::string>(), nlohmann::json::object(), s.admin.token);
  REQUIRE(r.status == 200);
  CHECK(AllPages(*s.server, "/v1/audit?target_id=" + user["id"].get<std::string>(), s.admin.token).size() == user_before);
}
