// End-to-end property of the no-escalation rule (DESIGN.md 6): for every state-changing admin
// route x every kind of caller x every kind of target, run the call against the real binary,
// then compute, through the engine, what everything the caller can now act as or holds a
// credential for may do, and check it is within what the caller itself may do.
//
// The oracle is independent of the server's own analysis (PolicySnapshot::Escalations): it
// evaluates concrete requests (every catalog action, resources owned by the caller, by the
// holder and by someone else) for both principals with PolicySnapshot::Evaluate, from state
// read back through the admin API.
#include <catch2/catch.hpp>

#include "engine/engine.h"
#include "tests/server/admin_fixture.h"

namespace warden::testing {
namespace {

const std::vector<std::string> kRoles = {"admin", "csm", "manager", "developer", "viewer"};

// Someone whose reach is compared: a caller, or a thing a caller holds a credential for.
struct Reach {
  std::string label;
  engine::Principal principal;
  std::shared_ptr<const engine::CompiledPolicy> own;  // a service account's compiled policy
  std::vector<const engine::CompiledPolicy*> policies;
};

struct Actor {
  Reach reach;         // as it was before any call
  std::string bearer;  // session or API token
  std::string id;
  bool is_user = false;
};

class World {
 public:
  explicit World(const TestServer& server) : server_(server) {
    engine::TreeResult tree = engine::CompileTree(std::string(WARDEN_SOURCE_DIR) + "/policies");
    REQUIRE(tree.snapshot);
    snapshot_ = tree.snapshot;
    root_ = LoginSession(server, "admin@localhost", server.options().admin_password).token;
  }
  const std::string& root() const { return root_; }
  const engine::PolicySnapshot& snapshot() const { return *snapshot_; }

  Reach UserReach(const std::string& id) const {
    Reply u = server_.Get("/v1/users/" + id, root_);
    REQUIRE(u.status == 200);
    Reach r;
    r.label = "user " + u.json["email"].get<std::string>();
    r.principal.type = engine::PrincipalType::kUser;
    r.principal.id = id;
    r.principal.name = u.json["email"];
    r.principal.roles = u.json["roles"].get<std::vector<std::string>>();
    for (const auto& role : r.principal.roles) {
      if (const auto* p = snapshot_->FindRole(role)) r.policies.push_back(p);
    }
    if (!u.json["enabled"].get<bool>()) r.policies.clear();  // cannot log in
    return r;
  }
  Reach AccountReach(const std::string& id) const {
    Reply a = server_.Get("/v1/service-accounts/" + id, root_);
    REQUIRE(a.status == 200);
    Reply yaml = GetYaml(server_, "/v1/service-accounts/" + id + "/permissions", root_);
    REQUIRE(yaml.status == 200);
    Reach r;
    r.label = "service account " + a.json["name"].get<std::string>();
    r.principal.type = engine::PrincipalType::kServiceAccount;
    r.principal.id = id;
    r.principal.name = a.json["name"];
    engine::PolicyResult compiled =
        engine::CompileAccountPolicy(*snapshot_, yaml.body, "permissions.yaml", r.principal.name);
    REQUIRE(compiled.policy);
    r.own = compiled.policy;
    if (a.json["enabled"].get<bool>()) r.policies.push_back(r.own.get());
    return r;
  }
  Reach TenantReach() const {
    Reach r;
    r.label = "the tenant token";
    r.principal.type = engine::PrincipalType::kTenant;
    r.principal.id = r.principal.name = "default";
    r.policies.push_back(&snapshot_->TenantPolicy());
    return r;
  }

  // Every (model, action, resource) the holder may do and the caller may not.
  std::vector<std::string> Beyond(const Reach& caller, const Reach& held) const {
    std::vector<std::string> out;
    const engine::Attributes none;
    std::vector<engine::Attributes> resources(4);
    resources[1].Set("owner", caller.principal.id);
    resources[2].Set("owner", held.principal.id);
    resources[3].Set("owner", std::string("someone-else"));
    for (const auto& m : snapshot_->catalog().models()) {
      for (const auto& a : m.actions) {
        for (size_t i = 0; i < resources.size(); ++i) {
          if (!snapshot_->Evaluate(held.principal, held.policies, m.name, a, resources[i], none).allowed) continue;
          if (snapshot_->Evaluate(caller.principal, caller.policies, m.name, a, resources[i], none).allowed) continue;
          out.push_back(m.name + ":" + a + " (resource " + std::to_string(i) + ")");
        }
      }
    }
    return out;
  }

 private:
  const TestServer& server_;
  std::shared_ptr<const engine::PolicySnapshot> snapshot_;
  std::string root_;
};

}  // namespace

TEST_CASE("no escalation, as a property: nothing a caller can reach after any admin call exceeds the caller", "[admin][escalation]") {
  TempDir dir;
  TestServer server({.data_dir = dir.path()});
  World world(server);
  const std::string& root = world.root();
  int counter = 0;
  auto unique = [&](const std::string& base) { return base + "-" + std::to_string(++counter); };

  // The callers: a user of each default role, a user with two roles, an account copied from
  // each role, and a scratch account.
  std::vector<Actor> callers;
  auto add_user = [&](const std::vector<std::string>& roles) {
    const std::string email = unique("caller") + "@example.com";
    Reply u = server.Post("/v1/users", {{"email", email}, {"roles", roles}, {"password", "caller-password-1"}}, root);
    REQUIRE(u.status == 201);
    Actor a;
    a.id = u.json["id"];
    a.is_user = true;
    a.bearer = LoginSession(server, email, "caller-password-1").token;
    a.reach = world.UserReach(a.id);
    a.reach.label = "user with roles " + nlohmann::json(roles).dump();
    callers.push_back(std::move(a));
  };
  auto add_account = [&](const nlohmann::json& from, const std::string& label) {
    nlohmann::json acct = CreateAccount(server, root, unique("caller-sa"), from);
    Actor a;
    a.id = acct["id"];
    a.bearer = CreateToken(server, root, a.id, "caller")["token"];
    a.reach = world.AccountReach(a.id);
    a.reach.label = label;
    callers.push_back(std::move(a));
  };
  for (const auto& role : kRoles) add_user({role});
  add_user({"developer", "manager"});
  for (const auto& role : kRoles) add_account({{"kind", "role"}, {"name", role}}, "account copied from " + role);
  add_account({{"kind", "scratch"}}, "scratch account");

  // What a call leaves the caller holding: its own (possibly changed) self, and each thing it
  // created, changed, or was handed a credential for.
  struct Outcome {
    std::vector<Reach> held;
  };
  using Route = std::function<Outcome(const Actor&, const std::string& role)>;
  auto fresh_account = [&](const std::string& role) {
    return CreateAccount(server, root, unique("target"), {{"kind", "role"}, {"name", role}})["id"].get<std::string>();
  };
  auto fresh_user = [&](const std::string& role, bool with_password, bool enabled) {
    nlohmann::json body = {{"email", unique("target") + "@example.com"}, {"role", role}, {"enabled", enabled}};
    if (with_password) body["password"] = "known-password-1";
    Reply u = server.Post("/v1/users", body, root);
    REQUIRE(u.status == 201);
    return u.json["id"].get<std::string>();
  };
  auto if_ok = [&](const Reply& r, std::function<Reach()> reach) {
    INFO(r.body);
    CHECK(r.status < 500);
    Outcome o;
    if (r.status >= 200 && r.status < 300) o.held.push_back(reach());
    return o;
  };
  const std::vector<std::pair<std::string, Route>> account_routes = {
      {"copy permissions from an account", [&](const Actor& c, const std::string& role) {
         const std::string source = fresh_account(role);
         Reply r = server.Post("/v1/service-accounts", {{"name", unique("copy")}, {"copy_permissions_from", {{"kind", "service_account"}, {"name", source}}}}, c.bearer);
         return if_ok(r, [&] { return world.AccountReach(r.json["id"]); });
       }},
      {"copy permissions from a role", [&](const Actor& c, const std::string& role) {
         Reply r = server.Post("/v1/service-accounts", {{"name", unique("copy")}, {"copy_permissions_from", {{"kind", "role"}, {"name", role}}}}, c.bearer);
         return if_ok(r, [&] { return world.AccountReach(r.json["id"]); });
       }},
      {"mint a token", [&](const Actor& c, const std::string& role) {
         const std::string target = fresh_account(role);
         Reply r = server.Post("/v1/service-accounts/" + target + "/tokens", {{"name", "t"}}, c.bearer);
         return if_ok(r, [&] { return world.AccountReach(target); });
       }},
      {"enable an account whose token the caller holds", [&](const Actor& c, const std::string& role) {
         const std::string target = fresh_account(role);
         const std::string token = CreateToken(server, root, target, "leaked")["token"];
         REQUIRE(server.Patch("/v1/service-accounts/" + target, {{"enabled", false}}, root).status == 200);
         Reply r = server.Patch("/v1/service-accounts/" + target, {{"enabled", true}}, c.bearer);
         Outcome o;
         // The held token works again only if the account is enabled now.
         if (Check(server, token, "company", "view").json.value("reason", "") != "ACCOUNT_DISABLED") {
           o.held.push_back(world.AccountReach(target));
         }
         CHECK(r.status < 500);
         return o;
       }},
      {"set an account's attributes", [&](const Actor& c, const std::string& role) {
         const std::string target = fresh_account(role);
         Reply r = server.Patch("/v1/service-accounts/" + target, {{"attributes", {{"tier", "gold"}}}}, c.bearer);
         return if_ok(r, [&] { return world.AccountReach(target); });
       }},
      {"put a role's permissions on an account the caller holds a token for", [&](const Actor& c, const std::string& role) {
         const std::string target = CreateAccount(server, root, unique("held"))["id"];
         (void)CreateToken(server, root, target, "held");
         Reply role_doc = server.Get("/v1/roles/" + role, root);
         REQUIRE(role_doc.status == 200);
         nlohmann::json body = {{"permissions", role_doc.json["permissions"]}};
         if (role_doc.json.contains("rules")) body["rules"] = role_doc.json["rules"];
         Reply r = Put(server, "/v1/service-accounts/" + target + "/permissions", body.dump(), c.bearer, "application/json");
         INFO(r.body);
         CHECK(r.status < 500);
         Outcome o;
         o.held.push_back(world.AccountReach(target));  // held before and after the call
         return o;
       }},
  };
  const std::vector<std::pair<std::string, Route>> user_routes = {
      {"create a user with a password", [&](const Actor& c, const std::string& role) {
         Reply r = server.Post("/v1/users", {{"email", unique("made") + "@example.com"}, {"role", role}, {"password", "made-password-1"}}, c.bearer);
         return if_ok(r, [&] { return world.UserReach(r.json["id"]); });
       }},
      {"set a user's password", [&](const Actor& c, const std::string& role) {
         const std::string target = fresh_user(role, false, true);
         Reply r = server.Patch("/v1/users/" + target, {{"password", "taken-over-1"}}, c.bearer);
         return if_ok(r, [&] { return world.UserReach(target); });
       }},
      {"enable a user whose password the caller knows", [&](const Actor& c, const std::string& role) {
         const std::string target = fresh_user(role, true, false);
         Reply r = server.Patch("/v1/users/" + target, {{"enabled", true}}, c.bearer);
         CHECK(r.status < 500);
         Outcome o;
         o.held.push_back(world.UserReach(target));  // reach is empty while disabled
         return o;
       }},
      {"assign roles to a user", [&](const Actor& c, const std::string& role) {
         const std::string target = fresh_user("viewer", false, true);
         Reply r = server.Patch("/v1/users/" + target, {{"roles", {role}}}, c.bearer);
         return if_ok(r, [&] { return world.UserReach(target); });
       }},
      {"assign roles to oneself", [&](const Actor& c, const std::string& role) {
         Outcome o;
         if (!c.is_user) return o;
         Reply r = server.Patch("/v1/users/" + c.id, {{"roles", {role}}}, c.bearer);
         INFO(r.body);
         CHECK(r.status < 500);
         o.held.push_back(world.UserReach(c.id));
         // Put the caller back as it was for the next case.
         REQUIRE(server.Patch("/v1/users/" + c.id, {{"roles", c.reach.principal.roles}}, root).status == 200);
         return o;
       }},
  };
  const std::vector<std::pair<std::string, Route>> tenant_routes = {
      {"read the tenant token", [&](const Actor& c, const std::string&) {
         return if_ok(server.Get("/v1/tenant", c.bearer), [&] { return world.TenantReach(); });
       }},
      {"rotate the tenant token", [&](const Actor& c, const std::string&) {
         return if_ok(server.Post("/v1/tenant/token:rotate", nlohmann::json::object(), c.bearer), [&] { return world.TenantReach(); });
       }},
  };

  int combinations = 0, refused = 0, allowed = 0;
  auto run = [&](const Actor& caller, const std::string& route, const Route& call, const std::string& role) {
    ++combinations;
    Outcome o = call(caller, role);
    bool any = false;
    for (const Reach& held : o.held) {
      std::vector<std::string> beyond = world.Beyond(caller.reach, held);
      INFO(caller.reach.label << " / " << route << " / target role " << role << " -> " << held.label);
      CHECK(beyond == std::vector<std::string>{});
      any = any || !held.policies.empty();
    }
    (any ? allowed : refused)++;
  };
  for (const Actor& caller : callers) {
    for (const auto& role : kRoles) {
      for (const auto& [name, call] : account_routes) run(caller, name, call, role);
      for (const auto& [name, call] : user_routes) run(caller, name, call, role);
    }
    for (const auto& [name, call] : tenant_routes) run(caller, name, call, "");
  }
  // 12 callers x (6 account routes + 5 user routes) x 5 target roles + 2 tenant routes each.
  CHECK(combinations == 12 * (11 * 5 + 2));
  // Both outcomes occur: the rule is not "refuse everything".
  CHECK(allowed > 100);
  CHECK(refused > 100);
  WARN("no-escalation property: " << combinations << " combinations, " << allowed << " left the caller holding something, "
                                  << refused << " nothing");
}

}  // namespace warden::testing
