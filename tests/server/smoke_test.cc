// The smallest end-to-end flow; the full suites live beside it.
#include <catch2/catch.hpp>

#include "tests/server/harness.h"

using warden::testing::TempDir;
using warden::testing::TestServer;

TEST_CASE("a fresh server answers health, login and a check") {
  TempDir dir;
  TestServer server({.data_dir = dir.path()});
  REQUIRE(server.Get("/healthz").status == 200);
  std::string session = server.Login();
  auto created = server.Post("/v1/service-accounts", {{"name", "smoke"}, {"copy_permissions_from", {{"kind", "role"}, {"name", "viewer"}}}}, session);
  REQUIRE(created.status == 201);
  auto token = server.Post("/v1/service-accounts/smoke/tokens", {{"name", "t1"}}, session);
  REQUIRE(token.status == 201);
  auto check = server.Post("/v1/check", {{"token", token.json["token"]}, {"model", "company"}, {"action", "view"}});
  REQUIRE(check.status == 200);
  CHECK(check.json["allowed"] == true);
  CHECK(check.json["principal"]["name"] == "smoke");
}
