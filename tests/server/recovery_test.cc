// End-to-end: a tenant is never locked out of its own administration, and an operator with the
// data directory always gets back in (`warden admin reset-password`); the data directory is
// owner-only.
#include <sys/stat.h>

#include <filesystem>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <regex>

#include "tests/server/admin_fixture.h"

namespace warden::testing {
namespace {

// Runs `warden admin reset-password` on `dir`; returns its exit code, its output in *out.
int ResetPassword(const std::string& dir, const std::string& args, std::string* out) {
  out->clear();
  return RunCommand(std::string(WARDEN_BINARY) + " admin reset-password --data " + dir + " " + args + " 2>&1", out);
}

// The password `warden admin reset-password` printed.
std::string PrintedPassword(const std::string& out) {
  std::smatch m;
  if (!std::regex_search(out, m, std::regex(R"(: ([0-9A-Za-z]{20})\n)"))) return "";
  return m[1];
}

int Mode(const std::string& path) {
  struct stat st{};
  if (stat(path.c_str(), &st) != 0) return -1;
  return st.st_mode & 0777;
}

}  // namespace

TEST_CASE("a change that would leave nobody able to manage users and accounts is refused (409)", "[admin][recovery]") {
  TempDir dir;
  TestServer server({.data_dir = dir.path()});
  Session root = LoginSession(server, "admin@localhost", server.options().admin_password);
  const std::string root_id = root.user["id"];

  // The only admin cannot demote itself.
  Reply r = server.Patch("/v1/users/" + root_id, {{"roles", {"viewer"}}}, root.token);
  CHECK_ERROR(r, 409, "conflict");
  CHECK(ErrorOf(r).value("message", "").find("reset-password") != std::string::npos);
  CHECK(server.Get("/v1/users/" + root_id, root.token).json["roles"] == nlohmann::json::array({"admin"}));

  // With a second admin it may; then that one is the last and is protected the same way.
  Reply second = server.Post("/v1/users", {{"email", "second@example.com"}, {"role", "admin"}, {"password", "second-password"}}, root.token);
  REQUIRE(second.status == 201);
  const std::string second_id = second.json["id"];
  Session other = LoginSession(server, "second@example.com", "second-password");
  CHECK(server.Patch("/v1/users/" + root_id, {{"roles", {"viewer", "developer"}}}, root.token).status == 200);
  CHECK_ERROR(server.Patch("/v1/users/" + second_id, {{"roles", {"manager"}}}, other.token), 409, "conflict");
  // Disabling or deleting the last one is refused by whoever asks; others are not affected.
  REQUIRE(server.Patch("/v1/users/" + root_id, {{"roles", {"admin"}}}, other.token).status == 200);
  CHECK(server.Patch("/v1/users/" + root_id, {{"enabled", false}}, other.token).status == 200);
  CHECK_ERROR(server.Delete("/v1/users/" + second_id, root.token), 401, "unauthenticated");  // root's session ended
  REQUIRE(server.Patch("/v1/users/" + root_id, {{"enabled", true}}, other.token).status == 200);
  root = LoginSession(server, "admin@localhost", server.options().admin_password);
  CHECK(server.Patch("/v1/users/" + second_id, {{"enabled", false}}, root.token).status == 200);
  CHECK_ERROR(server.Patch("/v1/users/" + root_id, {{"roles", {"viewer"}}}, root.token), 409, "conflict");
  // A user who holds the role but is disabled does not count.
  CHECK(server.Delete("/v1/users/" + second_id, root.token).status == 204);
  Reply audit = server.Get("/v1/audit?target_type=user&limit=100", root.token);
  REQUIRE(audit.status == 200);
}

TEST_CASE("warden admin reset-password gets an operator back in, with the server running or not", "[admin][recovery]") {
  TempDir dir;
  std::string out;
  // Without a database there is nothing to reset.
  CHECK(ResetPassword(dir.path(), "admin@localhost", &out) == 1);
  CHECK(out.find("no database") != std::string::npos);

  auto server = std::make_unique<TestServer>(TestServer::Options{.data_dir = dir.path()});
  Session root = LoginSession(*server, "admin@localhost", server->options().admin_password);
  Reply ops = server->Post("/v1/users", {{"email", "ops@example.com"}, {"role", "viewer"}}, root.token);
  REQUIRE(ops.status == 201);

  // Running server: a new password, printed once; old sessions end; an audit row names the
  // local operator.
  REQUIRE(ResetPassword(dir.path(), "admin@localhost", &out) == 0);
  const std::string password = PrintedPassword(out);
  INFO(out);
  REQUIRE(!password.empty());
  CHECK_ERROR(server->Get("/v1/users", root.token), 401, "unauthenticated");
  CHECK(server->Post("/v1/auth/login", {{"email", "admin@localhost"}, {"password", server->options().admin_password}}).status == 401);
  root = LoginSession(*server, "admin@localhost", password);
  Reply audit = server->Get("/v1/audit?target_type=user&limit=5", root.token);
  REQUIRE(audit.status == 200);
  nlohmann::json reset;
  for (const auto& item : audit.json["items"]) {
    if (item["action"] == "user.password_reset") reset = item;
  }
  REQUIRE(reset.is_object());
  CHECK(reset["actor"]["type"] == "operator");
  CHECK(reset["actor"]["id"].get<std::string>().rfind("local:", 0) == 0);
  CHECK(reset["target"]["id"] == root.user["id"]);
  CHECK(audit.json.dump().find(password) == std::string::npos);

  // --restore-admin gives the role back (and enables), and creates a missing user.
  REQUIRE(ResetPassword(dir.path(), "--restore-admin ops@example.com", &out) == 0);
  Session ops_session = LoginSession(*server, "ops@example.com", PrintedPassword(out));
  CHECK(ops_session.user["roles"] == nlohmann::json::array({"viewer", "admin"}));
  CHECK(server->Get("/v1/users", ops_session.token).status == 200);
  CHECK(ResetPassword(dir.path(), "nobody@example.com", &out) == 1);
  CHECK(out.find("--restore-admin") != std::string::npos);

  // Stopped server: the same, and the next start sees it.
  server.reset();
  REQUIRE(ResetPassword(dir.path(), "--restore-admin new-admin@example.com", &out) == 0);
  const std::string new_password = PrintedPassword(out);
  server = std::make_unique<TestServer>(TestServer::Options{.data_dir = dir.path()});
  Session fresh = LoginSession(*server, "new-admin@example.com", new_password);
  CHECK(fresh.user["roles"] == nlohmann::json::array({"admin"}));
}

// The decision journal's segment files (`warden.db-decisions.<n>`) in `data`.
std::vector<std::string> JournalSegments(const std::string& data) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(data)) {
    if (e.path().filename().string().rfind("warden.db-decisions.", 0) == 0) out.push_back(e.path().string());
  }
  return out;
}

TEST_CASE("the database, its WAL and the decision journal are owner-only in an owner-only directory", "[admin][recovery]") {
  TempDir parent;
  const std::string data = parent.path() + "/data";
  {
    TestServer server({.data_dir = data});
    Session root = LoginSession(server, "admin@localhost", server.options().admin_password);
    const std::string token = CreateToken(server, root.token, CreateAccount(server, root.token, "modes")["id"], "t")["token"];
    REQUIRE(Check(server, token, "company", "view").status == 200);
    CHECK(Mode(data) == 0700);
    for (const char* file : {"/warden.db", "/warden.db-wal", "/warden.db-shm", "/pepper"}) {
      INFO(file);
      CHECK(Mode(data + file) == 0600);
    }
    REQUIRE(JournalSegments(data).size() == 1);
    CHECK(Mode(JournalSegments(data).front()) == 0600);
  }
  // Files from an older warden are tightened at the next start; journal files are replayed,
  // deleted and started anew (owner-only).
  REQUIRE(chmod((data + "/warden.db").c_str(), 0644) == 0);
  for (const std::string& seg : JournalSegments(data)) REQUIRE(chmod(seg.c_str(), 0644) == 0);
  REQUIRE(chmod(data.c_str(), 0755) == 0);
  TestServer again({.data_dir = data});
  CHECK(Mode(data) == 0700);
  CHECK(Mode(data + "/warden.db") == 0600);
  REQUIRE(!JournalSegments(data).empty());
  for (const std::string& seg : JournalSegments(data)) CHECK(Mode(seg) == 0600);
}

}  // namespace warden::testing
