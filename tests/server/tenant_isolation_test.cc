// End-to-end: two tenants in one database do not touch each other. The second tenant, its
// admin and that admin's session are made through the store API (there is no HTTP route for
// tenants); then every admin call of one tenant is made and the other's answers compared.
#include <catch2/catch.hpp>

#include "common/crypto.h"
#include "common/ids.h"
#include "common/clock.h"
#include "store/sqlite_store.h"
#include "tests/server/admin_fixture.h"

namespace warden::testing {
namespace {

constexpr char kPepper[] = "tenant-isolation-test-pepper-0123456789abcdef";

// A tenant's admin as seen by the test: its bearer session and what it creates.
struct TenantSide {
  std::string admin;  // session token
  std::string account;
  std::string token;         // an API token of `account`
  std::string tenant_token;  // as read at the start
};

// Everything the tenant's own callers can observe, minus what moves by itself (times).
nlohmann::json Answers(const TestServer& server, const TenantSide& t) {
  nlohmann::json out;
  Reply check = server.Post("/v1/check", {{"token", t.token}, {"checks", {{{"model", "company"}, {"action", "view"}}, {{"model", "invoice"}, {"action", "export"}}}}});
  for (const auto& r : check.json["results"]) out["checks"].push_back({r["allowed"], r["reason"], r["rule"]});
  out["principal"] = check.json["principal"];
  Reply tenant_check = server.Post("/v1/check", {{"tenant_token", t.tenant_token}, {"model", "user_activity"}, {"action", "create"}});
  out["tenant_check"] = {tenant_check.json["allowed"], tenant_check.json["reason"]};
  for (const auto& a : AllPages(server, "/v1/service-accounts", t.admin)) {
    out["accounts"].push_back({a["id"], a["name"], a["enabled"], a["token_count"], a["description"]});
  }
  for (const auto& u : AllPages(server, "/v1/users", t.admin)) {
    out["users"].push_back({u["id"], u["email"], u["roles"], u["enabled"]});
  }
  Reply tenant = server.Get("/v1/tenant", t.admin);
  out["tenant"] = {tenant.json["id"], tenant.json["tenant_token"]};
  Reply perms = server.Get("/v1/service-accounts/" + t.account + "/permissions", t.admin);
  out["permissions"] = perms.json;
  Reply tokens = server.Get("/v1/service-accounts/" + t.account + "/tokens", t.admin);
  for (const auto& tok : tokens.json["items"]) out["tokens"].push_back({tok["id"], tok["name"]});
  return out;
}

}  // namespace

TEST_CASE("two tenants: no admin call on one changes any answer of the other", "[admin][tenants]") {
  TempDir dir;
  const std::string db = dir.path() + "/warden.db";
  std::string second_session = "wds_" + RandomBase62(43);
  {
    // The second tenant, made with the store API before the server starts.
    store::SqliteStore::Options options;
    options.decision_log = false;
    auto st = store::SqliteStore::Open(db, SystemClock::Get(), options);
    REQUIRE(st.ok());
    REQUIRE((*st)->CreateTenant("acme", "Acme").ok());
    CHECK((*st)->CreateTenant("acme", "Acme").status().code() == StatusCode::kAlreadyExists);
    store::User admin;
    admin.tenant_id = "acme";
    admin.email = "admin@acme.example";
    admin.roles = {"admin"};
    auto user = (*st)->CreateUser(admin);
    REQUIRE(user.ok());
    store::Session session;
    session.tenant_id = "acme";
    session.user_id = user->id;
    session.token_hash = ToHex(HmacSha256(kPepper, "session:" + second_session));
    session.csrf_token = RandomBase62(32);
    session.expires_at = SystemClock::Get().NowMillis() + 3'600'000;
    REQUIRE((*st)->CreateSession(session).ok());
  }
  TestServer server({.data_dir = dir.path(), .env = {{"WARDEN_TOKEN_PEPPER", kPepper}}});
  TenantSide a, b;
  a.admin = LoginSession(server, "admin@localhost", server.options().admin_password).token;
  b.admin = second_session;
  REQUIRE(server.Get("/v1/auth/me", b.admin).json["name"] == "admin@acme.example");
  // Same names on both sides: names are unique per tenant, not across.
  for (TenantSide* t : {&a, &b}) {
    t->account = CreateAccount(server, t->admin, "sync", {{"kind", "role"}, {"name", "developer"}})["id"];
    t->token = CreateToken(server, t->admin, t->account, "prod")["token"];
    t->tenant_token = server.Get("/v1/tenant", t->admin).json["tenant_token"];
  }
  REQUIRE(a.tenant_token != b.tenant_token);
  CHECK(server.Get("/v1/tenant", b.admin).json["id"] == "acme");
  // Each side's checks are its own: the principal, the tenant token, the logged rows.
  Reply b_check = Check(server, b.token, "company", "view");
  CHECK(b_check.json["allowed"] == true);
  CHECK(b_check.json["principal"]["id"] == b.account);
  CHECK(server.Post("/v1/check", {{"tenant_token", b.tenant_token}, {"model", "user_activity"}, {"action", "create"}}).json["allowed"] == true);
  CHECK(AllPages(server, "/v1/decisions", a.admin).dump().find(b.account) == std::string::npos);
  CHECK(AllPages(server, "/v1/decisions", b.admin).dump().find(a.account) == std::string::npos);

  // Every admin call of one side, including ones aimed at the other's ids, leaves the other's
  // answers exactly as they were.
  auto calls_of = [&](TenantSide& me, const TenantSide& other) {
    std::vector<std::pair<std::string, std::function<void()>>> calls = {
        {"create an account", [&] { CreateAccount(server, me.admin, Unique("more")); }},
        {"mint a token", [&] { CreateToken(server, me.admin, me.account, Unique("t")); }},
        {"disable and enable the own account", [&] {
           CHECK(server.Patch("/v1/service-accounts/" + me.account, {{"enabled", false}}, me.admin).status == 200);
           CHECK(server.Patch("/v1/service-accounts/" + me.account, {{"enabled", true}}, me.admin).status == 200);
         }},
        {"edit the own permissions", [&] {
           CHECK(Put(server, "/v1/service-accounts/" + me.account + "/permissions", R"({"permissions": {"company": ["view"]}})", me.admin, "application/json").status == 200);
         }},
        {"rotate the own tenant token", [&] {
           Reply r = server.Post("/v1/tenant/token:rotate", nlohmann::json::object(), me.admin);
           REQUIRE(r.status == 200);
           me.tenant_token = r.json["tenant_token"];
         }},
        {"create a user", [&] { CHECK(server.Post("/v1/users", {{"email", Unique("u") + "@example.com"}, {"role", "viewer"}}, me.admin).status == 201); }},
        {"aim at the other's account", [&] {
           const std::string path = "/v1/service-accounts/" + other.account;
           CHECK_ERROR(server.Get(path, me.admin), 404, "not_found");
           CHECK_ERROR(server.Patch(path, {{"enabled", false}}, me.admin), 404, "not_found");
           CHECK_ERROR(Put(server, path + "/permissions", R"({"permissions": {}})", me.admin, "application/json"), 404, "not_found");
           CHECK_ERROR(server.Post(path + "/tokens", {{"name", "x"}}, me.admin), 404, "not_found");
           CHECK_ERROR(server.Delete(path, me.admin), 404, "not_found");
         }},
        {"aim at the other's token and users", [&] {
           Reply tokens = server.Get("/v1/service-accounts/" + other.account + "/tokens", other.admin);
           REQUIRE(!tokens.json["items"].empty());
           const std::string token_id = tokens.json["items"][0]["id"];
           CHECK_ERROR(server.Delete("/v1/service-accounts/" + me.account + "/tokens/" + token_id, me.admin), 404, "not_found");
           for (const auto& u : AllPages(server, "/v1/users", other.admin)) {
             CHECK_ERROR(server.Patch("/v1/users/" + u["id"].get<std::string>(), {{"enabled", false}}, me.admin), 404, "not_found");
             CHECK_ERROR(server.Delete("/v1/users/" + u["id"].get<std::string>(), me.admin), 404, "not_found");
           }
         }},
        {"delete the own account and make it again", [&] {
           CHECK(server.Delete("/v1/service-accounts/" + me.account, me.admin).status == 204);
           me.account = CreateAccount(server, me.admin, "sync", {{"kind", "role"}, {"name", "developer"}})["id"];
           me.token = CreateToken(server, me.admin, me.account, "prod")["token"];
         }},
    };
    return calls;
  };
  for (auto [me, other] : {std::pair{&b, &a}, std::pair{&a, &b}}) {
    for (auto& [name, call] : calls_of(*me, *other)) {
      const nlohmann::json before = Answers(server, *other);
      call();
      INFO(name << (me == &a ? " (default tenant)" : " (acme)"));
      CHECK(Answers(server, *other) == before);
    }
  }
  // And each side still answers its own checks.
  CHECK(Check(server, a.token, "company", "view").json["allowed"] == true);
  CHECK(Check(server, b.token, "company", "view").json["allowed"] == true);
}

}  // namespace warden::testing
