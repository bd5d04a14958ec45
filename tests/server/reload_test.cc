// End-to-end tests of policy reload: POST /v1/policies/reload on success and on a broken
// tree (the last good snapshot keeps answering checks), GET /v1/policies/status, and the
// file watcher.
#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <thread>

#include "tests/server/check_helpers.h"
#include "tests/server/harness.h"

namespace warden::testing {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

// A copy of the default policy tree in `dir`/policies.
std::string CopyPolicies(const TempDir& dir) {
  const std::string target = dir.path() + "/policies";
  fs::copy(std::string(WARDEN_SOURCE_DIR) + "/policies", target, fs::copy_options::recursive);
  return target;
}

constexpr char kBrokenCsm[] =
    "apiVersion: warden/v1\n"
    "kind: Role\n"
    "name: csm\n"
    "description: broken on purpose\n"
    "permissions:\n"
    "  company: [view, fly]\n";

constexpr char kAuditorRole[] =
    "apiVersion: warden/v1\n"
    "kind: Role\n"
    "name: auditor\n"
    "description: Reads invoices.\n"
    "permissions:\n"
    "  invoice: [view]\n";

TEST_CASE("reload: success, a broken tree keeps the last good snapshot, then a fix", "[check]") {
  TempDir dir, data;
  const std::string policies = CopyPolicies(dir);
  TestServer server({.data_dir = data.path(), .policies_dir = policies, .env = {{"WARDEN_WATCH_POLICIES", "false"}}});
  const std::string session = server.Login();

  Reply status = server.Get("/v1/policies/status", session);
  INFO(status.body);
  REQUIRE(status.status == 200);
  const std::string rev0 = status.json["revision"].get<std::string>();
  CHECK(!rev0.empty());
  CHECK(status.json["loaded_at"].is_string());
  CHECK(status.json["last_reload"]["ok"] == true);

  AccountRef csm = CreateAccount(server, session, "csm-copy", "role", "csm");
  const std::string token = CreateToken(server, session, csm.name).token;
  auto update_other = [&] { return Check(server, token, "company", "update", {{"owner", "someone"}}); };
  Reply r = update_other();
  REQUIRE(r.status == 200);
  CHECK(r.json["reason"] == "DENY_RULE");
  CHECK(r.json["policy_revision"] == rev0);

  // Same tree: reload succeeds, same content revision.
  Reply reload = server.Post("/v1/policies/reload", json::object(), session);
  INFO(reload.body);
  REQUIRE(reload.status == 200);
  CHECK(reload.json["revision"] == rev0);
  CHECK(reload.json["loaded_at"].is_string());
  CHECK(reload.json["last_reload"]["ok"] == true);

  // Broken: 400 with every error's position; status shows it; checks use the old snapshot.
  const std::string csm_path = policies + "/roles/csm.yaml";
  const std::string csm_original = ReadFile(csm_path);
  WriteFile(csm_path, kBrokenCsm);
  reload = server.Post("/v1/policies/reload", json::object(), session);
  INFO(reload.body);
  REQUIRE(reload.status == 400);
  CHECK(reload.json["error"]["code"] == "invalid_argument");
  const json& errors = reload.json["error"]["errors"];
  REQUIRE(errors.is_array());
  REQUIRE(errors.size() >= 1);
  CHECK(errors[0]["file"].get<std::string>().find("roles/csm.yaml") != std::string::npos);
  CHECK(errors[0]["line"] == 6);
  CHECK(errors[0]["column"] == 19);
  CHECK(errors[0]["message"].get<std::string>().find("fly") != std::string::npos);

  status = server.Get("/v1/policies/status", session);
  CHECK(status.json["revision"] == rev0);
  CHECK(status.json["last_reload"]["ok"] == false);
  CHECK(status.json["last_reload"]["errors"] == errors);
  r = update_other();
  REQUIRE(r.status == 200);
  CHECK(r.json["reason"] == "DENY_RULE");
  CHECK(r.json["policy_revision"] == rev0);
  CHECK(CheckReason(server, token, "company", "view") == "ALLOW_RULE");
  // The admin API keeps working on the old snapshot too (the old csm role is copyable).
  CreateAccount(server, session, "csm-copy-2", "role", "csm");

  // Fixed: reload succeeds and clears the error; the original content has the original revision.
  WriteFile(csm_path, csm_original);
  reload = server.Post("/v1/policies/reload", json::object(), session);
  INFO(reload.body);
  REQUIRE(reload.status == 200);
  CHECK(reload.json["revision"] == rev0);
  CHECK(reload.json["last_reload"]["ok"] == true);
  CHECK(reload.json["last_reload"]["errors"].empty());

  // A real change: a new role appears with a new revision, and checks carry it at once.
  WriteFile(policies + "/roles/auditor.yaml", kAuditorRole);
  reload = server.Post("/v1/policies/reload", json::object(), session);
  INFO(reload.body);
  REQUIRE(reload.status == 200);
  const std::string rev1 = reload.json["revision"].get<std::string>();
  CHECK(rev1 != rev0);
  CHECK(server.Get("/v1/roles/auditor", session).status == 200);
  r = update_other();
  REQUIRE(r.status == 200);
  CHECK(r.json["reason"] == "DENY_RULE");
  CHECK(r.json["policy_revision"] == rev1);

  const std::string metrics = server.Get("/metrics").body;
  CHECK(MetricValue(metrics, "warden_policy_reloads_total") == 4.0);  // start + 3 good reloads
  CHECK(MetricValue(metrics, "warden_policy_reload_failures_total") == 1.0);
  CHECK(metrics.find("warden_policy_info{revision=\"" + rev1 + "\"} 1") != std::string::npos);
  // Reloading needs the right to manage users: a service account's token cannot.
  CHECK(server.Post("/v1/policies/reload", json::object(), token).status == 403);
}

TEST_CASE("reload: the file watcher picks up a changed role file", "[check]") {
  TempDir dir, data;
  const std::string policies = CopyPolicies(dir);
  TestServer server({.data_dir = data.path(), .policies_dir = policies, .env = {{"WARDEN_WATCH_POLICIES", "true"}}});
  const std::string session = server.Login();
  const std::string rev0 = server.Get("/v1/policies/status", session).json["revision"].get<std::string>();
  AccountRef acct = CreateAccount(server, session, "watched", "role", "viewer");
  const std::string token = CreateToken(server, session, acct.name).token;

  auto wait_for = [&](auto done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    for (;;) {
      Reply s = server.Get("/v1/policies/status", session);
      REQUIRE(s.status == 200);
      if (done(s.json)) return s.json;
      REQUIRE(std::chrono::steady_clock::now() < deadline);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  };

  const std::string viewer_path = policies + "/roles/viewer.yaml";
  std::string viewer = ReadFile(viewer_path);
  const std::string from = "description: Viewer.";
  REQUIRE(viewer.find(from) != std::string::npos);
  viewer.replace(viewer.find(from), from.size(), "description: Viewer (edited).");
  const auto changed_at = std::chrono::steady_clock::now();
  WriteFile(viewer_path, viewer);
  json s = wait_for([&](const json& j) { return j["revision"] != rev0; });
  CHECK(std::chrono::steady_clock::now() - changed_at < std::chrono::seconds(10));
  CHECK(s["last_reload"]["ok"] == true);
  const std::string rev1 = s["revision"].get<std::string>();
  Reply r = Check(server, token, "company", "view");
  REQUIRE(r.status == 200);
  CHECK(r.json["allowed"] == true);
  CHECK(r.json["policy_revision"] == rev1);

  // A broken edit is reported, and the snapshot keeps serving.
  WriteFile(policies + "/roles/csm.yaml", kBrokenCsm);
  s = wait_for([](const json& j) { return j["last_reload"]["ok"] == false; });
  CHECK(s["revision"] == rev1);
  REQUIRE(!s["last_reload"]["errors"].empty());
  CHECK(s["last_reload"]["errors"][0]["line"] == 6);
  r = Check(server, token, "company", "view");
  CHECK(r.json["allowed"] == true);
  CHECK(r.json["policy_revision"] == rev1);
}

}  // namespace
}  // namespace warden::testing
